"""Vocal activity for the lyrics stage from a learned model: Silero VAD (MIT licence).

The energy gate in :mod:`transforms.lyrics.guards` cannot tell a voice from
accompaniment that leaked into a separated vocal stem. Silero VAD, a small speech
detector, tells them apart. It was trained on speech: syllabic singing scores as
high as speech, but long sustained notes (a second or more a word), high ones
above all, score low, so a song's VAD time is a lower bound of its sung time (see
:class:`VadConfig` for the measurements behind the defaults).

* :class:`SileroVad` loads the 16 kHz network from the ``silero-vad`` PyPI package's
  safetensors file (a plain tensor container: nothing is unpickled and no code is
  run), after checking its sha256 against a pinned value, into songshard's own
  implementation of the network (STFT as a fixed convolution, four 1-D
  convolutions, one LSTM cell, a 1x1 output convolution). ``speech_probs`` gives one
  probability per 32 ms frame (512 samples), the LSTM state carried across frames.
* :func:`regions_from_probs` turns probabilities into (start, end) spans in seconds
  with a hysteresis threshold; :func:`vocal_regions` chains both.
* :func:`vocal_presence` decides whether a song has vocals from the VAD's share of
  the song, the ASR word count and an optional tagger score.
"""

from __future__ import annotations

import functools

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable

Region = Tuple[float, float]

PACKAGE = "silero-vad"
PACKAGE_VERSION = "6.2.3"  # the release whose weights file is pinned below
WEIGHTS_FILE = "silero_vad_16k.safetensors"
WEIGHTS_SHA256 = "c59271c284ae9c8335d795d60e0bfdb71aaaceec578d9bd9ffc1b8153c319ea1"
LICENCE = "MIT"
MODEL_NAME = "silero-vad 16k"
# The package's TorchScript / ONNX files hold a related checkpoint with different values; the
# safetensors one is used because it loads without running or unpickling anything.
NOTE = f"{MODEL_NAME}: the package's {WEIGHTS_FILE} checkpoint, run by songshard's implementation"

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512  # the network's window at 16 kHz
CONTEXT_SAMPLES = 64  # each window is fed with the previous window's last 64 samples in front
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s
N_FFT, HOP = 256, 128  # the fixed STFT convolution
STFT_PAD = 64  # reflected samples after each window, so its last hop gets a full STFT frame
HIDDEN = 128

