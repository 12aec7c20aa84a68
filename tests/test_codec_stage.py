"""FitCodebook (the fit-codec job) and EncodeTokens (the main job, which only reads a codebook)."""

from __future__ import annotations

import hashlib
import os

import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.tokens import frames
from transforms.tokens.fit import FitCodebook, PoolFrames, fit_and_save
from transforms.tokens.stage import EMBEDDED_CODEBOOK, EncodeTokens, load_streams
from conftest import make_backend, stage


def test_fits_a_codebook_then_encodes_three_rows_and_the_prompt(make_song, tmp_path):
    import apache_beam as beam

    codebook = str(tmp_path / "out" / "codec" / "codebook.npz")
    short = make_song(duration=12.3, seed=1, with_stems=True)
    long = make_song(duration=33.0, seed=2, with_stems=True)
    bare = make_song(duration=5.0, seed=3)  # no stems: a dead letter, not a crash
    with TestPipeline() as p:  # the fit-codec job
        _ = p | beam.Create([short, long, bare]) | FitCodebook(codebook)
    assert os.path.exists(codebook)
    flags = {"tokens": "kmeans", "tokens_weights": codebook}

    def check(songs):
        by_id = {s.song_id: s for s in songs}
        assert set(by_id) == {"song0001", "song0002"}
        for song in songs:
            tokens, prompt = song.tokens["tokens"], song.tokens["prompt"]
            total = int(song.duration * 25) + 1
            assert tokens.shape == (3, total) and tokens.dtype == np.uint16
            assert prompt.shape == (3, 251) and prompt.dtype == np.uint16
            label = song.labels["tokens"]
            assert label["num_frames"] == total and label["frame_rate"] == 25.0
            assert label["layout"] == ["mixed", "vocal", "accompaniment"] and label["dtype"] == "uint16"
            assert int(tokens.max()) < label["codebook_size"] <= 16384
            # vocal and accompaniment rows are encodings of different audio
            assert (tokens[1] != tokens[2]).mean() > 0.3
            prov = song.provenance["tokens"]
            assert prov["backend"] == "kmeans" and "not a neural codec" in prov["note"]
            assert prov["weights_sha256"] == hashlib.sha256(open(codebook, "rb").read()).hexdigest()
        assert by_id["song0001"].labels["tokens"]["prompt"] == {"start": 0.0, "end": 10.0, "num_frames": 251}
        assert by_id["song0002"].labels["tokens"]["prompt"] == {"start": 20.0, "end": 30.0, "num_frames": 251}

    with TestPipeline() as p:
        songs, failed = p | beam.Create([short, long, bare]) | stage(EncodeTokens, tmp_path / "work", **flags)
        assert_that(songs, check)
        assert_that(failed | beam.Map(lambda d: (d.song_id, d.stage, d.error_type)),
                    equal_to([("song0003", "tokens", "ValueError")]), label="failures")
    assert os.path.exists(codebook)

    # a second run reuses the codebook (no refit); its rows are the codec's ids of each stream,
    # and its prompt rows the ids of the 20-30 s clips, encoded on their own
    backend = make_backend(EncodeTokens, "kmeans", {"weights": codebook})
    backend.load()
    streams = load_streams(long)
    expected = [[backend.encode(streams[n]).tolist() for n in ("mixed", "vocal", "accompaniment")],
                [backend.encode(frames.clip(streams[n], 20.0, 30.0)).tolist()
                 for n in ("mixed", "vocal", "accompaniment")]]
    stamp = os.path.getmtime(codebook)
    with TestPipeline() as p:
        songs, _ = p | beam.Create([long]) | stage(EncodeTokens, tmp_path / "work", **flags)
        assert_that(songs | beam.Map(lambda s: [s.tokens["tokens"].tolist(), s.tokens["prompt"].tolist()]),
                    equal_to([expected]))
    assert os.path.getmtime(codebook) == stamp


def test_main_job_reads_OUT_codebook_else_the_embedded_one_and_never_fits(make_song, tmp_path):
    import apache_beam as beam
    import pytest

    out = tmp_path / "out"
    songs = [make_song(duration=8.0, seed=s, with_stems=True) for s in (4, 5)]
    with TestPipeline() as p:  # no codebook anywhere: the embedded default, nothing written to OUT
        done, _ = p | beam.Create(songs) | stage(EncodeTokens, tmp_path / "work", output=out, tokens="kmeans")
        assert_that(done | beam.Map(lambda s: s.provenance["tokens"]["weights"]), equal_to([EMBEDDED_CODEBOOK] * 2))
    assert not (out / "codec").exists()
    fitted = str(out / "codec" / "codebook.npz")
    with TestPipeline() as p:
        _ = p | beam.Create(songs) | FitCodebook(fitted, 16, per_song=300)
    with TestPipeline() as p:  # OUT holds one now: it is read
        done, _ = p | beam.Create(songs) | stage(EncodeTokens, tmp_path / "work", output=out, tokens="kmeans")
        assert_that(done | beam.Map(lambda s: (s.provenance["tokens"]["weights"], s.labels["tokens"]["codebook_size"],
                                               s.tokens["tokens"].shape)), equal_to([(fitted, 16, (3, 201))] * 2))
    with pytest.raises(ValueError, match="fit-codec"):  # a named codebook that is not there stops the run
        EncodeTokens.configure({"tokens": "kmeans", "tokens_weights": str(tmp_path / "none.npz")})


def test_pool_frames_caps_rows_and_fit_keeps_an_existing_file(tmp_path):
    pool = PoolFrames(cap=50)
    acc = pool.create_accumulator()
    for i in range(4):
        acc = pool.add_input(acc, np.full((20, 3), i, np.float32))
    out = pool.extract_output(acc)
    assert out.shape == (50, 3) and len(np.unique(out[:, 0])) > 1
    assert pool.extract_output(pool.create_accumulator()).size == 0
    assert fit_and_save(np.zeros((0, 80), np.float32), str(tmp_path / "x.npz"), 16) == ""
    existing = tmp_path / "keep.npz"
    existing.write_bytes(b"not refitted")
    assert fit_and_save(np.ones((100, 80), np.float32), str(existing), 16) == str(existing)
    assert existing.read_bytes() == b"not refitted"
