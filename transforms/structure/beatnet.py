"""Structure from the BeatNet beat / downbeat CRNN (weights CC BY 4.0) plus the embedded section analysis.

``--structure beatnet``: a small causal CRNN (conv over frequency, two-layer
LSTM, three classes beat / downbeat / none per 20 ms frame) gives beat and
downbeat activations; a bar-pointer Viterbi decoder (:func:`decode`) turns them
into beats, downbeats and the meter (3 or 4); :mod:`transforms.structure.tempo`
then checks the metrical level; sections come from the ``dsp`` analysis on
that grid.

The weights ship in the PyPI package ``BeatNet`` 1.1.3 (install it with
``pip install --no-deps BeatNet==1.1.3``: its runtime pins an old numba and
imports audio-device packages, so songshard never imports it; it only reads
the weight files, found with ``importlib.util.find_spec``). The files are plain
state dicts; their sha256 is checked before ``torch.load(weights_only=True)``.
Licence of the weights: CC BY 4.0 (commercial use allowed, attribution).

Input features (re-implemented here in numpy): 22.05 kHz mono, 1411-sample
Hann frames centred every 441 samples (50 frames/s), magnitude FFT, 24 bands
per octave triangular log filterbank 30 Hz - 17 kHz (area-normalised, unique
bins), log10(1 + x), stacked with its positive first difference: 272 values a
frame.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

import numpy as np

from schemas.records import Provenance
from transforms.core import audio as au
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.structure import tempo, tempo_cnn
from transforms.structure.dsp import ANALYSIS_RATE, DspStructure

RATE = 22050
HOP = 441  # 20 ms
FPS = RATE / HOP  # 50 frames a second
FRAME = 1411  # 64 ms
BANDS_PER_OCTAVE = 24
FMIN, FMAX, FREF = 30.0, 17000.0, 440.0
N_FEATURES = 272
HIDDEN = 150
BLOCK_FRAMES = 2048  # frames per block of the spectrum and the per-frame layers (41 s)
LICENCE = "CC BY 4.0 (BeatNet weights)"
PACKAGE = "BeatNet"
# The three shipped models differ by the data set held out in training (1: GTZAN, 2: Ballroom, 3: Rock corpus).
WEIGHTS_SHA256 = {
    1: "619091bc317ca3e83b45591d46f6de3d5a41588bcb39fe9fe7be30cffa6aca84",
    2: "5878a18c079fa0b0139879b14ed2b5b7595faef8c3d16210aed141fd00fa2d58",
    3: "0c52a074ea38e8cb4a760ecfa3747c9cf91a1e3cd19f238eed80b0de763989ca",
}
DEFAULT_MODEL = 1


def log_filterbank(num_bins: int = FRAME >> 1, sample_rate: float = RATE) -> np.ndarray:
    """(num_bins, bands) matrix of overlapping triangular filters, 24 per octave from 30 Hz to 17 kHz.

    Centres are A4-tuned log-spaced frequencies mapped to the nearest FFT bin,
    duplicates dropped; each filter spans from the previous centre to the next
    and is normalised to unit area. Raises ValueError when fewer than 3 centres fit.
    """
    left = np.floor(np.log2(FMIN / FREF) * BANDS_PER_OCTAVE)
    right = np.ceil(np.log2(FMAX / FREF) * BANDS_PER_OCTAVE)
    freqs = FREF * 2.0 ** (np.arange(left, right) / BANDS_PER_OCTAVE)
    freqs = freqs[np.searchsorted(freqs, FMIN):]
    freqs = freqs[:np.searchsorted(freqs, FMAX, "right")]
    bin_freqs = np.fft.fftfreq(num_bins * 2, 1.0 / sample_rate)[:num_bins]
    idx = np.clip(bin_freqs.searchsorted(freqs), 1, num_bins - 1)
    idx = idx - (freqs - bin_freqs[idx - 1] < bin_freqs[idx] - freqs)
    centres = np.unique(idx)
    if len(centres) < 3:
        raise ValueError("too few filter centres for a triangular filterbank")
    bank = np.zeros((num_bins, len(centres) - 2))
    for band, (start, centre, stop) in enumerate(zip(centres[:-2], centres[1:-1], centres[2:])):
        if stop - start < 2:  # too narrow for a triangle: a single bin
            centre, stop = start, start + 1
        tri = np.concatenate([np.linspace(0, 1, centre - start, endpoint=False),
                              np.linspace(1, 0, stop - centre, endpoint=False)])
        bank[start:stop, band] = np.maximum(bank[start:stop, band], tri / tri.sum())
    return bank.astype(np.float32)


def features(y: np.ndarray) -> np.ndarray:
    """(frames, 272) float32 CRNN input from mono audio at 22.05 kHz (any length; silence is fine).

    Frame ``i`` is centred on sample ``441 * i`` (zero padding at the edges), so
    frame ``i`` is at ``i / 50`` seconds; there are ``ceil(len(y) / 441)`` frames.
    """
    y = np.asarray(y, dtype=np.float32).ravel()
    n_frames = int(np.ceil(len(y) / HOP))
    padded = np.concatenate([np.zeros(FRAME // 2, np.float32), y, np.zeros(FRAME, np.float32)])
    starts = np.arange(n_frames) * HOP
    window = np.hanning(FRAME).astype(np.float32)
    bank = log_filterbank()
    logspec = np.empty((n_frames, bank.shape[1]), np.float32)
    for a in range(0, n_frames, BLOCK_FRAMES):  # blocks keep the framed copy and the spectrum small
        frames = padded[starts[a:a + BLOCK_FRAMES, None] + np.arange(FRAME)[None, :]] * window
        spec = np.abs(np.fft.rfft(frames, axis=1))[:, : FRAME >> 1].astype(np.float32)
        logspec[a:a + BLOCK_FRAMES] = np.log10(spec @ bank + 1.0)
    diff = np.zeros_like(logspec)
    diff[1:] = np.maximum(logspec[1:] - logspec[:-1], 0.0)  # Hann 64 ms / 20 ms hop: a 1-frame difference
    out = np.hstack([logspec, diff]).astype(np.float32)
    if out.shape[1] != N_FEATURES:
        raise ValueError(f"feature size {out.shape[1]} != {N_FEATURES}")
    return out


def build_network():
    """The CRNN as a ``torch.nn.ModuleDict`` whose parameter names match the shipped state dicts.

    conv1: Conv1d(1 -> 2, kernel 10) over the 272 features of a frame, ReLU, max-pool 2
    -> 262 values -> linear0 (150) -> lstm (2 layers, 150, causal) -> linear (3 classes).
    """
    import torch

    return torch.nn.ModuleDict({
        "conv1": torch.nn.Conv1d(1, 2, 10),
        "linear0": torch.nn.Linear(2 * ((N_FEATURES - 10 + 1) // 2), HIDDEN),
        "lstm": torch.nn.LSTM(HIDDEN, HIDDEN, num_layers=2, batch_first=True),
        "linear": torch.nn.Linear(HIDDEN, 3),
    })


def activations(net, feats: np.ndarray) -> np.ndarray:
    """(frames, 2) beat and downbeat probabilities (softmax over beat / downbeat / none) for ``feats``."""
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small LSTM: more threads cost more than they give
    try:  # ... but only here: the worker's other stages keep their thread budget
        with torch.inference_mode():
            feats = np.ascontiguousarray(feats, dtype=np.float32)
            # the per-frame layers a block of frames at a time: the conv output (frames x 526 floats)
            # would otherwise grow with the song; only the LSTM needs the whole sequence
            x = torch.cat([net["linear0"](F.max_pool1d(F.relu(net["conv1"](torch.from_numpy(
                feats[a:a + BLOCK_FRAMES])[:, None, :])), 2).flatten(1)) for a in range(0, len(feats), BLOCK_FRAMES)]
                          or [torch.zeros(0, HIDDEN)])
            x, _ = net["lstm"](x[None])
            probs = torch.softmax(net["linear"](x[0]), dim=-1)
    finally:
        torch.set_num_threads(threads)
    return probs[:, :2].numpy().astype(np.float64)


def bar_states(fps: float, min_bpm: float, max_bpm: float, meters) -> dict:
    """Index tables of a bar-pointer state space: one state per (meter, beat interval in frames, position in bar).

    Returns arrays over states (``interval``, ``position``, ``meter``, ``obs``
    class: 0 downbeat / 1 beat / 2 none is filled by :func:`decode`) and, for
    the tempo jumps allowed at each beat start, ``starts[g, a]`` (first state of
    beat ``g`` at interval ``a``) and ``lasts[g, b]`` (last state of the beat
    before it at interval ``b``), ``g`` running over (meter, beat) pairs.
    """
    intervals = np.arange(int(np.floor(60.0 * fps / max_bpm)), int(np.ceil(60.0 * fps / min_bpm)) + 1)
    interval, position, meter_of, starts, lasts = [], [], [], [], []
    offset = 0
    for meter in meters:
        first = {}
        for i in intervals:
            first[i] = offset
            interval.append(np.full(meter * i, i))
            position.append(np.arange(meter * i))
            meter_of.append(np.full(meter * i, meter))
            offset += meter * i
        for beat in range(meter):
            starts.append([first[i] + beat * i for i in intervals])
            lasts.append([first[i] + ((beat - 1) % meter) * i + i - 1 for i in intervals])
    return {"interval": np.concatenate(interval), "position": np.concatenate(position),
            "meter": np.concatenate(meter_of), "starts": np.array(starts), "lasts": np.array(lasts),
            "intervals": intervals}


def decode(act: np.ndarray, fps: float, min_bpm: float = 55.0, max_bpm: float = 215.0, meters=(3, 4),
           tempo_lambda: float = 100.0, obs_lambda: int = 16) -> tuple:
    """(beat times, downbeat times, meter) from (frames, 2) beat / downbeat activations by Viterbi.

    Bar-pointer model: the pointer moves one frame a frame through a bar of
    ``meter`` beats of a fixed interval; the interval may change only where a
    beat starts, with probability ~ exp(-tempo_lambda * |ratio - 1|). The first
    1/obs_lambda of beat 1 observes the downbeat activation, of other beats the
    beat activation, the rest the remaining probability spread over
    obs_lambda - 1 shares. Meters never switch within a song. Empty input gives
    empty times and meter 4.
    """
    act = np.clip(np.asarray(act, dtype=float), 1e-10, 1.0)
    if len(act) == 0:
        return np.array([]), np.array([]), 4
    sp = bar_states(fps, min_bpm, max_bpm, meters)
    interval, pos = sp["interval"], sp["position"]
    in_beat = pos % interval
    cls = np.where(in_beat * obs_lambda < interval, np.where(pos < interval, 0, 1), 2)
    n_states, starts, lasts, ivals = len(pos), sp["starts"], sp["lasts"], sp["intervals"]
    ratio = ivals[None, :] / ivals[:, None]  # [previous b, next a]
    trans = -tempo_lambda * np.abs(ratio - 1.0)
    trans -= np.log(np.exp(trans).sum(1, keepdims=True))
    prev = np.arange(n_states) - 1  # beat starts are overwritten below
    obs = np.stack([np.log(act[:, 1]), np.log(act[:, 0]),
                    np.log(np.clip(1.0 - act.sum(1), 1e-10, 1.0) / (obs_lambda - 1))], axis=1)
    delta = obs[0][cls] - np.log(n_states)
    back = np.empty((len(act), starts.shape[0], starts.shape[1]), np.int16)
    for t in range(1, len(act)):
        cand = delta[lasts][:, :, None] + trans[None]
        back[t] = cand.argmax(1)
        new = delta[prev]
        new[starts] = np.take_along_axis(cand, back[t][:, None, :].astype(np.intp), 1)[:, 0, :]
        delta = new + obs[t][cls]
    start_g = np.full(n_states, -1)
    start_a = np.full(n_states, -1)
    start_g[starts] = np.arange(starts.shape[0])[:, None]
    start_a[starts] = np.arange(starts.shape[1])[None, :]
    path = np.empty(len(act), int)
    s = int(np.argmax(delta))
    for t in range(len(act) - 1, -1, -1):
        path[t] = s
        if t == 0:
            break
        s = int(lasts[start_g[s], back[t, start_g[s], start_a[s]]]) if start_g[s] >= 0 else s - 1
    on_beat = in_beat[path] == 0
    frames = np.flatnonzero(on_beat)
    down = np.flatnonzero(on_beat & (pos[path] == 0))
    return frames / fps, down / fps, int(sp["meter"][path[-1]])


def weights_path(model: int = DEFAULT_MODEL) -> str:
    """Path of the shipped weights of ``model`` (1-3) inside the installed package, without importing it.

    Raises BackendUnavailable when the package or the file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("--structure beatnet needs the weights of PyPI package BeatNet: "
                                 "`pip install --no-deps BeatNet==1.1.3` (songshard reads only its weight "
                                 "files), or use --structure dsp")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", f"model_{model}_weights.pt")
    if not os.path.isfile(path):
        raise BackendUnavailable(f"--structure beatnet: no weights at {path}; reinstall BeatNet==1.1.3")
    return path


