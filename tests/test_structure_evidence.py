"""The level check's model evidence: the tempo CNN (tempo_cnn.py), the genre tilt and their wiring (evidence.py).

The tempo CNN's shipped weights come from the tempocnn package that scripts/install.sh installs; the
Keras graphs are checked against outputs TensorFlow gave for the same input (tests/data).
"""

import json
import os
import shutil

import numpy as np
import pytest

from transforms.core.stage import BackendUnavailable
from transforms.structure import evidence as ev
from transforms.structure import tempo, tempo_cnn

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "tempo_cnn_reference.json")
SR = 22050


def click_song(bpm: float, seconds: float = 30.0, sr: int = SR) -> np.ndarray:
    """Kick-like thumps on every beat and a hi-hat tick half-way between, mono float32."""
    y = np.zeros(int(seconds * sr), np.float32)
    t = np.arange(int(0.08 * sr)) / sr
    kick = (np.sin(2 * np.pi * 60 * t) * np.exp(-t * 30)).astype(np.float32)
    tick = (np.random.default_rng(0).standard_normal(int(0.02 * sr)) * 0.3).astype(np.float32)
    for start in np.arange(0, seconds - 0.1, 60.0 / bpm):
        i = int(start * sr)
        y[i:i + len(kick)] += kick
        j = int((start + 30.0 / bpm) * sr)
        y[j:j + len(tick)] += tick[: max(0, len(y) - j)]
    return y


# ---------- the graph interpreter and the shipped weights ----------

@pytest.mark.parametrize("name", sorted(tempo_cnn.MODELS))
def test_shipped_models_match_tensorflow(name):
    import torch

    ref = json.load(open(REFERENCE))
    x = (np.random.default_rng(7).random((2, 40, 256)) ** 2 * 3).astype(np.float32)
    graph = tempo_cnn.KerasGraph(tempo_cnn.model_path(name))
    with torch.inference_mode():
        out = graph(torch.from_numpy(tempo_cnn.normalise(x, tempo_cnn.MODELS[name][1]))).numpy()
    assert out.shape == (2, 256)
    assert np.abs(out - np.asarray(ref[name])).max() < 1e-5
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_a_click_track_peaks_at_its_tempo():
    cnn = tempo_cnn.TempoCNN()
    dist = cnn.distribution(click_song(120.0), SR)
    assert dist.shape == (256,) and abs(dist.sum() - 1.0) < 1e-4
    assert abs(tempo_cnn.peak_bpm(dist) - 120.0) < 2.5
    assert tempo_cnn.support(dist, 120.0) > 0.5 > tempo_cnn.support(dist, 90.0)


def test_weights_are_pinned(tmp_path):
    src = tempo_cnn.model_path("deeptemp_k8")
    shutil.copy(src, tmp_path / "deeptemp_k8.h5")
    assert tempo_cnn.TempoCNN(("deeptemp_k8",), folder=str(tmp_path)).names == ("deeptemp_k8",)
    with open(tmp_path / "deeptemp_k8.h5", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="sha256"):
        tempo_cnn.TempoCNN(("deeptemp_k8",), folder=str(tmp_path))
    with pytest.raises(BackendUnavailable):
        tempo_cnn.model_path("cnn", folder=str(tmp_path))
    with pytest.raises(KeyError):
        tempo_cnn.model_path("no_such_model")


def test_windows_pad_and_hop():
    assert tempo_cnn.windows(np.ones((40, 100), np.float32)).shape == (1, 40, 256)
    w = tempo_cnn.windows(np.arange(40 * 700, dtype=np.float32).reshape(40, 700))
    assert w.shape == (4, 40, 256) and w[1, 0, 0] == 128.0  # starts 0, 128, 256, 384
    assert tempo_cnn.normalise(np.array([[2.0, 4.0]]), "max").tolist() == [[0.5, 1.0]]
    z = tempo_cnn.normalise(np.array([[1.0, 3.0]]), "std")
    assert np.allclose(z, [[-1.0, 1.0]])


def test_support_and_peak_are_pure():
    dist = np.zeros(256)
    dist[90] = 0.6  # 120 bpm
    dist[89] = dist[91] = 0.2
    assert abs(tempo_cnn.peak_bpm(dist) - 120.0) < 1e-9
    assert abs(tempo_cnn.support(dist, 120.0) - 1.0) < 1e-9  # 117.6-122.4 holds all three classes
    assert tempo_cnn.support(dist, 60.0) == 0.0 and tempo_cnn.support(dist, 0.0) == 0.0
    dist[91] = 0.4
    dist[89] = 0.0
    assert 120.0 < tempo_cnn.peak_bpm(dist) < 121.0


# ---------- the decision with model evidence (pure) ----------

def _cand(bpm, **terms):
    base = {"periodicity": 0.8, "salience": 1.0, "contrast": 0.8, "uniformity": 0.8, "dominance": 1.0,
            "downbeat": 0.3}
    return {"bpm": bpm, **base, **terms}


def test_cnn_support_overrides_the_prior():
    plain = tempo.score_levels([_cand(90.0), _cand(180.0)])
    assert plain[0]["bpm"] == 90.0  # the prior prefers 90 over 180
    ranked = tempo.score_levels([_cand(90.0, cnn=0.01), _cand(180.0, cnn=0.9)])
    assert ranked[0]["bpm"] == 180.0


def test_metal_tilts_towards_the_fast_level():
    assert tempo.score_levels([_cand(95.0, metal=0.0), _cand(190.0, metal=0.0)])[0]["bpm"] == 95.0
    assert tempo.score_levels([_cand(95.0, metal=0.5), _cand(190.0, metal=0.5)])[0]["bpm"] == 190.0


