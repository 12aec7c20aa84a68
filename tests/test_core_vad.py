"""Silero VAD for the lyrics stage: the shipped weights on sung, spoken and instrument-only audio,
the weights check, the hysteresis that turns probabilities into regions, and the vocal-presence rule.

Vocals are made here: festival's singing mode (as the sample corpus sings) and espeak-ng speech,
placed at known times on a silent 16 kHz stem; instruments come from the sample corpus's synth.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile

import numpy as np
import pytest

from pipeline import sample_corpus as sc
from transforms.core import audio as au
from transforms.core.stage import BackendUnavailable
from transforms.core import vad as V

needs_silero = pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None,
                                  reason="silero-vad is not installed (pip install --no-deps silero-vad==6.2.3)")
needs_festival = pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival (text2wave) not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

SR = V.SAMPLE_RATE
LINES = ("the night is young and we run", "we walk the long road home", "hold on hold on to me")
STARTS = (1.0, 5.5, 10.0)
STEM_SECONDS = 14.0
# The package's TorchScript file, loaded only to check songshard's network against it.
JIT_FILE, JIT_SHA256 = "silero_vad.jit", "e1122837f4154c511485fe0b9c64455f7b929c96fbb8d79fbdb336383ebd3720"


def to16(x48: np.ndarray) -> np.ndarray:
    return au.resample(np.asarray(x48, dtype=np.float32)[None], sc.SR, SR)[0]


def place(clips):
    """(stem, truth spans): each clip trimmed to its active part, peak 0.5, placed at STARTS."""
    stem, truth = np.zeros(int(STEM_SECONDS * SR), dtype=np.float32), []
    for t0, x in zip(STARTS, clips):
        a, b = sc.active_span(x, rel=0.03, hop=160)
        x = x[a:b] / np.abs(x[a:b]).max() * 0.5
        stem[int(t0 * SR):int(t0 * SR) + x.size] = x
        truth.append((t0, t0 + x.size / SR))
    return stem, truth


@functools.lru_cache(maxsize=None)  # festival is the slow part: sing each stem once
def sung_stem(gender: str):
    base = {"male": 48, "female": 60}[gender]
    clips = []
    for k, text in enumerate(LINES):
        words = text.split()
        notes = [(w, 0.35 if i < len(words) - 1 else 0.9, sc.midi_hz(base + (0, 2, 4, 5, 7, 4, 2)[(i + k) % 7]))
                 for i, w in enumerate(words)]
        with tempfile.TemporaryDirectory() as work:
            clips.append(to16(sc.sing_festival(notes, work)))
    return place(clips)


def spoken_stem():
    clips = []
    for k, text in enumerate(LINES):
        with tempfile.TemporaryDirectory() as work:
            clips.append(to16(sc.speak_espeak(text, ("male", "female")[k % 2], 4.0, work)))
    return place(clips)


@functools.lru_cache(maxsize=None)
def accompaniment(seconds: float = STEM_SECONDS) -> np.ndarray:
    plan = [("intro", 1), ("verse", 2), ("chorus", 2), ("outro", 1)]
    acc = sc.render_accompaniment(plan, 104.0, 0.1, 57, "minor", int(seconds * sc.SR), seed=0).mean(axis=0)
    return to16(acc / np.abs(acc).max() * 0.7)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def assert_lines_found(regions, truth, tol=0.3):
    """Every true line has regions starting and ending within ``tol`` s of it; no region is elsewhere."""
    for a, b in truth:
        hits = [(s, e) for s, e in regions if s < b and e > a]
        assert hits, f"line {a:.2f}-{b:.2f} not found in {regions}"
        assert abs(hits[0][0] - a) <= tol and abs(hits[-1][1] - b) <= tol, (a, b, hits)
    for s, e in regions:
        assert any(s < b and e > a for a, b in truth), f"region {s}-{e} lies outside every line"


@pytest.fixture(scope="module")
def vad():
    if importlib.util.find_spec("silero_vad") is None:
        pytest.skip("silero-vad is not installed (pip install --no-deps silero-vad==6.2.3)")
    return V.SileroVad().load()


# ---------------------------------------------------------------- the model and its weights
@needs_silero
def test_provenance_names_the_pinned_shipped_weights(vad):
    prov = vad.provenance()
    assert prov.backend == "silero-vad" and prov.licence == "MIT"
    assert prov.weights_sha256 == V.WEIGHTS_SHA256 and prov.version == "6.2.3"
    with open(V.weights_path(), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == V.WEIGHTS_SHA256


@needs_silero
def test_tampered_or_malformed_weights_are_refused(tmp_path):
    bad = tmp_path / V.WEIGHTS_FILE
    data = bytearray(open(V.weights_path(), "rb").read())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(BackendUnavailable, match="sha256"):
        V.SileroVad(path=str(bad)).load()
    import torch

    with pytest.raises(BackendUnavailable, match="expected tensors"):
        V.SileroVad().set_weights({"conv1.weight": torch.zeros(128, 129, 3)})


@needs_silero
def test_network_matches_the_packages_torchscript_model_frame_by_frame(vad):
    """The same weights in songshard's batched network and in the package's own TorchScript model
    (called one 512-sample frame at a time, carrying its state) give the same probabilities."""
    import torch

    path = os.path.join(os.path.dirname(V.weights_path()), JIT_FILE)
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == JIT_SHA256, "unexpected TorchScript file: not loading it"
    jit = torch.jit.load(path)
    own = dict(jit._model.named_parameters()) | dict(jit._model.named_buffers())
    names = {"stft_conv.weight": "stft.forward_basis_buffer", "final_conv.weight": "decoder.decoder.2.weight",
             "final_conv.bias": "decoder.decoder.2.bias"}
    names |= {f"conv{i + 1}.{p}": f"encoder.{i}.reparam_conv.{p}" for i in range(4) for p in ("weight", "bias")}
    names |= {f"lstm_cell.{p}": f"decoder.rnn.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    ours = V.SileroVad(block_frames=16).set_weights({k: own[v] for k, v in names.items()})
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
             + 0.02 * rng.standard_normal(t.size)).astype(np.float32)[:-100]  # not a multiple of 512
    padded = np.pad(audio, (0, -audio.size % V.FRAME_SAMPLES))
    jit.reset_states()
    with torch.no_grad():
        ref = np.array([float(jit(torch.from_numpy(padded[i:i + V.FRAME_SAMPLES])[None], SR))
                        for i in range(0, padded.size, V.FRAME_SAMPLES)])
    got = ours.speech_probs(audio)
    assert got.shape == ref.shape == (-(-audio.size // V.FRAME_SAMPLES),)
    assert np.abs(got - ref).max() < 1e-4 and ref.max() - ref.min() > 0.1
    # block boundaries (16 frames here, 4096 by default) carry the state: same output
    assert np.abs(V.SileroVad(block_frames=4096).set_weights(ours.weights).speech_probs(audio) - got).max() < 1e-5


@needs_silero
def test_speech_probs_shapes_and_errors(vad):
    assert vad.speech_probs(np.zeros(0, dtype=np.float32)).shape == (0,)
    assert vad.speech_probs(np.zeros(513, dtype=np.float32)).shape == (2,)
    assert float(vad.speech_probs(np.zeros(SR, dtype=np.float32)).max()) < 0.1
    with pytest.raises(ValueError):
        vad.speech_probs(np.zeros((2, SR), dtype=np.float32))
    with pytest.raises(RuntimeError):
        V.SileroVad().speech_probs(np.zeros(SR, dtype=np.float32))


# ---------------------------------------------------------------- vocals and instruments
@needs_silero
@needs_festival
@pytest.mark.parametrize("gender", ["male", "female"])
def test_sung_lines_are_found_within_0_3_s(vad, gender):
    stem, truth = sung_stem(gender)
    assert_lines_found(V.vocal_regions(vad, stem), truth)


@needs_silero
@needs_espeak
def test_spoken_lines_are_found_within_0_3_s(vad):
    stem, truth = spoken_stem()
    assert_lines_found(V.vocal_regions(vad, stem), truth)


@needs_silero
@needs_festival
def test_sung_lines_on_a_stem_with_leaked_accompaniment(vad):
    stem, truth = sung_stem("female")
    acc = accompaniment()
    leaky = stem + acc * (rms(stem) / rms(acc) * 10 ** (-20 / 20))  # accompaniment 20 dB under the voice
    assert_lines_found(V.vocal_regions(vad, leaky), truth)


def _instruments():
    n = int(STEM_SECONDS * sc.SR)
    chords = np.concatenate([sc.pad_chord(sc.triad(69, "minor", d), 2 * sc.SR, 6).mean(axis=0)
                             for d in (0, 5, 3, 4, 0, 5, 3)])[:n]
    drums = np.zeros(n)
    for b in range(int(STEM_SECONDS * 2)):
        for kind, gain in (("kick" if b % 2 == 0 else "snare", 0.9), ("hat", 0.3)):
            hit = sc.drum_hit(kind)
            at = b * sc.SR // 2
            drums[at:at + hit.size] += gain * hit[:n - at]
    t = np.arange(sc.SR // 2) / sc.SR
    lead = np.concatenate([sum(np.sin(2 * np.pi * h * sc.midi_hz(69 + (0, 3, 5, 7, 10, 7, 5, 3)[k % 8]) * t) / h
                               for h in range(1, 9)) for k in range(int(STEM_SECONDS * 2))])
    acc = accompaniment()
    return {"chords": to16(chords / np.abs(chords).max() * 0.6), "drums": to16(drums / np.abs(drums).max() * 0.7),
            "synth_lead": to16(lead / np.abs(lead).max() * 0.6), "accompaniment": acc,
            "leak_-30dBFS": acc * (10 ** (-30 / 20) / rms(acc)), "leak_-40dBFS": acc * (10 ** (-40 / 20) / rms(acc))}


@needs_silero
def test_instrument_only_audio_has_almost_no_vocal_regions(vad):
    for name, audio in _instruments().items():
        regions = V.vocal_regions(vad, audio)
        share = sum(e - s for s, e in regions) / (audio.size / SR)
        assert share < 0.05, (name, regions)


# ---------------------------------------------------------------- hysteresis (pure)
def test_regions_from_probs_opens_high_and_closes_low():
    probs = [0.0] * 10 + [0.9] * 5 + [0.2] * 10 + [0.0] * 20  # 0.2 lies between the two thresholds
    assert V.regions_from_probs(probs, 0.1, threshold=0.3, min_speech_s=0.2, min_silence_s=0.3, pad_s=0.0) \
        == [(1.0, 2.5)]
    assert V.regions_from_probs([0.25] * 40, 0.1, threshold=0.3) == []  # never reaches the threshold
    assert V.regions_from_probs(probs, 0.1, 0.3, 0.2, 0.3, 0.0, neg_threshold=0.25) == [(1.0, 1.5)]
    assert V.regions_from_probs([], 0.1) == []
    with pytest.raises(ValueError):
        V.regions_from_probs(probs, 0.1, threshold=0.3, neg_threshold=0.5)


def test_regions_from_probs_bridges_short_gaps_drops_blips_and_pads():
    probs = np.zeros(100)
    probs[10:20] = probs[23:30] = 0.9  # gap of 0.3 s: bridged when min_silence_s is 0.5
    probs[60:62] = 0.9  # 0.2 s blip: dropped under min_speech_s 0.25
    probs[95:] = 0.9  # runs to the end: the pad stops at 10 s
    got = V.regions_from_probs(probs, 0.1, threshold=0.5, min_speech_s=0.25, min_silence_s=0.5, pad_s=0.2)
    assert got == [(0.8, 3.2), (9.3, 10.0)]
    got = V.regions_from_probs(probs, 0.1, threshold=0.5, min_speech_s=0.25, min_silence_s=0.2, pad_s=0.0)
    assert got == [(1.0, 2.0), (2.3, 3.0), (9.5, 10.0)]
    # padding that makes neighbours overlap merges them; padding never goes below 0
    probs = np.zeros(30)
    probs[0:5] = probs[12:20] = 0.9
    assert V.regions_from_probs(probs, 0.1, 0.5, 0.1, 0.5, 0.4) == [(0.0, 2.4)]


def test_schmitt_keeps_state_between_thresholds():
    state = V.schmitt(np.array([0.2, 0.6, 0.3, 0.2, 0.05, 0.3, 0.7]), on=0.5, off=0.1)
    assert state.tolist() == [False, True, True, True, False, False, True]
