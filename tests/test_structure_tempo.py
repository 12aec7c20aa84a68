"""Metrical level (tempo.py) and the BeatNet backend (beatnet.py) on synthetic drum songs.

The songs are made here: kick / snare / hi-hat patterns and a bass line,
deterministic numpy synthesis, at tempi where beat trackers pick the wrong
level (70 bpm ballad, 175 bpm metal with double kick, 190 bpm punk) plus a
120 bpm rock beat and a 90 bpm shuffle (swung eighths).
"""

import os

import numpy as np
import pytest

from transforms.structure import tempo

SR = 22050
# style -> per-bar events (position in beats, instrument, gain); 4 beats a bar
PATTERNS = {
    "ballad": [(0, "k", 1), (2.5, "k", .7), (3, "k", .8), (1, "s", .9), (3, "s", .9)]
              + [(i / 4, "h", .35 if i % 2 else .5) for i in range(16)],
    "rock": [(0, "k", 1), (2, "k", 1), (2.5, "k", .8), (1, "s", 1), (3, "s", 1)]
            + [(i / 2, "h", .6) for i in range(8)],
    "metal": [(i / 2, "k", .85) for i in range(8)] + [(1, "s", 1), (3, "s", 1)]
             + [(b, "h", .8) for b in range(4)],
    "punk": [(0, "k", 1), (2, "k", 1), (1, "s", 1), (3, "s", 1)] + [(i / 2, "h", .6) for i in range(8)],
    "shuffle": [(0, "k", 1), (1 + 2 / 3, "k", .6), (2, "k", 1), (1, "s", 1), (3, "s", 1)]
               + [(b + o, "h", g) for b in range(4) for o, g in ((0, .6), (2 / 3, .45))],
}
ROOTS = (55.0, 73.4, 65.4, 49.0)  # the bass changes chord every bar
SONGS = [("ballad", 70.0), ("rock", 120.0), ("metal", 175.0), ("punk", 190.0), ("shuffle", 90.0)]