def test_the_cnn_peak_joins_the_candidates_only_when_no_ratio_is_near():
    y = click_song(120.0)
    env = tempo.accent_envelopes(y, SR)
    beats = np.arange(0.0, 29.0, 60.0 / 126.0)  # a tracker locked 5 % fast
    dist = np.zeros(256)
    dist[90] = 1.0  # the CNN says 120
    cands = [{"bpm": 126.0 * r, "ratio": r} for r in tempo.RATIOS]
    extra = tempo.model_candidates(cands, env, 126.0, tempo.ModelEvidence(tempo=dist, metal=0.1))
    assert len(extra) == 1 and extra[0]["source"] == "tempo_cnn" and abs(extra[0]["bpm"] - 120.0) < 1.5
    assert extra[0]["cnn"] == 1.0 and all(c["metal"] == 0.1 for c in cands)
    near = [{"bpm": 120.5 * r, "ratio": r} for r in tempo.RATIOS]
    assert tempo.model_candidates(near, env, 120.5, tempo.ModelEvidence(tempo=dist)) == []
    assert tempo.model_candidates(near, env, 120.5, None) == []
    decision = tempo.decide(beats, env, evidence=tempo.ModelEvidence(tempo=dist))
    assert abs(decision.bpm - 120.0) < 1.5 and abs(tempo.tempo_from_beats(decision.beats) - 120.0) < 1.5


# ---------- evidence.py and the stage's flags ----------

def test_parse_models():
    assert ev.parse_models(None) == tempo_cnn.DEFAULT_TEMPO_MODELS
    assert ev.parse_models("none") == () and ev.parse_models("fcn, cnn") == ("fcn", "cnn")
    with pytest.raises(ValueError, match="unknown"):
        ev.parse_models("cnn,bogus")
    with pytest.raises(ValueError):
        ev.LevelEvidence(None, "jazz")
    assert not ev.LevelEvidence("none", "none").active
    assert ev.LevelEvidence("none", "none").measure(click_song(120.0, 5.0), SR) is None


def test_measure_gives_both_terms():
    models = ev.LevelEvidence()
    models.check()
    out = models.measure(click_song(120.0, 20.0), SR)
    assert out.tempo.shape == (256,) and 0.0 <= out.metal <= 1.0
    assert "AGPL-3.0" in models.describe() and "MTT_musicnn" in models.describe()


def test_a_missing_evidence_model_stops_at_start_up(monkeypatch):
    from transforms.structure.dsp import DspStructure

    def missing(name, folder=None):
        raise BackendUnavailable("tempocnn is not installed")

    monkeypatch.setattr(tempo_cnn, "model_path", missing)
    with pytest.raises(BackendUnavailable, match="tempocnn"):
        DspStructure({}).check()
    DspStructure({"tempo_cnn": "none"}).check()  # switched off: nothing to find
    DspStructure({"tempo_level": "off"}).check()


def test_dsp_records_the_evidence_and_names_the_models():
    from transforms.structure.dsp import DspStructure

    backend = DspStructure({})
    result = backend.analyze(click_song(120.0)[None], SR, {})
    level = result["tempo_level"]
    assert level["checked"] and abs(level["cnn_bpm"] - 120.0) < 2.5 and 0.0 <= level["metal"] <= 1.0
    assert abs(result["bpm"] - 120.0) / 120.0 < 0.02
    assert "tempo CNN" in backend.provenance().note
    off = DspStructure({"tempo_cnn": "none", "genre_prior": "none"})
    assert "cnn_bpm" not in off.analyze(click_song(120.0)[None], SR, {})["tempo_level"]
    assert "no learned weights" in off.provenance().note


# ---------- bars after a level change: low-band accents plus harmonic change ----------

def chord_song(bpm: float = 120.0, bars: int = 12, offset_beats: int = 0, sr: int = SR) -> tuple:
    """A kick on beats 1 and 3 of every bar (so the accents cannot tell them apart) under triads that
    change on each bar line; the first bar line falls ``offset_beats`` beats in. (audio, beats, downbeats)."""
    beat = 60.0 / bpm
    n_beats = bars * 4 + offset_beats
    y = np.zeros(int((n_beats + 1) * beat * sr), np.float32)
    t = np.arange(int(0.1 * sr)) / sr
    kick = (np.sin(2 * np.pi * 55 * t) * np.exp(-t * 25)).astype(np.float32)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    beats = np.arange(n_beats) * beat
    for k, start in enumerate(beats):
        i = int(start * sr)
        if (k - offset_beats) % 2 == 0:
            y[i:i + len(kick)] += kick
        chord = chords[((k - offset_beats) // 4) % len(chords)]
        tt = np.arange(int(beat * sr)) / sr
        y[i:i + len(tt)] += 0.1 * sum(np.sin(2 * np.pi * f * tt) for f in chord).astype(np.float32)
    return y, beats, beats[offset_beats::4]


def test_harmonic_change_peaks_on_bar_lines():
    from transforms.structure.bars import harmonic_change

    y, beats, downbeats = chord_song(offset_beats=2)
    change = harmonic_change(y, SR, beats)
    on_bar = np.isin(np.round(beats, 6), np.round(downbeats, 6))
    assert change[on_bar][1:].mean() > 5 * change[~on_bar][2:-2].mean()
    assert harmonic_change(y, SR, beats[:1]).tolist() == [0.0]


@pytest.mark.parametrize("offset", [0, 2])
def test_bars_follow_the_chords_when_the_kick_is_ambiguous(offset):
    from transforms.structure.bars import harmonic_change

    y, beats, downbeats = chord_song(offset_beats=offset)
    env = tempo.accent_envelopes(y, SR)
    found, meter = tempo.downbeats_from_accents(beats, env, harmonic_change(y, SR, beats))
    assert meter == 4 and np.allclose(found[:5], downbeats[:5])
