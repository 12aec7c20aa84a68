"""The quality measures as accumulators fed block by block, so a song's measures need a block of
memory, not its whole 48 kHz stereo arrays.

Each accumulator takes float32 ``[channels, n]`` blocks in order (any block sizes) through
``add`` and gives its figure from ``result``; fed a whole array as one block, it gives what the
whole-array measure gives, and :mod:`transforms.quality.measures` computes its measures through
them. Block sizes do not change a figure beyond float rounding in a sum: the loudness filters carry
their state from block to block, and every windowed measure (gating blocks, true-peak windows,
Welch segments, 100 ms frames, clipping plateaus) keeps the samples a window needs until it is whole.
"""

from __future__ import annotations

import math
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np

GATE_BLOCK_S = 0.4  # BS.1770: 400 ms gating blocks ...
GATE_OVERLAP = 0.75  # ... overlapping by 75 %
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 channel weights (L, R, C, Ls, Rs)
ABSOLUTE_GATE = -70.0
TRUE_PEAK_OVERSAMPLE, TRUE_PEAK_WINDOW, TRUE_PEAK_PAD = 4, 1 << 20, 256
WELCH_SEGMENT = 4096
WELCH_CHUNK = 64 * (WELCH_SEGMENT // 2)  # segment starts handled per Welch call


class Loudness:
    """BS.1770-4 integrated loudness (LUFS) of ``channels`` x ``total`` samples at ``sample_rate``:
    K-weighting (pyloudnorm's two filter stages, state carried across blocks), 400 ms blocks with
    75 % overlap laid out as pyloudnorm lays them out, the absolute and the relative gate. None
    for fewer samples than one gating block."""

    def __init__(self, sample_rate: int, channels: int, total: int):
        from pyloudnorm.iirfilter import IIRfilter

        self.rate, self.channels, self.total = int(sample_rate), int(channels), int(total)
        stages = (IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, self.rate, "high_shelf"),
                  IIRfilter(0.0, 0.5, 38.0, self.rate, "high_pass"))
        self.stages = [(f.b, f.a, f.passband_gain) for f in stages]
        self.state = [[np.zeros(max(len(b), len(a)) - 1) for _ in range(self.channels)] for b, a, _ in self.stages]
        step = 1.0 - GATE_OVERLAP
        seconds = self.total / self.rate
        count = int(np.round((seconds - GATE_BLOCK_S) / (GATE_BLOCK_S * step))) + 1
        self.bounds = [(int(GATE_BLOCK_S * (j * step) * self.rate), int(GATE_BLOCK_S * (j * step + 1) * self.rate))
                       for j in range(max(0, count))]
        self.energy = np.zeros((self.channels, len(self.bounds)))
        self.buf = np.zeros((self.channels, 0))
        self.start, self.next = 0, 0  # sample index of buf[:, 0]; next gating block to sum

    def add(self, block: np.ndarray) -> None:
        from scipy.signal import lfilter

        x = np.asarray(block, dtype=np.float64)
        filtered = np.empty_like(x)
        for c in range(self.channels):
            y = x[c]
            for k, (b, a, gain) in enumerate(self.stages):
                y, self.state[k][c] = lfilter(b, a, y, zi=self.state[k][c])
                y = gain * y
            filtered[c] = y
        self.buf = np.concatenate([self.buf, filtered], axis=1)
        self._sum_ready(self.start + self.buf.shape[1])

    def _sum_ready(self, available: int) -> None:
        scale = 1.0 / (GATE_BLOCK_S * self.rate)
        while self.next < len(self.bounds) and self.bounds[self.next][1] <= available:
            lo, hi = self.bounds[self.next]
            for c in range(self.channels):
                self.energy[c, self.next] = scale * np.sum(np.square(self.buf[c, lo - self.start:hi - self.start]))
            self.next += 1
        keep_from = self.bounds[self.next][0] if self.next < len(self.bounds) else available
        drop = max(0, keep_from - self.start)
        self.buf, self.start = self.buf[:, drop:], self.start + drop

    def result(self) -> Optional[float]:
        if self.total < int(GATE_BLOCK_S * self.rate) + 1 or not self.bounds:
            return None
        while self.next < len(self.bounds):  # blocks running past the end hold what there is
            lo, hi = self.bounds[self.next]
            for c in range(self.channels):
                self.energy[c, self.next] = (1.0 / (GATE_BLOCK_S * self.rate)) * np.sum(
                    np.square(self.buf[c, max(0, lo - self.start):max(0, hi - self.start)]))
            self.next += 1
        gains = CHANNEL_GAINS[:self.channels]
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # silence: no block passes the gates
            block_lufs = [-0.691 + 10.0 * np.log10(np.sum([g * self.energy[c, j] for c, g in enumerate(gains)]))
                          for j in range(len(self.bounds))]
            above = [j for j, v in enumerate(block_lufs) if v >= ABSOLUTE_GATE]
            mean = [np.mean([self.energy[c, j] for j in above]) for c in range(self.channels)]
            relative = -0.691 + 10.0 * np.log10(np.sum([g * mean[c] for c, g in enumerate(gains)])) - 10.0
            kept = [j for j, v in enumerate(block_lufs) if v > relative and v > ABSOLUTE_GATE]
            mean = np.nan_to_num(np.array([np.mean([self.energy[c, j] for j in kept]) for c in range(self.channels)]))
            return float(-0.691 + 10.0 * np.log10(np.sum([g * mean[c] for c, g in enumerate(gains)])))


