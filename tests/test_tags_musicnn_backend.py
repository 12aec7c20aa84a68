"""``--tags musicnn`` with the weights the musicnn package ships: through the backend and the stage."""

from __future__ import annotations

import importlib.util

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from conftest import make_backend, stage
from transforms.tags import TagSongs
from transforms.tags.musicnn_backend import picks_from_mapping

pytestmark = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                                reason="the musicnn package (its weights) is not installed: scripts/install.sh")


@pytest.fixture(scope="module")
def backend():
    tagger = make_backend(TagSongs, "musicnn", {"threads": 1})
    tagger.check()
    tagger.load()
    return tagger


def test_picks_keep_their_scores_and_gender_none_is_not_a_pick():
    mapped = {"genres": [("rock", 0.7)], "emotions": [], "instruments": [("drums", 0.4), ("bass", 0.2)],
              "gender": ("none", 0.6), "vocal": {"present": False, "score": 0.1}}
    out = picks_from_mapping(mapped)
    assert out["picks"]["genre"] == [("rock", "model:musicnn")] and out["picks"]["gender"] == []
    assert out["scores"]["instrument"] == {"drums": 0.4, "bass": 0.2}


def test_backend_tags_a_song_with_scores_and_provenance(backend, make_song):
    rng = np.random.default_rng(0)
    t = np.arange(48000 * 12) / 48000
    mix = (0.3 * np.sin(2 * np.pi * 110 * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
    out = backend.tag(np.stack([mix, mix]), 48000)
    assert set(out["picks"]) == {"genre", "emotion", "instrument", "gender"}
    assert 0.0 <= out["vocal"]["score"] <= 1.0
    for dim, scores in out["scores"].items():
        assert all(0.0 <= s <= 1.0 for s in scores.values()), dim
        assert {t for t, _ in out["picks"][dim]} <= set(scores)
    assert set(out["raw"]) == {"MTT_musicnn", "MSD_musicnn"} and len(out["raw"]["MTT_musicnn"]) == 8
    prov = backend.provenance()
    assert prov.backend == "musicnn" and prov.licence == "ISC" and len(prov.weights_sha256) == 64
    # with the vocal stem, gender and its vocal evidence come from a pass over the stem
    stem = backend.stem_gender(np.stack([mix, mix]), 48000)
    assert set(stem) == {"gender", "vocal"} and 0.0 <= stem["vocal"]["score"] <= 1.0
    both = backend.tag(np.stack([mix, mix]), 48000, vocals=np.stack([mix, mix]))
    assert both["stem_vocal"] == stem["vocal"] and "stem_vocal" not in out
    assert {s for _, s in both["picks"]["gender"]} <= {"model:musicnn:vocal_stem"}
    assert both["picks"]["genre"] == out["picks"]["genre"]  # the mix still decides everything else


def test_instruments_heard_on_the_accompaniment_stem_join_the_mix_s(backend, monkeypatch):
    rng = np.random.default_rng(1)
    t = np.arange(48000 * 9) / 48000
    mix = np.stack([(0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)] * 2)
    alone = backend.tag(mix, 48000)
    real = backend.stem_instruments(mix, 48000, {})  # the real pass over a stem: mapped instruments
    assert all(0.0 <= s <= 1.0 for _, s in real)
    monkeypatch.setattr(backend, "stem_instruments", lambda *a: [("harp", 0.93)])
    out = backend.tag(mix, 48000, accompaniment=mix)
    assert ("harp", "model:musicnn:accompaniment_stem") in out["picks"]["instrument"]
    assert out["scores"]["instrument"]["harp"] == 0.93 and "harp" not in alone["scores"]["instrument"]
    assert {t for t, _ in out["picks"]["instrument"]} >= {t for t, _ in alone["picks"]["instrument"]}
    assert out["picks"]["genre"] == alone["picks"]["genre"]  # the stem adds instruments, nothing else


def test_stage_default_is_musicnn_and_instrumentals_get_no_gender(make_song, work_dir):
    assert TagSongs.default_backend == "musicnn"
    song = make_song(duration=15.0, seed=1, vocals=False, with_stems=True)
    song.source.file_tags = {"genre": "Rock"}  # metadata still wins where present
    song.labels["lyrics"] = {"transcribed": True, "words": [], "vocal_activity": {"source": "vad", "share": 0.0}}
    song.source.sidecar = {"gender": "female"}  # even declared, an instrumental carries no vocal gender

    def check(out):
        (s,) = out
        tags = s.labels["tags"]
        assert tags["vocals"]["present"] is False and tags["gender"] == ""
        assert tags["genre"] == "rock" and tags["sources"]["genre"]["rock"] == "file_tags"
        assert all(d["score"] is not None for d in tags["details"] if d["source"] == "model:musicnn")
        assert s.provenance["tags"]["backend"] == "musicnn"

    with TestPipeline() as p:
        songs, failed = p | beam.Create([song]) | stage(TagSongs, work_dir)
        assert_that(songs, check)


def test_voiced_windows_pick_every_other_window_that_overlaps_the_voice():
    from transforms.tags.musicnn_backend import voiced_windows

    step = 187 * 256 / 16000  # one window, 2.992 s
    assert voiced_windows(7, None) == [0, 2, 4, 6]  # voice unknown: every other window
    assert voiced_windows(7, []) == []  # no voice found: no window
    # a voice from 1.0 to 10.0 s overlaps windows 0-3; touching a window's edge is not overlapping it
    assert voiced_windows(7, [(1.0, 10.0)]) == [0, 2]
    assert voiced_windows(7, [(1.0, 10.0)], stride=1) == [0, 1, 2, 3]
    assert voiced_windows(7, [(2 * step, 3 * step), (6 * step + 0.5, 40.0)], stride=1) == [2, 6]


def test_stem_passes_run_only_where_a_voice_was_found(backend, monkeypatch):
    rng = np.random.default_rng(2)
    t = np.arange(48000 * 15) / 48000  # 5 windows
    mix = np.stack([(0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)] * 2)
    sizes = []
    real_scores = backend.tagger.scores

    def counted(name, patches):
        sizes.append((name, len(patches)))
        return real_scores(name, patches)

    monkeypatch.setattr(backend.tagger, "scores", counted)
    none_found = backend.tag(mix, 48000, vocals=mix, accompaniment=mix, voiced=[])
    assert sizes == [("MTT_musicnn", 5), ("MSD_musicnn", 5)]  # the mix only: no stem pass at all
    assert none_found["picks"]["gender"] == [] and "stem_vocal" not in none_found
    sizes.clear()
    some = backend.tag(mix, 48000, vocals=mix, accompaniment=mix, voiced=[(0.5, 4.0)])
    # vocal stem: windows 0 and 1 overlap the voice, every other one of them is tagged; the
    # accompaniment stem: every other window of the song
    assert sizes == [("MTT_musicnn", 5), ("MSD_musicnn", 5), ("MTT_musicnn", 1), ("MTT_musicnn", 3)]
    assert "stem_vocal" in some
    sizes.clear()
    backend.tag(mix, 48000, vocals=mix, accompaniment=mix)  # unknown voice: every other window of both
    assert sizes[2:] == [("MTT_musicnn", 3), ("MTT_musicnn", 3)]


def test_stage_hands_the_lyrics_stage_s_voice_regions_to_the_tagger(make_song):
    from transforms.tags.stage import voiced_regions

    song = make_song(duration=5.0, seed=3, vocals=False)
    assert voiced_regions(song) is None  # no lyrics label: unknown
    song.labels["lyrics"] = {"vocal_activity": {"source": "vad", "regions": [], "share": 0.0}}
    assert voiced_regions(song) == []
    song.labels["lyrics"]["vocal_activity"]["regions"] = [[1.0, 2.5], [4.0, 4.5]]
    assert voiced_regions(song) == [(1.0, 2.5), (4.0, 4.5)]
