"""The TagSongs PTransform on synthetic songs, dead letters, and the clap backend with random weights.

The clap backend is exercised through the user's path: a small random ClapModel of
the real architecture (transformers' HTSAT audio tower + RoBERTa text tower) and
its processor are saved with save_pretrained to a folder, and ``--tags_weights``
points at it.
"""

from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from transforms.core.stage import BackendUnavailable
from transforms.quality import MeasureQuality
from transforms.tags.stage import TagSongs
from conftest import make_backend, stage

STRUCTURE = {"bpm": 120.0, "beats": [], "downbeats": [], "time_signature": 4,
             "sections": [{"start": 0.0, "end": 3.0, "label": "intro", "tag": "intro-short"},
                          {"start": 3.0, "end": 9.0, "label": "verse", "tag": "verse"},
                          {"start": 9.0, "end": 12.0, "label": "outro", "tag": "outro-short"}]}


def _tagged_song(make_song, seed=0, vocals=True):
    song = make_song(duration=12.0, seed=seed, vocals=vocals, with_stems=True)
    song.source.file_tags = {"artist": "Nora Vale", "title": "Young Night", "genre": "Hip-Hop"}
    song.source.sidecar = {"mood": "Happy", "instruments": ["Piano", "drums"]}
    song.labels["structure"] = STRUCTURE
    return song


def _check_songs(expected_ids):
    def check(songs):
        assert sorted(s.song_id for s in songs) == sorted(expected_ids)
        for s in songs:
            tags, q = s.labels["tags"], s.labels["quality"]
            assert tags["genre"] == "hip hop" and tags["emotion"] == "happy"
            assert tags["instruments"] == ["piano", "drums"]
            # the synthetic voice sits at 220 Hz, where male and female singers overlap: no gender is claimed
            assert tags["gender"] == ""
            assert tags["descriptions"] == "hip hop, happy, piano, drums, the bpm is 120"
            assert tags["sources"]["genre"] == {"hip hop": "file_tags"}
            assert tags["sources"]["emotion"] == {"happy": "sidecar"}
            assert isinstance(tags["vocals"]["stem_presence"], float)
            assert tags["vocals"]["present"] == (s.song_id != "song0001")
            for key in ("loudness_lufs", "true_peak_dbfs", "clipping_ratio", "bandwidth_hz", "silence_ratio",
                        "dc_offset", "stereo_width", "musicality_score"):
                assert isinstance(q[key], float), key
            assert q["musicality"].startswith("[Musicality-") and isinstance(q["pure_music"], bool)
            assert q["pure_music"] == (s.song_id == "song0001")  # seed 1 is made without vocals
            assert s.provenance["tags"]["backend"] == "dsp"
            assert s.provenance["quality"]["backend"] == "songshard-quality"
            json.dumps(tags), json.dumps(q)  # JSON-able
    return check


def test_tag_songs_pipeline_and_dead_letter(make_song, work_dir):
    good = [_tagged_song(make_song, 0), _tagged_song(make_song, 1, vocals=False)]
    broken = _tagged_song(make_song, 2)
    broken.audio["mix"] = os.path.join(work_dir, "missing", "mix.npz")
    with TestPipeline() as p:
        songs, failures = (p | "Create" >> beam.Create(good + [broken])
                           | stage(TagSongs, work_dir, tags="dsp"))
        songs, quality_failures = songs | stage(MeasureQuality, work_dir, quality_tiers="0.85,0.7,0.5,0.3")
        assert_that(songs, _check_songs(["song0000", "song0001"]), label="songs")

        def check_failures(dead):
            assert len(dead) == 1 and dead[0].song_id == "song0002" and dead[0].stage == "tags"
        assert_that(failures, check_failures, label="failures")


def test_bad_tiers_and_missing_scorer_fail_in_the_driver(tmp_path):
    with pytest.raises(ValueError, match="thresholds"):
        MeasureQuality.configure({"quality_tiers": "1,2,3"})
    with pytest.raises(BackendUnavailable, match="quality_scorer_weights"):
        MeasureQuality.configure({"quality_scorer_weights": str(tmp_path / "none.pt")})