class TruePeak:
    """Peak of the 4x oversampled signal (linear), over the same 2^20-sample windows (with 256
    samples of context each side) as a whole-array pass; ``total`` samples per channel."""

    def __init__(self, total: int):
        self.total, self.peak = int(total), 0.0
        self.buf: Optional[np.ndarray] = None
        self.start, self.next = 0, 0  # sample index of buf[:, 0]; next window start

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        self.buf = block if self.buf is None else np.concatenate([self.buf, block], axis=1)
        self._windows(self.start + self.buf.shape[1])

    def _windows(self, available: int) -> None:
        from scipy.signal import resample_poly

        n, ratio = self.total, TRUE_PEAK_OVERSAMPLE
        while self.next < n and self.buf is not None:
            s = self.next
            a, e = max(0, s - TRUE_PEAK_PAD), min(n, s + TRUE_PEAK_WINDOW)
            b = min(n, e + TRUE_PEAK_PAD)
            if b > available:
                break
            for ch in self.buf[:, a - self.start:b - self.start]:
                y = resample_poly(ch.astype(np.float64), ratio, 1)
                seg = y[(s - a) * ratio:(e - a) * ratio]
                if seg.size:
                    self.peak = max(self.peak, float(np.max(np.abs(seg))))
            self.next = s + TRUE_PEAK_WINDOW
            drop = max(0, self.next - TRUE_PEAK_PAD - self.start)
            self.buf, self.start = self.buf[:, drop:], self.start + drop

    def result(self) -> float:
        self._windows(self.total)
        return self.peak


class Moments:
    """Sample peak, channel means (DC) and the stereo sums, in float64."""

    def __init__(self, channels: int):
        self.peak, self.count = 0.0, 0
        self.sums = np.zeros(channels)
        self.mid = self.side = self.left = self.right = self.cross = 0.0

    def add(self, block: np.ndarray) -> None:
        if not block.size:
            return
        self.peak = max(self.peak, float(np.max(np.abs(block))))
        self.sums += block.sum(axis=1, dtype=np.float64)
        self.count += block.shape[1]
        if block.shape[0] >= 2:
            left, right = block[0].astype(np.float64), block[1].astype(np.float64)
            self.mid += float(np.sum(((left + right) / 2) ** 2))
            self.side += float(np.sum(((left - right) / 2) ** 2))
            self.left += float(np.sum(left ** 2))
            self.right += float(np.sum(right ** 2))
            self.cross += float(np.sum(left * right))

    def dc(self) -> float:
        return float(np.max(np.abs(self.sums / self.count))) if self.count else 0.0