def load_network(model: int = DEFAULT_MODEL, path: Optional[str] = None):
    """The CRNN with the shipped weights of ``model``; ValueError if the file's sha256 is not the pinned one."""
    import torch

    path = path or weights_path(model)
    digest = file_sha256(path)
    if digest != WEIGHTS_SHA256[model]:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned BeatNet model {model} digest")
    net = build_network()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


class BeatNetStructure(DspStructure):
    """BeatNet CRNN + bar-pointer decoding + metrical-level check; sections as in ``dsp``. CC BY 4.0.

    Params: ``beatnet_model`` (1, 2 or 3; default 1), ``tempo_level`` (as ``dsp``).
    """

    stage = "structure"
    name = "beatnet"

    def __init__(self, params):
        super().__init__(params)
        self.model = int(self.params.get("beatnet_model") or DEFAULT_MODEL)
        self._net = None

    def check(self) -> None:
        """BackendUnavailable unless the model number is known and its weight file is installed."""
        if self.model not in WEIGHTS_SHA256:
            raise BackendUnavailable(f"--structure_beatnet_model must be one of {sorted(WEIGHTS_SHA256)}")
        weights_path(self.model)
        super().check()

    def load(self) -> None:
        """Builds the CRNN and loads the pinned weights (ValueError if the file's sha256 differs)."""
        super().load()
        self._net = load_network(self.model)

    def provenance(self) -> Provenance:
        """Model name and number, the pinned weights digest, the weights' licence (and the level check's models)."""
        extra = f"; {tempo_cnn.LICENCE}" if self.tempo_level and self.evidence.tempo_models else ""
        return Provenance(backend="beatnet", version=f"BeatNet 1.1.3 model {self.model}",
                          weights=f"BeatNet/models/model_{self.model}_weights.pt",
                          weights_sha256=WEIGHTS_SHA256[self.model], licence=LICENCE + extra,
                          note="BeatNet CRNN activations, bar-pointer Viterbi (55-215 bpm, 3/4 and 4/4)"
                               f"{self.level_note()}; sections by signal processing")

    def track_beats(self, y: np.ndarray, mix: np.ndarray, sample_rate: int) -> tuple:
        """(beat times, downbeat times, beats per bar); ``y`` is the mono mix at ANALYSIS_RATE."""
        if self._net is None:
            self.load()
        y22 = y if ANALYSIS_RATE == RATE else au.resample(au.to_mono(mix), sample_rate, RATE)[0]
        act = activations(self._net, features(y22))
        if len(act) < FPS:  # under a second: nothing to track
            return np.array([]), np.array([]), 4
        return decode(act, FPS)
