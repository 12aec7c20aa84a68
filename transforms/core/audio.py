"""Pure audio helpers: channel layout, resampling, levels. No I/O, no Beam.

Arrays are float32 shaped ``[channels, samples]`` throughout songshard.
"""

from __future__ import annotations

import numpy as np

from transforms.core.facts import ASR_RATE, CODEC_RATE  # noqa: F401 - re-exported


def as_2d(audio: np.ndarray) -> np.ndarray:
    """[samples] -> [1, samples]; [channels, samples] unchanged."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio[None, :]
    if audio.ndim != 2:
        raise ValueError(f"audio must be 1-D or [channels, samples], got shape {audio.shape}")
    return audio


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: [C, N] -> [1, N]."""
    return as_2d(audio).mean(axis=0, keepdims=True)


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """Mono is duplicated; more than two channels are folded to the first two's average pair."""
    audio = as_2d(audio)
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if audio.shape[0] == 2:
        return audio
    return np.stack([audio[0::2].mean(axis=0), audio[1::2].mean(axis=0)])


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality) of [C, N] audio."""
    audio = as_2d(audio)
    if sr_in == sr_out:
        return audio
    import soxr

    out = soxr.resample(audio.T, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)


class StreamResampler:
    """soxr's streaming resampler on [C, n] blocks; the output equals one-shot resampling."""

    def __init__(self, rate_in: int, rate_out: int, channels: int):
        self.identity = rate_in == rate_out
        if not self.identity:
            import soxr

            self._stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality="HQ")

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.identity:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=last)
        return np.ascontiguousarray(out.T)

    def flush(self, channels: int) -> np.ndarray:
        return self.push(np.zeros((channels, 0), dtype=np.float32), last=True)


def peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    if audio.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def frame_rms(audio: np.ndarray, sample_rate: int, hop_s: float = 0.1) -> np.ndarray:
    """RMS per non-overlapping frame of ``hop_s`` seconds over a mono mixdown."""
    mono = to_mono(audio)[0]
    hop = max(1, int(round(hop_s * sample_rate)))
    n = len(mono) // hop
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = mono[: n * hop].reshape(n, hop)
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)).astype(np.float32)


class FrameRms:
    """:func:`frame_rms` of [C, n] blocks fed in order (the mono mixdown's RMS per ``hop_s`` frame);
    frames that span blocks wait for their end, so the values equal one whole-array call."""

    def __init__(self, sr: int, hop_s: float = 0.1):
        self.sr, self.hop_s = sr, hop_s
        self.hop = max(1, int(round(hop_s * sr)))
        self.carry, self.parts = None, []

    def add(self, block: np.ndarray, last: bool = False) -> None:
        b = block if self.carry is None else np.concatenate([self.carry, block], axis=1)
        whole = (b.shape[1] // self.hop) * self.hop
        if whole:
            self.parts.append(frame_rms(b[:, :whole], self.sr, self.hop_s))
        self.carry = b[:, whole:]

    def result(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.float32)