class ClipCount:
    """Samples clipped, given the song's sample ``peak`` (a first pass): at full scale, or in a run
    of ``plateau`` or more equal samples at >= 99.9 % of the peak. Runs may span blocks."""

    def __init__(self, channels: int, peak: float, full_scale: float, plateau: int):
        self.peak, self.full, self.plateau = float(peak), float(full_scale), int(plateau)
        self.runs: List[Optional[Tuple[float, int]]] = [None] * channels  # open run per channel: (value, length)
        self.clipped = self.size = 0

    def _close(self, value: np.ndarray, length: np.ndarray) -> int:
        mag = np.abs(value)
        full = mag >= self.full
        flat = (mag >= 0.999 * self.peak) & (length >= self.plateau)
        return int(np.sum(length[full | flat]))

    def add(self, block: np.ndarray) -> None:
        self.size += block.size
        for c, x in enumerate(block):
            if not x.size:
                continue
            change = np.flatnonzero(x[1:] != x[:-1]) + 1
            starts = np.concatenate([[0], change])
            lengths = np.diff(np.concatenate([starts, [x.size]]))
            values = x[starts]
            open_run = self.runs[c]
            if open_run is not None:
                if values[0] == np.float32(open_run[0]):
                    lengths[0] += open_run[1]
                else:
                    self.clipped += self._close(np.array([open_run[0]], np.float32), np.array([open_run[1]]))
            self.clipped += self._close(values[:-1], lengths[:-1])
            self.runs[c] = (float(values[-1]), int(lengths[-1]))

    def ratio(self) -> float:
        for c, run in enumerate(self.runs):
            if run is not None:
                self.clipped += self._close(np.array([run[0]], np.float32), np.array([run[1]]))
                self.runs[c] = None
        return self.clipped / self.size if self.size else 0.0


class Spectrum:
    """Welch's long-term average spectrum (Hann, 4096-sample segments, half overlap) of a mono
    signal fed block by block: the same segments as one Welch call over the whole signal."""

    def __init__(self, sample_rate: int):
        self.rate = int(sample_rate)
        self.buf = np.zeros(0, dtype=np.float32)
        self.power: Optional[np.ndarray] = None
        self.freqs: Optional[np.ndarray] = None
        self.segments = 0

    def _welch(self, x: np.ndarray) -> None:
        from scipy.signal import welch

        count = (x.size - WELCH_SEGMENT) // (WELCH_SEGMENT // 2) + 1
        self.freqs, power = welch(x, fs=self.rate, nperseg=WELCH_SEGMENT, noverlap=WELCH_SEGMENT // 2)
        self.power = power * count if self.power is None else self.power + power * count
        self.segments += count

    def add(self, mono: np.ndarray) -> None:
        self.buf = np.concatenate([self.buf, mono])
        while self.buf.size >= WELCH_CHUNK + WELCH_SEGMENT // 2:
            self._welch(self.buf[:WELCH_CHUNK + WELCH_SEGMENT // 2])
            self.buf = self.buf[WELCH_CHUNK:]

    def result(self) -> Tuple[np.ndarray, np.ndarray]:
        """(frequencies, power in dB)."""
        if self.segments == 0 and self.buf.size < WELCH_SEGMENT:
            self.buf = np.pad(self.buf, (0, WELCH_SEGMENT - self.buf.size))
        if self.buf.size >= WELCH_SEGMENT:
            self._welch(self.buf)
        self.buf = np.zeros(0, dtype=np.float32)
        return self.freqs, 10.0 * np.log10(np.maximum(self.power / self.segments, 1e-30))


class SectionEnergy:
    """Sum of squares and sample count of a mono signal inside each of ``spans`` (sample ranges)."""

    def __init__(self, spans: Sequence[Tuple[str, int, int]]):
        self.spans = list(spans)
        self.energy = {kind: [0.0, 0] for kind, _, _ in self.spans}
        self.at = 0

    def add(self, mono: np.ndarray) -> None:
        lo, hi = self.at, self.at + mono.size
        for kind, a, b in self.spans:
            s, e = max(a, lo), min(b, hi)
            if e > s:
                part = mono[s - lo:e - lo].astype(np.float64)
                self.energy[kind][0] += float(np.sum(part ** 2))
                self.energy[kind][1] += e - s
        self.at = hi


def db(power: float, floor: float = -200.0) -> float:
    return 10.0 * math.log10(power) if power > 0 else floor