# name -> shape of every tensor the network needs; anything else in the file is refused.
WEIGHT_SHAPES: Dict[str, Tuple[int, ...]] = {
    "stft_conv.weight": (2 * (N_FFT // 2 + 1), 1, N_FFT),
    "conv1.weight": (128, N_FFT // 2 + 1, 3), "conv1.bias": (128,),
    "conv2.weight": (64, 128, 3), "conv2.bias": (64,),
    "conv3.weight": (64, 64, 3), "conv3.bias": (64,),
    "conv4.weight": (128, 64, 3), "conv4.bias": (128,),
    "lstm_cell.weight_ih": (4 * HIDDEN, 128), "lstm_cell.weight_hh": (4 * HIDDEN, HIDDEN),
    "lstm_cell.bias_ih": (4 * HIDDEN,), "lstm_cell.bias_hh": (4 * HIDDEN,),
    "final_conv.weight": (1, HIDDEN, 1), "final_conv.bias": (1,),
}
CONV_STRIDES = (("conv1", 1), ("conv2", 2), ("conv3", 2), ("conv4", 1))


@dataclass(frozen=True)
class VadConfig:
    """How probabilities become vocal regions: a span opens at ``threshold``, closes below
    ``neg_threshold`` (``threshold - 0.15`` when None), silences shorter than ``min_silence_s`` are
    bridged, spans shorter than ``min_speech_s`` dropped, and each span padded by ``pad_s``.

    Defaults chosen with ``benchmarks/bench_vad.py --sweep``: synthetic 16 kHz stems of festival
    singing (0.35 s a word, and long notes of 1 s a word with vibrato) and espeak-ng speech, alone,
    over accompaniment leaked at -20 dB and in a -3 dB mix, plus instrument-only audio
    (accompaniment, chords, drums, synth lead, leakage at -30 / -40 dBFS). Speech-paced singing
    and speech: frame recall >= 0.99 at every threshold from 0.1 to 0.5, line edges within
    0.24 s on stems from 0.25 up (0.31 s at 0.2, 1 s below). Instrument-only audio: no region
    from 0.2 up, 10-14 % of the time at 0.1-0.15. Long notes lose recall as the threshold
    rises: male / female 0.89 / 0.60 at 0.2, 0.63 / 0.57 at 0.3, 0.43 / 0.13 at Silero's usual
    0.5. 0.3 sits at twice the threshold where instruments start to pass, with line edges
    within 0.3 s in mixes."""

    threshold: float = 0.3
    neg_threshold: Optional[float] = None
    min_speech_s: float = 0.25
    min_silence_s: float = 0.5
    pad_s: float = 0.1


DEFAULTS = VadConfig()


def weights_path() -> str:
    """Path of the shipped 16 kHz safetensors file; BackendUnavailable when silero-vad is missing.

    Uses the package's import spec rather than importing it: importing ``silero_vad``
    imports torch and sets torch's thread count for the whole process.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(f"vad: the Python package {PACKAGE} is not installed "
                                 f"(`pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}`)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise BackendUnavailable(f"vad: {path} is missing; reinstall {PACKAGE}=={PACKAGE_VERSION}")
    return path


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return ""


def read_verified(path: str, sha256: str = WEIGHTS_SHA256) -> bytes:
    """The file's bytes when their sha256 equals ``sha256``; BackendUnavailable otherwise.

    The bytes that were hashed are the bytes that get parsed, so the file cannot change
    between the check and the load."""
    with open(path, "rb") as f:
        data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise BackendUnavailable(f"vad: {path} has sha256 {actual}, expected {sha256} "
                                 f"({PACKAGE} {PACKAGE_VERSION}); refusing to load it")
    return data


class SileroVad:
    """Silero VAD at 16 kHz on CPU. ``load()`` once, then ``speech_probs(audio)`` per song.

    ``path`` overrides the shipped weights file (its sha256 must still match);
    ``threads`` sets torch's intra-op threads at load (None leaves them alone);
    ``block_frames`` bounds memory: the convolutions run on that many frames at a time.
    """

    def __init__(self, path: Optional[str] = None, threads: Optional[int] = None, block_frames: int = 4096):
        self.path = path
        self.threads = threads
        self.block_frames = int(block_frames)
        self.weights: Optional[Dict[str, "object"]] = None
        self.lstm = None

    def load(self) -> "SileroVad":
        """Verify and load the weights; BackendUnavailable when missing, tampered or malformed."""
        import torch
        from safetensors.torch import load as load_safetensors

        self.path = self.path or weights_path()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        return self.set_weights(load_safetensors(read_verified(self.path)))

    def set_weights(self, tensors: Dict[str, "object"]) -> "SileroVad":
        """Use ``tensors`` ({name: torch tensor} with exactly ``WEIGHT_SHAPES``) as the network's
        weights; BackendUnavailable when names or shapes differ. ``load()`` calls this."""
        import torch

        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        if shapes != WEIGHT_SHAPES:
            raise BackendUnavailable(f"vad: {self.path or 'the weights'} do not hold the expected tensors: {shapes}")
        self.weights = {k: v.detach().float().contiguous() for k, v in tensors.items()}
        # nn.LSTM runs the whole frame sequence in native code; its single layer has the same
        # gate layout (input, forget, cell, output) as the stored LSTM cell.
        lstm = torch.nn.LSTM(128, HIDDEN, num_layers=1, batch_first=True)
        with torch.no_grad():
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{part}_l0").copy_(self.weights[f"lstm_cell.{part}"])
        self.lstm = lstm.eval()
        return self

    def provenance(self) -> Provenance:
        """Model name, installed package version, the weights file and its (pinned) sha256, licence."""
        return Provenance(backend="silero-vad", version=_installed_version() or PACKAGE_VERSION,
                          weights=f"{PACKAGE}:{WEIGHTS_FILE}", weights_sha256=WEIGHTS_SHA256,
                          licence=LICENCE, note=NOTE)

    def _features(self, windows):
        """[n, 576] windows (context + frame) -> [n, 128] encoder features."""
        import torch.nn.functional as F

        w = self.weights
        x = F.pad(windows.unsqueeze(1), (0, STFT_PAD), mode="reflect")
        spec = F.conv1d(x, w["stft_conv.weight"], stride=HOP)
        cut = N_FFT // 2 + 1
        x = (spec[:, :cut] ** 2 + spec[:, cut:] ** 2).sqrt()
        for name, stride in CONV_STRIDES:
            x = F.relu(F.conv1d(x, w[f"{name}.weight"], w[f"{name}.bias"], stride=stride, padding=1))
        return x.squeeze(-1)  # one time step is left after the two stride-2 convolutions

    def speech_probs(self, audio16k: np.ndarray) -> np.ndarray:
        """Speech probability per 32 ms frame of 1-D float ``audio16k`` (16 kHz, about [-1, 1]).

        Returns float32 of length ceil(len / 512); frame i covers [0.032 i, 0.032 (i + 1)) s,
        the last frame zero-padded. The LSTM state runs through the whole signal. RuntimeError
        when ``load()`` was not called; ValueError for audio that is not 1-D.
        """
        import torch
        import torch.nn.functional as F

        if self.weights is None:
            raise RuntimeError("vad: call load() before speech_probs()")
        audio = np.asarray(audio16k, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"vad: expected 1-D audio, got shape {audio.shape}")
        n = -(-audio.size // FRAME_SAMPLES)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.zeros(CONTEXT_SAMPLES + n * FRAME_SAMPLES, dtype=np.float32)
        padded[CONTEXT_SAMPLES:CONTEXT_SAMPLES + audio.size] = audio
        signal = torch.from_numpy(padded)
        out, state = [], None
        with torch.inference_mode():
            for a in range(0, n, self.block_frames):
                b = min(n, a + self.block_frames)
                part = signal[a * FRAME_SAMPLES:b * FRAME_SAMPLES + CONTEXT_SAMPLES]
                windows = part.unfold(0, FRAME_SAMPLES + CONTEXT_SAMPLES, FRAME_SAMPLES)
                h, state = self.lstm(self._features(windows).unsqueeze(0), state)
                logits = F.conv1d(F.relu(h[0]).unsqueeze(-1), self.weights["final_conv.weight"],
                                  self.weights["final_conv.bias"])
                out.append(torch.sigmoid(logits).reshape(-1))
        return torch.cat(out).numpy().astype(np.float32)


def schmitt(probs: np.ndarray, on: float, off: float) -> np.ndarray:
    """Boolean state per frame of a two-threshold trigger starting off: it switches on at
    ``p >= on``, off at ``p < off``, and keeps its state in between."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    event = np.where(p >= on, 1, np.where(p < off, 0, -1))
    idx = np.where(event >= 0, np.arange(p.size), -1)
    last = np.maximum.accumulate(idx) if p.size else idx
    return np.where(last >= 0, event[np.maximum(last, 0)] == 1, False)


def regions_from_probs(probs: Sequence[float], frame_seconds: float = FRAME_SECONDS,
                       threshold: float = DEFAULTS.threshold, min_speech_s: float = DEFAULTS.min_speech_s,
                       min_silence_s: float = DEFAULTS.min_silence_s, pad_s: float = DEFAULTS.pad_s,
                       neg_threshold: Optional[float] = None) -> List[Region]:
    """Spans (start, end) in seconds where per-frame ``probs`` say voice, sorted and disjoint.

    Hysteresis: a span opens at ``p >= threshold`` and closes at ``p < neg_threshold``
    (default ``threshold - 0.15``, at least 0.01 and at most ``threshold``). Then, in this order: gaps shorter than
    ``min_silence_s`` are bridged, spans shorter than ``min_speech_s`` dropped, each span
    widened by ``pad_s`` (clipped to [0, len(probs) * frame_seconds]) and overlaps merged.
    ValueError when neg_threshold > threshold.
    """
    off = min(threshold, max(0.01, threshold - 0.15)) if neg_threshold is None else float(neg_threshold)
    if off > threshold:
        raise ValueError(f"neg_threshold {off} is above threshold {threshold}")
    state = schmitt(np.asarray(probs, dtype=np.float64), threshold, off)
    if not state.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], state.astype(np.int8), [0]])))
    spans = [[float(a) * frame_seconds, float(b) * frame_seconds] for a, b in zip(edges[::2], edges[1::2])]
    bridged: List[List[float]] = []
    for start, end in spans:
        if bridged and start - bridged[-1][1] < min_silence_s:
            bridged[-1][1] = end
        else:
            bridged.append([start, end])
    duration = state.size * frame_seconds
    out: List[List[float]] = []
    for start, end in bridged:
        if end - start < min_speech_s:
            continue
        start, end = max(0.0, start - pad_s), min(duration, end + pad_s)
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(round(s, 3), round(e, 3)) for s, e in out]


def vocal_regions(vad: SileroVad, audio16k: np.ndarray, config: Optional[VadConfig] = None) -> List[Region]:
    """Vocal spans (seconds) of 1-D 16 kHz ``audio16k`` (a vocal stem or a mix) by ``vad``."""
    cfg = config or DEFAULTS
    probs = vad.speech_probs(audio16k)
    regions = regions_from_probs(probs, FRAME_SECONDS, cfg.threshold, cfg.min_speech_s, cfg.min_silence_s,
                                 cfg.pad_s, cfg.neg_threshold)
    duration = np.asarray(audio16k).size / float(SAMPLE_RATE)
    return [(s, min(e, round(duration, 3))) for s, e in regions if s < duration]


@functools.lru_cache(maxsize=1)
def shared_vad() -> SileroVad:
    """One loaded VAD per worker process, shared by every stage that uses it (structure, lyrics)."""
    return SileroVad().load()
