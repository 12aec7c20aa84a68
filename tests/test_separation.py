"""Separation stage: overlap-add, block-wise work-dir I/O, the dsp and demucs backends, SeparateStems.

demucs is exercised for real: htdemucs built with the released hyper-parameters
and random weights, saved with demucs's serialisation, loaded back through
``--separate_weights`` as a user would.
"""

from __future__ import annotations

import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from conftest import synth_mix, stage
from schemas.records import DeadLetter, Song
from transforms.core import workdir
from transforms.core.stage import BackendUnavailable
from transforms.separate.stage import SeparateStems, output_stems
from transforms.separate import demucs_backend as db
from transforms.separate.backend import MixStats, SeparatorBackend, fit_length
from transforms.separate.dsp import DspSeparator, band_prior, centre_weight
from transforms.separate.metrics import energy_db, sdr, si_sdr
from transforms.separate.overlap import chunk_starts, fade_weights, overlap_add
from transforms.core.stream import AudioReader, AudioWriter, FlacReader, FlacWriter, open_reader, open_writer
from conftest import check_backend, make_backend

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")


# ---------------------------------------------------------------- pure functions

def test_fade_weights_trapezoid_and_triangle():
    w = fade_weights(10, 3)
    assert w.min() > 0 and w.max() == 1.0
    np.testing.assert_allclose(w[:3], [1 / 3, 2 / 3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(w, w[::-1])
    tri = fade_weights(8, 4)
    assert tri.argmax() in (3, 4) and np.all(np.diff(tri[:4]) > 0)


def test_chunk_starts_cover_the_stream():
    assert chunk_starts(5, 10, 7) == [0]
    starts = chunk_starts(100, 30, 20)
    assert starts == [0, 20, 40, 60, 80] and starts[-1] + 30 >= 100 and starts[-2] + 30 < 100


@pytest.mark.parametrize("length,hop,batch,block", [(1000, 750, 1, 333), (1000, 1000, 3, 5000),
                                                     (4096, 3000, 2, 10007), (20000, 15000, 1, 100)])
def test_overlap_add_reconstructs_and_bounds_calls(length, hop, batch, block):
    x = np.random.default_rng(0).standard_normal((2, 10007)).astype(np.float32)
    calls = []

    def process(chunks):
        calls.append(chunks.shape)
        return np.stack([chunks, -2 * chunks], axis=1)

    out = list(overlap_add((x[:, i:i + block] for i in range(0, x.shape[1], block)), process,
                           length, hop, batch=batch))
    y = np.concatenate(out, axis=-1)
    assert y.shape == (2, 2, x.shape[1])
    np.testing.assert_allclose(y[0], x, atol=1e-5)
    np.testing.assert_allclose(y[1], -2 * x, atol=1e-5)
    assert all(shape[0] <= batch and shape[-1] == length for shape in calls)
    assert sum(shape[0] for shape in calls) == len(chunk_starts(x.shape[1], length, hop))


def test_overlap_add_crossfades_chunk_borders():
    x = np.ones((1, 4000), dtype=np.float32)
    k = iter(range(100))

    def process(chunks):  # every chunk gets its own constant: the border must blend them linearly
        return np.stack([[np.full_like(c, float(next(k)))] for c in chunks])

    y = np.concatenate(list(overlap_add([x], process, 1000, 750, fade=250)), axis=-1)[0, 0]
    assert y[0] == 0 and y[749] == 0 and y[1000] == 1 and 0 < y[875] < 1
    assert np.all(np.diff(y[740:1010]) >= 0)


def test_overlap_add_rejects_empty_stream_and_bad_hop():
    with pytest.raises(ValueError):
        list(overlap_add([], lambda c: c[:, None], 10, 5))
    with pytest.raises(ValueError):
        list(overlap_add([np.zeros((1, 5))], lambda c: c[:, None], 10, 11))


def test_metrics():
    rng = np.random.default_rng(1)
    s = rng.standard_normal((2, 1000))
    n = rng.standard_normal((2, 1000))
    assert sdr(s, s) > 90 and si_sdr(s, 3 * s) > 90
    assert sdr(s, 3 * s) < 0  # plain SDR punishes scale, SI-SDR does not
    assert abs(sdr(s, s + n) - 10 * np.log10(np.sum(s ** 2) / np.sum(n ** 2))) < 1e-9
    assert energy_db(0.0, 10) == -120.0 and abs(energy_db(10.0, 10)) < 1e-9


def test_dsp_cues():
    f = np.array([20.0, 90.0, 125.0, 500.0, 16000.0])
    w = band_prior(f)
    assert w[0] == 0 and w[1] == 0 and 0 < w[2] < 1 and w[3] == 1 and 0.3 <= w[4] < 1
    mid = np.array([1.0, 1.0, 1.0])
    np.testing.assert_allclose(centre_weight(mid, np.array([0.0, 0.5, 2.0])), [1.0, 0.5, 0.0], atol=1e-6)


def test_mix_stats_norm_matches_numpy():
    x = np.random.default_rng(2).standard_normal((2, 5000)).astype(np.float32) + 0.1
    stats = MixStats()
    for i in range(0, 5000, 1234):
        stats.add(x[:, i:i + 1234])
    ref = x.mean(axis=0, dtype=np.float64)
    np.testing.assert_allclose(stats.norm(), (ref.mean(), ref.std()), rtol=1e-6)
    assert abs(stats.energy - float(np.sum(x.astype(np.float64) ** 2))) < 1e-6 * stats.energy
    assert output_stems(("drums", "bass", "other", "vocals"))[-1] == "accompaniment"
    assert output_stems(("vocals", "accompaniment")) == ["vocals", "accompaniment"]


# ---------------------------------------------------------------- block-wise work-dir I/O

@pytest.mark.parametrize("block", [1000, 48000, 100000])
def test_audio_writer_reader_round_trip(tmp_path, block):
    x = np.random.default_rng(3).standard_normal((2, 70001)).astype(np.float32)
    uri = str(tmp_path / "a" / "vocals.npz")
    w = AudioWriter(uri, 2, x.shape[1], 48000)
    for i in range(0, x.shape[1], block):
        w.write(x[:, i:i + block])
    w.close()
    back, sr = workdir.load_audio(uri)  # the work dir's own reader sees the same array
    assert sr == 48000 and back.shape == x.shape
    np.testing.assert_array_equal(back, x)
    # and the block reader reads both what it wrote (interleaved) and save_audio's files (channel-major)
    plain = workdir.save_audio(str(tmp_path / "a" / "mix.npz"), x, 44100)
    for path, rate in ((uri, 48000), (plain, 44100)):
        with AudioReader(path) as r:
            assert (r.sample_rate, r.channels, r.num_samples) == (rate, 2, x.shape[1])
            got = np.concatenate(list(r.blocks(block)), axis=1)
        np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("fmt,snr_db", [("flac24", 110.0), ("flac16", 60.0)])
def test_flac_work_audio_round_trips_blockwise_with_headroom(tmp_path, fmt, snr_db):
    rng = np.random.default_rng(5)
    x = (0.3 * rng.standard_normal((2, 70001))).astype(np.float32)
    x[0, 100] = 3.5  # a stem louder than full scale (+11 dB) survives the 12 dB headroom
    uri = str(tmp_path / "a" / "vocals.flac")
    w = open_writer(uri, 2, x.shape[1] + 999, 48000, fmt)  # padded with silence to the length asked
    assert isinstance(w, FlacWriter)
    for i in range(0, x.shape[1], 30000):
        w.write(x[:, i:i + 30000])
    assert not os.path.exists(uri)  # nothing readable before close
    w.close()
    assert os.listdir(tmp_path / "a") == ["vocals.flac"]  # no temporary file left behind
    back, sr = workdir.load_audio(uri)
    assert sr == 48000 and back.shape == (2, x.shape[1] + 999) and not back[:, x.shape[1]:].any()
    err = back[:, :x.shape[1]] - x
    assert 10 * np.log10((x ** 2).sum() / (err ** 2).sum()) > snr_db
    assert abs(back[0, 100] - 3.5) < 1e-3
    with open_reader(uri) as r:
        assert isinstance(r, FlacReader) and (r.sample_rate, r.channels, r.num_samples) == (48000, 2, back.shape[1])
        np.testing.assert_array_equal(np.concatenate(list(r.blocks(4096)), axis=1), back)
    # flac is smaller than float32 npz for the same audio
    npz = workdir.save_audio(str(tmp_path / "a" / "same.npz"), back, 48000)
    assert os.path.getsize(uri) < 0.9 * os.path.getsize(npz)
    saved = workdir.save_audio(str(tmp_path / "b" / "mix.flac"), x, 16000, fmt)
    np.testing.assert_allclose(workdir.load_audio(saved)[0], x, atol=4e-4 if fmt == "flac16" else 1e-5)


def test_work_audio_auto_is_exact_on_local_disks_and_compressed_across_networks():
    from pipeline.config import resolve, work_audio_format

    assert work_audio_format("auto", "/tmp/out/_work") == "npz"
    assert work_audio_format("auto", "gs://bucket/out/_work") == "flac24"
    assert work_audio_format("flac16", "/tmp/out/_work") == "flac16"
    _, config = resolve(["--input", "/in", "--output", "gs://b/out"])
    assert config.work_audio == "flac24"
    _, config = resolve(["--input", "/in", "--output", "/tmp/out", "--work_audio", "flac16"])
    assert config.work_audio == "flac16"


def test_work_audio_formats_are_checked(tmp_path):
    assert workdir.song_uri("/w", "id", "mix", "npz").endswith("/id/mix.npz")
    assert workdir.song_uri("/w", "id", "mix").endswith("/id/mix.npz")
    assert workdir.song_uri("/w", "id", "mix", "flac16").endswith("/id/mix.flac")
    with pytest.raises(ValueError, match="flac24"):
        workdir.song_uri("/w", "id", "mix", "wav")
    npz_writer = open_writer(str(tmp_path / "x.npz"), 1, 4, 16000, "npz")
    assert isinstance(npz_writer, AudioWriter)
    npz_writer.abort()


def test_audio_writer_pads_and_trims(tmp_path):
    w = AudioWriter(str(tmp_path / "p.npz"), 1, 10, 16000)
    w.write(np.ones((1, 4), np.float32))
    w.close()
    np.testing.assert_array_equal(workdir.load_audio(str(tmp_path / "p.npz"))[0], [[1] * 4 + [0] * 6])
    w = AudioWriter(str(tmp_path / "t.npz"), 1, 3, 16000)
    w.write(np.arange(5, dtype=np.float32)[None])
    w.close()
    np.testing.assert_array_equal(workdir.load_audio(str(tmp_path / "t.npz"))[0], [[0, 1, 2]])


# ---------------------------------------------------------------- dsp backend

def test_dsp_beats_the_mixture_baseline():
    mix, voc, acc = synth_mix(16.0, seed=4)
    out = DspSeparator({}).separate(mix, 48000)
    assert set(out) == {"vocals", "accompaniment"}
    assert out["vocals"].shape == mix.shape and out["vocals"].dtype == np.float32
    np.testing.assert_allclose(out["vocals"] + out["accompaniment"], mix, atol=1e-4)
    for metric in (sdr, si_sdr):
        assert metric(voc, out["vocals"]) > metric(voc, mix) + 6.0
        assert metric(acc, out["accompaniment"]) > metric(acc, mix) + 6.0


def test_dsp_quiet_on_instrumental():
    mix, _, _ = synth_mix(12.0, seed=5, vocals=False)
    out = DspSeparator({}).separate(mix, 48000)
    assert np.sum(out["vocals"] ** 2) < 0.1 * np.sum(mix ** 2)


def test_dsp_provenance_says_no_weights():
    prov = check_backend(SeparateStems, "dsp", {})
    assert prov.backend == "dsp" and prov.weights == "" and "no learned weights" in prov.note


# ---------------------------------------------------------------- the stage (dsp)

def _by_id(songs):
    return {s.song_id: s for s in songs}


def test_separate_stems_stage_dsp(make_song, work_dir):
    songs = [make_song(duration=10.0, seed=1), make_song(duration=6.0, seed=2, vocals=False)]

    def check(out):
        got = _by_id(out)
        assert set(got) == {"song0001", "song0002"}
        for sid, song in got.items():
            label = song.labels["separate"]
            assert label["stems"] == ["vocals", "accompaniment"] and label["segments"] == 1
            mix, sr = workdir.load_audio(song.audio["mix"])
            voc, sr_v = workdir.load_audio(song.audio["vocals"])
            acc, _ = workdir.load_audio(song.audio["accompaniment"])
            assert sr_v == sr == 48000 and voc.shape == acc.shape == mix.shape == (2, int(song.duration * 48000))
            assert song.audio["vocals"] == workdir.song_uri(work_dir, sid, "vocals")
            np.testing.assert_allclose(voc + acc, mix, atol=1e-4)
            ratio = float(np.sum(voc.astype(np.float64) ** 2) / np.sum(mix.astype(np.float64) ** 2))
            assert abs(label["vocal_energy_ratio"] - ratio) < 1e-3
            assert song.provenance["separate"]["backend"] == "dsp"
        assert got["song0001"].labels["separate"]["vocal_energy_ratio"] > \
            3 * got["song0002"].labels["separate"]["vocal_energy_ratio"]

    with TestPipeline() as p:
        out, failed = p | beam.Create(songs) | stage(SeparateStems, work_dir, separate="dsp")
        assert_that(out, check)
        assert_that(failed, lambda f: not f or (_ for _ in ()).throw(AssertionError(f)), label="NoFailures")


def test_separate_stems_dead_letter(make_song, work_dir):
    good = make_song(duration=5.0, seed=3)
    broken = Song(uri="/corpus/broken.wav", song_id="broken", duration=5.0,
                  audio={"mix": workdir.song_uri(work_dir, "broken", "mix")})  # never written
    no_mix = Song(uri="/corpus/nomix.wav", song_id="nomix", duration=5.0)

    def check_failed(failed):
        assert sorted(d.song_id for d in failed) == ["broken", "nomix"]
        assert all(isinstance(d, DeadLetter) and d.stage == "separate" and d.message for d in failed)

    with TestPipeline() as p:
        out, failed = (p | beam.Create([good, broken, no_mix])
                       | stage(SeparateStems, work_dir, separate="dsp"))
        assert_that(out, lambda songs: [s.song_id for s in songs] == ["song0003"] or
                    (_ for _ in ()).throw(AssertionError(songs)))
        assert_that(failed, check_failed, label="Failed")


# ---------------------------------------------------------------- demucs backend

@pytest.fixture(scope="module")
def htdemucs_checkpoint(tmp_path_factory):
    """A real-architecture htdemucs with random weights, saved the way demucs saves models."""
    torch.manual_seed(0)
    return db.save_checkpoint(db.build_htdemucs(), str(tmp_path_factory.mktemp("w") / "htdemucs.th"))


def _small_htdemucs():
    torch.manual_seed(1)
    return db.build_htdemucs(channels=8, t_layers=1, dconv_comp=4)


def test_demucs_missing_weights_stop_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(BackendUnavailable) as err:
        check_backend(SeparateStems, "demucs", {"weights": str(tmp_path / "nope.th")})
    msg = str(err.value)
    assert "nope.th" in msg and str(tmp_path / "hub" / "checkpoints") in msg and "--separate_weights" in msg
    with pytest.raises(BackendUnavailable, match="hub cache"):
        check_backend(SeparateStems, "demucs", {"model": "htdemucs"})


def test_demucs_htdemucs_checkpoint_through_the_stage(htdemucs_checkpoint, make_song, work_dir):
    transform = stage(SeparateStems, work_dir, separate="demucs", separate_weights=htdemucs_checkpoint)
    prov = check_backend(SeparateStems, "demucs", {"weights": htdemucs_checkpoint})
    assert prov.weights_sha256 == db.file_sha256(htdemucs_checkpoint) and "htdemucs" in prov.note
    song = make_song(duration=4.0, seed=6)

    def check(out):
        (s,) = out
        label = s.labels["separate"]
        assert label["stems"] == ["drums", "bass", "other", "vocals", "accompaniment"]
        assert label["segments"] == 1 and label["model_sample_rate"] == 44100
        mix, sr = workdir.load_audio(s.audio["mix"])
        stems = {}
        for name in label["stems"]:
            stems[name], rate = workdir.load_audio(s.audio[name])
            assert rate == 48000 and stems[name].shape == mix.shape and np.isfinite(stems[name]).all()
        np.testing.assert_allclose(stems["accompaniment"], stems["drums"] + stems["bass"] + stems["other"],
                                   atol=1e-5)
        assert not np.allclose(stems["accompaniment"], mix - stems["vocals"], atol=1e-3)
        assert s.provenance["separate"]["weights_sha256"] == prov.weights_sha256

    with TestPipeline() as p:
        out, _ = p | beam.Create([song]) | transform
        assert_that(out, check)


def test_demucs_long_input_is_chunked_like_apply_model(tmp_path, monkeypatch):
    """A model-repo folder, 20 s at the model's rate: chunk calls are bounded and the
    overlap-add equals demucs's own apply_model over the whole song (away from its end)."""
    from demucs import apply as dapply

    model = _small_htdemucs()
    repo = db.save_model_repo(model, str(tmp_path / "repo"), name="tiny")
    calls = []
    real = dapply.apply_model

    def spy(m, mix, **kw):
        if isinstance(m, dapply.BagOfModels):  # the stage's call, not demucs's recursion into the bag
            calls.append(tuple(mix.shape))
        return real(m, mix, **kw)

    monkeypatch.setattr(dapply, "apply_model", spy)
    backend = make_backend(SeparateStems, "demucs", {"weights": repo, "model": "tiny",
                                                  "batch": 2})
    backend.check()
    backend.load()
    rng = np.random.default_rng(7)
    sr = backend.sample_rate
    mix = (0.1 * rng.standard_normal((2, 20 * sr))).astype(np.float32)
    out = backend.separate(mix, sr)
    n_chunks = len(chunk_starts(mix.shape[1], backend.chunk_length, backend.hop))
    assert n_chunks == 4 and len(calls) == 2
    assert all(c[0] <= 2 and c[-1] == backend.chunk_length for c in calls)
    ref = mix.mean(0)
    norm = torch.from_numpy((mix - ref.mean()) / ref.std())[None]
    whole = real(backend.model, norm, shifts=0, split=True, overlap=0.25)[0].numpy() * ref.std() + ref.mean()
    end = 3 * backend.hop  # demucs pads its last chunk differently
    for k, name in enumerate(backend.stems):
        assert out[name].shape == mix.shape
        np.testing.assert_allclose(out[name][:, :end], whole[k][:, :end], atol=2e-4 * np.abs(whole[k]).max())


def test_demucs_hub_cache_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    files, bag = db.hub_files("htdemucs")
    assert bag is not None and len(files) == 1
    os.makedirs(os.path.dirname(files[0]))
    db.save_checkpoint(_small_htdemucs(), files[0])
    backend = make_backend(SeparateStems, "demucs", {})  # --separate_model defaults to htdemucs
    assert backend.resolve()[0] == "hub"
    backend.load()
    assert backend.stems == tuple(db.SOURCES) and backend.segment == pytest.approx(7.8)
    assert backend.provenance().weights_sha256 == db.file_sha256(files[0])


def test_separator_backend_channels_and_length_handling():
    class Halves(SeparatorBackend):
        name = "halves"
        stems = ("a", "b")
        sample_rate = 44100
        chunk_length, hop, fade = 44100, 33075, 22050

        def process(self, chunks):
            return np.stack([0.5 * chunks, 0.5 * chunks], axis=1)

    t = np.arange(3 * 48000) / 48000  # band-limited: the round trip through 44.1 kHz keeps it
    mono = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t))[None].astype(np.float32)
    out = Halves({}).separate(mono, 48000)
    assert out["a"].shape == mono.shape
    np.testing.assert_allclose(out["a"][:, 4800:-4800], 0.5 * mono[:, 4800:-4800], atol=2e-3)
    assert fit_length(np.ones((1, 5)), 3).shape == (1, 3) and fit_length(np.ones((1, 2)), 4)[0, -1] == 0