def test_stage_uses_scorer_and_tiers(make_song, tmp_path):
    pytest.importorskip("torch")
    from transforms.quality.scorer import build_model, save_scorer

    config = {"n_mels": 32, "hidden": 8, "sample_rate": 16000}
    path = save_scorer(str(tmp_path / "scorer.pt"), build_model(config), config)
    fn = stage(MeasureQuality, quality_scorer_weights=path, quality_tiers="0.99,0.98,0.97,0.96").make_fn()
    fn.setup()
    song = fn.apply(_tagged_song(make_song, 0))
    q = song.labels["quality"]
    assert 0.0 < q["learned_score"] < 1.0
    assert q["musicality_score"] == pytest.approx(0.5 * (q["technical_score"] + q["learned_score"]), abs=1e-3)
    assert q["tiers"] == [0.99, 0.98, 0.97, 0.96]
    assert song.provenance["quality"]["weights"] == path


# ------------------------------------------------------------------ clap with random weights
def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def save_random_clap(folder: str) -> str:
    """A small random ClapModel + ClapProcessor (byte-level RoBERTa tokenizer) saved to ``folder``."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizerFast

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in sorted(set(_bytes_to_unicode())):
        vocab[ch] = len(vocab)
    vocab["<mask>"] = len(vocab)
    if int(transformers.__version__.split(".")[0]) >= 5:
        tok = RobertaTokenizerFast(vocab=vocab, merges=[])
    else:  # pragma: no cover - transformers 4.x takes files
        os.makedirs(folder + "_tok", exist_ok=True)
        with open(folder + "_tok/vocab.json", "w") as f:
            json.dump(vocab, f)
        with open(folder + "_tok/merges.txt", "w") as f:
            f.write("#version: 0.2\n")
        tok = RobertaTokenizerFast(vocab_file=folder + "_tok/vocab.json", merges_file=folder + "_tok/merges.txt")
    torch.manual_seed(0)
    config = ClapConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, projection_dim=16),
        audio_config=dict(hidden_size=32, depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16,
                          projection_dim=16),
        projection_dim=16)
    ClapModel(config).eval().save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tok).save_pretrained(folder)
    return folder


def test_clap_check_says_where_it_looked(tmp_path):
    with pytest.raises(BackendUnavailable, match="--tags_weights"):
        make_backend(TagSongs, "clap", {}).check()
    with pytest.raises(BackendUnavailable, match="lacks"):
        make_backend(TagSongs, "clap", {"weights": str(tmp_path)}).check()


def test_clap_backend_random_weights_through_tagger_weights(make_song, tmp_path, work_dir):
    folder = save_random_clap(str(tmp_path / "clap"))
    backend = make_backend(TagSongs, "clap", {"weights": folder, "min_confidence": 0.0, "windows": 2})
    backend.check()
    backend.load()
    from transforms.tags.metadata import load_vocabulary
    vocab = load_vocabulary()
    mix = np.random.default_rng(0).standard_normal((2, 48000 * 25)).astype(np.float32) * 0.1
    emb = backend.audio_embedding(mix, 48000)
    assert emb.shape == (16,) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4)
    scores = backend.scores(emb)
    for dim in ("gender", "genre", "emotion"):
        assert set(scores[dim]) == set(vocab[dim]) and sum(scores[dim].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(scores["instrument"]) == set(vocab["instrument"])
    assert all(0.0 < p < 1.0 for p in scores["instrument"].values())
    out = backend.tag(mix, 48000)
    assert out["picks"]["genre"] and out["picks"]["genre"][0][0] == max(scores["genre"], key=scores["genre"].get)
    assert all(src == "model:clap" for picks in out["picks"].values() for _, src in picks)
    assert backend.tag(mix, 48000) == out  # deterministic
    strict = make_backend(TagSongs, "clap", {"weights": folder, "min_confidence": 0.99})
    strict.load()
    assert strict.tag(mix, 48000)["picks"]["genre"] == []  # a random model is never that sure
    prov = backend.provenance()
    assert prov.weights == folder and len(prov.weights_sha256) == 64 and prov.backend == "clap"

    # and through the stage: the model fills the dimensions metadata leaves open
    song = make_song(duration=12.0, seed=3, with_stems=True)
    with TestPipeline() as p:
        songs, _ = p | beam.Create([song]) | stage(TagSongs, work_dir, tags="clap", tags_weights=folder,
                                                   tags_min_confidence=0.0, tags_windows=2)

        def check(out_songs):
            (s,) = out_songs
            assert s.provenance["tags"]["backend"] == "clap"
            assert s.labels["tags"]["sources"]["genre"] == {s.labels["tags"]["genre"]: "model:clap"}
            assert s.labels["tags"]["model_scores"]["genre"]
        assert_that(songs, check)