def _hit(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One drum hit: a pitch-dropping sine kick, a tone + noise snare, or a short bright hi-hat."""
    n = int({"k": 0.25, "s": 0.18, "h": 0.06}[kind] * SR)
    t = np.arange(n) / SR
    if kind == "k":
        return np.sin(2 * np.pi * np.cumsum(45 + 90 * np.exp(-t / 0.03)) / SR) * np.exp(-t / 0.09)
    noise = rng.standard_normal(n + 1)
    if kind == "s":
        bright = noise[1:] - 0.6 * noise[:-1]
        return 0.55 * bright * np.exp(-t / 0.05) + 0.6 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.04)
    return 0.5 * np.diff(noise) * np.exp(-t / 0.012)


def _bass(freq: float, dur: float) -> np.ndarray:
    """A plucked saw-like bass note (soft 15 ms attack) of ``dur`` seconds."""
    t = np.arange(int(dur * SR)) / SR
    saw = sum(np.sin(2 * np.pi * h * freq * t) / h for h in range(1, 6))
    return 0.25 * saw * np.minimum(1, t / 0.015) * np.exp(-t / (0.8 * dur))


def drum_song(bpm: float, style: str, duration: float = 32.0, seed: int = 0) -> tuple:
    """(mono float32 audio at 22.05 kHz, true beat times) of a drum pattern + bass line song."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    out = np.zeros(n + SR)
    beat = 60.0 / bpm

    def add(sound, at):
        i = int(at * SR)
        if i < n:
            out[i:i + len(sound)] += sound[: len(out) - i]

    for bar in range(int(duration / (4 * beat)) + 1):
        t0 = bar * 4 * beat
        for pos, kind, gain in PATTERNS[style]:
            add(gain * (1 + 0.05 * rng.standard_normal()) * _hit(kind, rng), t0 + pos * beat)
        if style == "shuffle":
            steps = [b + o for b in range(4) for o in (0, 2 / 3)]
        else:
            steps = list(range(4)) if bpm < 100 else [k / 2 for k in range(8)]
        for k, pos in enumerate(steps):
            add(_bass(ROOTS[bar % 4] * (2 if k % 4 == 3 else 1), 0.45 * beat), t0 + pos * beat)
    out = out[:n] / (np.abs(out[:n]).max() * 1.1)
    return out.astype(np.float32), np.arange(0, duration - 1e-9, beat)


def beat_f_measure(est, ref, window: float = 0.07) -> float:
    """F-measure of estimated beats matched one-to-one to reference beats within ``window`` s."""
    est, ref = np.sort(np.asarray(est, float)), np.asarray(ref, float)
    if not len(est) or not len(ref):
        return 0.0
    used, hits = np.zeros(len(est), bool), 0
    for r in ref:
        gaps = np.where(used, np.inf, np.abs(est - r))
        k = int(np.argmin(gaps))
        if gaps[k] <= window:
            used[k], hits = True, hits + 1
    p, rc = hits / len(est), hits / len(ref)
    return 2 * p * rc / (p + rc) if hits else 0.0


# ---------- pure: the level decision on hand-made evidence ----------

def _cand(bpm, **terms):
    """A candidate with middling evidence everywhere, ``terms`` overriding."""
    base = {"periodicity": 0.8, "salience": 1.0, "contrast": 0.8, "uniformity": 0.8, "dominance": 1.0,
            "downbeat": 0.3}
    return {"bpm": bpm, **base, **terms}


def test_equal_evidence_goes_to_the_tempo_nearer_120():
    ranked = tempo.score_levels([_cand(80.0), _cand(120.0), _cand(180.0)])
    assert ranked[0]["bpm"] == 120.0 and ranked[0]["probability"] > 0.34
    assert abs(ranked[1]["score"] - ranked[2]["score"]) < 1e-9  # 80 and 180 are 3:2 either side
    assert abs(sum(c["probability"] for c in ranked) - 1.0) < 1e-9


def test_strong_offbeats_push_to_the_faster_level():
    # 85 bpm whose half-way points are as loud as its pulses (contrast ~0): the 170 level is the beat
    ranked = tempo.score_levels([_cand(85.0, contrast=0.02, uniformity=1.0), _cand(170.0, contrast=0.7)])
    assert ranked[0]["bpm"] == 170.0


def test_alternating_weak_pulses_push_to_the_slower_level():
    # 140 bpm whose every other pulse is weak (uniformity 0.2): the 70 bpm level is the beat
    ranked = tempo.score_levels([_cand(70.0, contrast=0.8), _cand(140.0, uniformity=0.2, contrast=0.9)])
    assert ranked[0]["bpm"] == 70.0


def test_a_grid_drifting_through_the_bar_loses_despite_the_prior():
    # 113 bpm (2:3 of 170): stronger onsets fall between its pulses (dominance 0.6), pulses uneven
    ranked = tempo.score_levels([_cand(113.3, dominance=0.6, uniformity=0.5), _cand(170.0)])
    assert ranked[0]["bpm"] == 170.0 and ranked[0]["probability"] > 0.5


def test_out_of_range_candidates_are_dropped():
    assert [c["bpm"] for c in tempo.score_levels([_cand(30.0), _cand(300.0), _cand(100.0)])] == [100.0]
    assert tempo.score_levels([]) == []


def test_prior_is_log_normal_around_120():
    assert tempo.tempo_prior(120.0) == 1.0
    assert abs(tempo.tempo_prior(60.0) - tempo.tempo_prior(240.0)) < 1e-12
    assert tempo.tempo_prior(90.0) > tempo.tempo_prior(60.0) > tempo.tempo_prior(40.0)


def test_level_grids_subdivide_and_decimate():
    beats = np.arange(9) * 0.5  # 120 bpm
    assert np.allclose(tempo.level_grid(beats, 2.0), np.arange(17) * 0.25)
    assert np.allclose(tempo.level_grid(beats, 0.5, phase=1.0), [0.5, 1.5, 2.5, 3.5])
    assert np.allclose(np.diff(tempo.level_grid(beats, 1.5)), 1 / 3)  # 180 bpm
    assert np.allclose(np.diff(tempo.level_grid(beats, 2 / 3)), 0.75)  # 80 bpm
    assert len(tempo.level_grid(beats[:1], 2.0)) == 0


def test_periodicity_of_a_pulse_train():
    env = np.zeros(1000)
    env[::20] = 1.0  # period 20 frames = 0.2 s at 100 fps
    assert tempo.periodicity(env, 100.0, 0.2) > 0.9
    assert tempo.periodicity(env, 100.0, 0.3) < 0.1
    assert tempo.dominance(env, 100.0, np.arange(0, 9.8, 0.2)) == 1.0
    assert tempo.dominance(env, 100.0, np.arange(0.1, 9.8, 0.2)) < 0.1  # pulses between the onsets


def test_downbeats_follow_the_low_band_accent():
    fps = 100.0
    low = np.zeros(2000)
    low[::50] = 1.0
    low[30::200] = 0.0
    low[150::200] = 3.0  # the 4th beat of each 4 is the loud one
    env = tempo.Envelopes(full=np.ones(2000), low=low, fps=fps)
    downbeats, meter = tempo.downbeats_from_accents(np.arange(0, 19.9, 0.5), env)
    assert meter == 4 and np.allclose(downbeats[:3], [1.5, 3.5, 5.5])


# ---------- the decision on synthetic songs ----------

@pytest.fixture(scope="module")
def songs():
    """{name: (true bpm, audio, true beats)} of the five test songs, made once per module."""
    return {f"{style}{int(bpm)}": (bpm,) + drum_song(bpm, style, seed=int(bpm)) for style, bpm in SONGS}


@pytest.mark.parametrize("name", [f"{s}{int(b)}" for s, b in SONGS])
def test_dsp_beats_plus_level_choice_find_the_tempo(songs, name):
    from transforms.structure.dsp import DspStructure, tempo_from_beats

    bpm, y, _ = songs[name]
    beats, downbeats, meter = DspStructure({}).track_beats(y, y[None], SR)
    beats, downbeats, meter, decision = tempo.apply_level(y, SR, beats, downbeats, meter)
    assert abs(decision.bpm - bpm) / bpm < 0.02, decision.candidates[:3]
    assert abs(tempo_from_beats(beats) - bpm) / bpm < 0.02  # the re-derived beats carry that tempo
    assert 0.0 < decision.confidence <= 1.0 and meter in (3, 4)


# ---------- BeatNet: shipped weights, features, decoder ----------

def _beatnet():
    """The beatnet module, or a skip when the BeatNet weights package is not installed."""
    from transforms.structure import beatnet as bn

    try:
        bn.weights_path(1)
    except Exception as exc:  # noqa: BLE001 - the weights package is optional
        pytest.skip(f"BeatNet weights not installed: {exc}")
    return bn


def test_decoder_recovers_a_clean_grid():
    from transforms.structure import beatnet as bn

    act = np.full((1000, 2), 0.01)  # 20 s at 50 fps, 120 bpm (25 frames a beat), 3 beats a bar
    act[10::25, 0] = 0.9
    act[10::75, 0] = 0.05
    act[10::75, 1] = 0.9
    beats, downbeats, meter = bn.decode(act, 50.0)
    assert meter == 3
    assert np.allclose(beats, np.arange(10, 1000, 25) / 50.0)
    assert np.allclose(downbeats, np.arange(10, 1000, 75) / 50.0)


def test_beatnet_weights_are_pinned(tmp_path):
    bn = _beatnet()
    bad = tmp_path / "model_1_weights.pt"
    data = bytearray(open(bn.weights_path(1), "rb").read())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the tensors
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        bn.load_network(1, str(bad))


def test_beatnet_features_match_the_reference_extractor(songs):
    """When madmom is importable, the numpy features equal its spectrogram chain (the one the model was trained on)."""
    bn = _beatnet()
    from transforms.structure.madmom_backend import import_madmom

    try:
        import_madmom()
        from madmom.audio.signal import FramedSignalProcessor, SignalProcessor
        from madmom.audio.spectrogram import (FilteredSpectrogramProcessor, LogarithmicSpectrogramProcessor,
                                              SpectrogramDifferenceProcessor)
        from madmom.audio.stft import ShortTimeFourierTransformProcessor
        from madmom.processors import SequentialProcessor
    except ImportError:
        pytest.skip("madmom not installed")
    y = songs["rock120"][1][: 5 * SR]
    chain = SequentialProcessor((
        SignalProcessor(num_channels=1, sample_rate=SR), FramedSignalProcessor(frame_size=1411, hop_size=441),
        ShortTimeFourierTransformProcessor(),
        FilteredSpectrogramProcessor(num_bands=24, fmin=30, fmax=17000, norm_filters=True),
        LogarithmicSpectrogramProcessor(mul=1, add=1),
        SpectrogramDifferenceProcessor(diff_ratio=0.5, positive_diffs=True, stack_diffs=np.hstack)))
    ref = np.asarray(chain(y))
    ours = bn.features(y)
    assert ours.shape == ref.shape == (int(np.ceil(len(y) / 441)), 272)
    assert np.abs(ours - ref).max() < 1e-4


def test_beatnet_backend_tracks_beats_with_the_shipped_weights(songs):
    _beatnet()
    from transforms.structure.beatnet import BeatNetStructure

    backend = BeatNetStructure({})
    backend.check()
    backend.load()
    prov = backend.provenance()
    assert prov.licence.startswith("CC BY 4.0") and len(prov.weights_sha256) == 64
    bpm, y, truth = songs["rock120"]
    beats, downbeats, meter = backend.track_beats(y, y[None], SR)
    assert beat_f_measure(beats, truth) > 0.8
    assert meter == 4 and len(downbeats) >= 0.2 * len(beats)


@pytest.mark.parametrize("name", ["ballad70", "rock120", "metal175", "punk190", "shuffle90"])
def test_beatnet_backend_finds_the_tempo(songs, name):
    _beatnet()
    from transforms.structure.beatnet import BeatNetStructure
    from transforms.structure.dsp import tempo_from_beats

    backend = BeatNetStructure({})
    backend.load()
    bpm, y, _ = songs[name]
    result = backend.analyze(y[None], SR, {})  # BeatNet's beats, then the check with the default model evidence
    assert abs(result["bpm"] - bpm) / bpm < 0.02 and result["tempo_level"]["checked"]
    assert {"cnn_bpm", "metal"} <= set(result["tempo_level"])  # the tempo CNN and the genre tilt took part
    assert abs(tempo_from_beats(np.asarray(result["beats"])) - bpm) / bpm < 0.02


def test_beatnet_backend_analyzes_a_48k_stereo_mix(songs):
    _beatnet()
    from transforms.core import audio as au
    from transforms.structure.beatnet import BeatNetStructure

    bpm, y, _ = songs["metal175"]
    mix = np.stack([y, 0.9 * y])
    result = BeatNetStructure({}).analyze(au.resample(mix, SR, 48000), 48000, {})
    assert abs(result["bpm"] - bpm) / bpm < 0.02
    assert result["time_signature"] in (3, 4) and result["sections"][0]["start"] == 0.0
    assert abs(result["sections"][-1]["end"] - len(y) / SR) < 0.1


def test_dsp_analyze_applies_the_level_check_unless_told_not_to(songs):
    from transforms.structure.dsp import DspStructure

    bpm, y, _ = songs["ballad70"]  # librosa's own tracker counts this one at 4:3
    checked = DspStructure({}).analyze(y[None], SR, {})
    assert abs(checked["bpm"] - bpm) / bpm < 0.02 and checked["tempo_level"]["checked"]
    raw = DspStructure({"tempo_level": "off"}).analyze(y[None], SR, {})
    assert raw["tempo_level"] == {"checked": False} and abs(raw["bpm"] - bpm) / bpm > 0.02
    with pytest.raises(ValueError):
        DspStructure({"tempo_level": "maybe"})


def test_beatnet_keeps_the_workers_thread_budget(songs):
    """BeatNet runs its LSTM on one thread, but the process's torch thread count (the worker's budget,
    which the separation and tag models share) is the same after it as before."""
    _beatnet()
    import torch

    from transforms.structure.beatnet import BeatNetStructure

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        backend = BeatNetStructure({})
        backend.load()
        _, y, _ = songs["rock120"]
        backend.analyze(y[None], SR, {})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
