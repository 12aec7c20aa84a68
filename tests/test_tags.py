"""Tags: vocabulary mapping, descriptions order and precedence, signal descriptors, the dsp backend."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.tags import descriptors as D
from transforms.tags import metadata as M
from transforms.tags.descriptions import descriptions_string, merge_tags, tags_label
from conftest import make_backend
from transforms.tags import TagSongs


# ------------------------------------------------------------------ vocabulary and metadata
def test_vocabulary_synonyms_point_at_terms():
    vocab = M.load_vocabulary()
    for dim, table in vocab["synonyms"].items():
        for text, target in table.items():
            for term in [target] if isinstance(target, str) else target:
                assert term in vocab[dim], (dim, text, term)


@pytest.mark.parametrize("text, terms", [
    ("Hip-Hop", ["hip hop"]), ("hip hop", ["hip hop"]), ("HipHop", ["hip hop"]), ("Rap", ["hip hop"]),
    ("R&B", ["r&b"]), ("Indie Pop", ["indie", "pop"]), ("Rock/Pop; Hip-Hop", ["rock", "pop", "hip hop"]),
    ("drum and bass", ["drum and bass"]), ("Synth-Pop", ["synthpop"]), ("K-Pop", ["k-pop"]),
    ("polka fusion", []),
])
def test_genre_free_text_maps_to_vocabulary(text, terms):
    assert M.map_text(text, "genre")[0] == terms


def test_metadata_tags_prefer_sidecar_and_keep_unmapped():
    file_tags = {"genre": "Rock", "artist": "X", "mood": "sad"}
    sidecar = {"genre": "Hip-Hop, polka fusion", "instruments": "piano and drums", "gender": "Female Vocals"}
    out = M.metadata_tags(file_tags, sidecar)
    assert out["tags"]["genre"] == [("hip hop", "sidecar")]  # the sidecar wins the dimension
    assert out["tags"]["emotion"] == [("sad", "file_tags")]  # the file tags fill what it lacks
    assert out["tags"]["instrument"] == [("piano", "sidecar"), ("drums", "sidecar")]
    assert out["tags"]["gender"] == [("female", "sidecar")]
    assert out["unmapped"] == {"genre": ["polka fusion"]}
    assert M.metadata_tags({}, {}) == {"tags": {d: [] for d in M.DIMENSIONS}, "unmapped": {}}
    assert M.metadata_tags({}, {"tags": ["Happy", "Guitar", "EDM"]})["tags"]["genre"] == [("dance", "sidecar")]


def test_declared_bpm():
    assert M.declared_bpm({"bpm": "128"}, {}) == 128.0
    assert M.declared_bpm({"bpm": "128"}, {"bpm": 96}) == 96.0
    assert M.declared_bpm({"bpm": "fast"}, {"tempo": 1000}) is None


# ------------------------------------------------------------------ merge and descriptions
def test_descriptions_order_and_format():
    assert descriptions_string(["Female", "pop", "sad", "piano", "drums"], 120) == \
        "female, pop, sad, piano, drums, the bpm is 120"
    assert descriptions_string([], None) == ""


def test_merge_precedence_and_unknowns_left_empty():
    meta = {"gender": [], "genre": [("pop", "file_tags")], "emotion": [], "instrument": [("piano", "sidecar")]}
    model = {"gender": [("male", "model:clap")], "genre": [("rock", "model:clap")],
             "emotion": [("sad", "model:clap")], "instrument": [("piano", "model:clap"), ("drums", "model:clap")]}
    merged = merge_tags(meta, "female", model)
    assert merged["gender"] == [("female", "signal:pitch")]  # pitch beats the model
    assert merged["genre"] == [("pop", "file_tags")]  # metadata beats the model
    assert merged["emotion"] == [("sad", "model:clap")]  # the model fills a gap
    assert merged["instrument"] == [("piano", "sidecar"), ("drums", "model:clap")]
    label = tags_label(merged, {"tempo": {"bpm": 120, "source": "structure"}, "key": "A", "mode": "minor"})
    assert label["descriptions"] == "female, pop, sad, piano, drums, the bpm is 120"
    assert label["tag_list"] == ["female", "pop", "sad", "piano", "drums"]
    assert label["sources"]["gender"] == {"female": "signal:pitch"} and label["key"] == "A minor"
    assert label["sources"]["bpm"] == {"120": "structure"}
    # nothing known: nothing said
    empty = tags_label(merge_tags({}, "", {}), {"tempo": {"bpm": None, "source": ""}})
    assert empty["descriptions"] == "" and empty["gender"] == "" and empty["genre"] == ""


# ------------------------------------------------------------------ signal descriptors
def _voice(f0, seconds=6.0, sr=48000):
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / sr
    return (0.3 * sum(np.sin(h * phase) / h for h in range(1, 8))).astype(np.float32)[None]


@pytest.mark.parametrize("f0, gender", [(110, "male"), (125, "male"), (180, ""), (220, ""), (245, "female"), (300, "female")])
def test_gender_from_vocal_pitch(f0, gender):
    out = D.gender_from_pitch(D.vocal_pitch(_voice(f0), 48000))
    assert out["gender"] == gender
    assert out["median_f0_hz"] == pytest.approx(f0, rel=0.03)


def test_gender_needs_confident_pitch():
    duet = np.concatenate([_voice(125), _voice(245)], axis=1)
    assert D.gender_from_pitch(D.vocal_pitch(duet, 48000))["gender"] == "mixed"
    noise = np.random.default_rng(0).standard_normal((1, 48000 * 6)).astype(np.float32) * 0.1
    assert D.gender_from_pitch(D.vocal_pitch(noise, 48000))["gender"] == ""  # not periodic
    assert D.gender_from_pitch(D.vocal_pitch(_voice(245, seconds=1.5), 48000))["gender"] == ""  # too short


def _chords(chords, sr=16000, seconds=2.0):
    t = np.arange(int(seconds * sr)) / sr
    out = [sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69) / 12) * h * t) / h for n in c for h in (1, 2, 3))
           for c in chords]
    return (0.1 * np.concatenate(out)).astype(np.float32)


def test_key_and_mode():
    C, F, G = [60, 64, 67], [65, 69, 72], [67, 71, 74]
    Am, Dm, E = [57, 60, 64], [62, 65, 69], [64, 68, 71]
    major = D.estimate_key(_chords([C, F, G, C] * 2), 16000)
    minor = D.estimate_key(_chords([Am, Dm, E, Am] * 2), 16000)
    assert (major["key"], major["mode"]) == ("C", "major")
    assert (minor["key"], minor["mode"]) == ("A", "minor")
    noise = np.random.default_rng(0).standard_normal(16000 * 10).astype(np.float32)
    assert D.estimate_key(noise, 16000)["key"] == ""


def test_energy_brightness_and_tempo():
    sr = 16000
    dark = _chords([[48, 52, 55]] * 4, sr)
    rng = np.random.default_rng(0)
    bright = np.zeros(sr * 8, dtype=np.float32)
    for i in range(0, bright.size - 800, sr // 4):  # 4 noise bursts a second
        bright[i:i + 800] = rng.standard_normal(800) * 0.5
    d, b = D.energy_and_brightness(dark, sr), D.energy_and_brightness(bright, sr)
    assert d["brightness"] == "dark" and b["brightness"] == "bright"
    assert b["spectral_centroid_hz"] > d["spectral_centroid_hz"]
    assert b["onset_rate"] > 3.0 > d["onset_rate"] and b["energy"] == "high"
    assert D.tempo({"bpm": 119.6}) == {"bpm": 120, "source": "structure"}
    assert D.tempo({}, 96.0) == {"bpm": 96, "source": "metadata"}
    assert D.tempo(None) == {"bpm": None, "source": ""}


# ------------------------------------------------------------------ dsp backend
def test_dsp_backend_says_it_has_no_weights():
    assert {"dsp", "clap"} <= set(TagSongs.backends)
    backend = make_backend(TagSongs, "dsp", {})
    backend.check()
    backend.load()
    assert backend.tag(np.zeros((2, 48000), dtype=np.float32), 48000) == {"picks": {}, "scores": {}}
    prov = backend.provenance()
    assert prov.backend == "dsp" and "no learned weights" in prov.note and prov.weights == ""
