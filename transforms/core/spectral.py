"""librosa's STFT features of a whole song, computed a block of frames at a time.

``librosa.feature.melspectrogram``, ``chroma_stft``, ``mfcc``, ``rms`` and
``librosa.onset.onset_strength`` take the complex STFT of the whole signal at
once: for 6 minutes at 22.05 kHz (n_fft 2048, hop 512) that is 1025 x 15,500
complex64 values, 127 MB, plus its power (63 MB) and, for chroma's tuning
estimate, two more arrays of that size. The functions here give the same
values (float rounding aside: the same frames, window and FFT) while holding
one block of ``BLOCK_FRAMES`` frames of the STFT at a time, so a stage's peak
memory no longer grows with the song by those arrays; the outputs (bands x
frames) are small. Only librosa's defaults that songshard's callers use are
supported: Hann window, ``center=True`` with zero padding, power 2.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

BLOCK_FRAMES = 1024  # 1025 bins x 1024 frames of complex64: 8 MB per block at n_fft 2048


def _padded(y: np.ndarray, n_fft: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {y.shape}")
    return np.pad(y, n_fft // 2)


def n_frames(n_samples: int, hop: int) -> int:
    """Frames librosa's centred STFT gives for ``n_samples`` samples."""
    return 1 + n_samples // hop


def magnitude_blocks(y: np.ndarray, n_fft: int = 2048, hop: int = 512,
                     block_frames: Optional[int] = None) -> Iterator[Tuple[int, np.ndarray]]:
    """(first frame, |STFT| of frames [first, first + k)) blocks, float32 [1 + n_fft // 2, k]: the
    columns of ``abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))``, in order (square them for the
    power, as librosa does)."""
    import librosa

    padded = _padded(y, n_fft)
    total = n_frames(len(padded) - 2 * (n_fft // 2), hop)
    block_frames = block_frames or BLOCK_FRAMES
    for first in range(0, total, block_frames):
        last = min(total, first + block_frames)
        seg = padded[first * hop:(last - 1) * hop + n_fft]
        yield first, np.abs(librosa.stft(seg, n_fft=n_fft, hop_length=hop, center=False))


def power_blocks(y: np.ndarray, n_fft: int = 2048, hop: int = 512,
                 block_frames: Optional[int] = None) -> Iterator[Tuple[int, np.ndarray]]:
    """:func:`magnitude_blocks` squared: the power spectrogram's columns."""
    for first, mag in magnitude_blocks(y, n_fft, hop, block_frames):
        yield first, mag ** 2


def mel_powers(y: np.ndarray, sr: float, specs: Sequence[Dict], n_fft: int = 2048, hop: int = 512) -> List[np.ndarray]:
    """One pass over the STFT -> for each ``specs`` entry (``librosa.filters.mel`` keywords: n_mels,
    fmin, fmax) ``librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, **spec)``."""
    import librosa

    banks = [librosa.filters.mel(sr=sr, n_fft=n_fft, **spec) for spec in specs]
    total = n_frames(len(np.asarray(y).ravel()), hop)
    outs = [np.empty((len(bank), total), np.float32) for bank in banks]
    for first, power in power_blocks(y, n_fft, hop):
        for bank, out in zip(banks, outs):
            out[:, first:first + power.shape[1]] = bank @ power
    return outs


def centroid_rolloff(y: np.ndarray, sr: float, n_fft: int = 2048, hop: int = 512) -> Tuple[np.ndarray, np.ndarray]:
    """``librosa.feature.spectral_centroid`` and ``spectral_rolloff`` (their defaults; [frames] each) of
    ``y``, from one blockwise pass: both are computed frame by frame."""
    import librosa

    cents, rolls = [], []
    for _, mag in magnitude_blocks(y, n_fft, hop):
        cents.append(librosa.feature.spectral_centroid(S=mag, sr=sr, n_fft=n_fft, hop_length=hop)[0])
        rolls.append(librosa.feature.spectral_rolloff(S=mag, sr=sr, n_fft=n_fft, hop_length=hop)[0])
    return np.concatenate(cents), np.concatenate(rolls)


def onset_strengths(y: np.ndarray, sr: float, hop: int, specs: Sequence[Dict]) -> List[np.ndarray]:
    """``librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, **spec)`` for each mel ``spec``,
    from one blockwise pass over the STFT."""
    import librosa

    return [librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=hop)
            for mel in mel_powers(y, sr, specs, hop=hop)]


def mfcc(y: np.ndarray, sr: float, hop: int, n_mfcc: int = 20) -> np.ndarray:
    """``librosa.feature.mfcc(y=y, sr=sr, hop_length=hop, n_mfcc=n_mfcc)``, blockwise."""
    import librosa

    (mel,) = mel_powers(y, sr, [{}], hop=hop)
    return librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=n_mfcc)


def tuning(y: np.ndarray, sr: float, hop: int, n_fft: int = 2048, bins_per_octave: int = 12) -> float:
    """``librosa.estimate_tuning`` of the power spectrogram, as ``chroma_stft`` estimates it, blockwise:
    piptrack works frame by frame, so only its (pitch, magnitude) peaks are kept across blocks."""
    import librosa

    pitches, mags = [], []
    for _, power in power_blocks(y, n_fft, hop):
        pitch, mag = librosa.piptrack(S=power, sr=sr, n_fft=n_fft, hop_length=hop)
        keep = pitch > 0
        pitches.append(pitch[keep])
        mags.append(mag[keep])
    pitch, mag = np.concatenate(pitches), np.concatenate(mags)
    threshold = np.median(mag) if mag.size else 0.0
    return float(librosa.pitch_tuning(pitch[mag >= threshold], bins_per_octave=bins_per_octave))


def chroma(y: np.ndarray, sr: float, hop: int, n_fft: int = 2048, n_chroma: int = 12) -> np.ndarray:
    """``librosa.feature.chroma_stft(y=y, sr=sr, hop_length=hop)``, blockwise (two passes: the tuning,
    then the chroma of each block, normalised frame by frame as librosa does)."""
    import librosa

    tune = tuning(y, sr, hop, n_fft, n_chroma)
    bank = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tune, n_chroma=n_chroma)
    out = np.empty((n_chroma, n_frames(len(np.asarray(y).ravel()), hop)), np.float32)
    for first, power in power_blocks(y, n_fft, hop):
        out[:, first:first + power.shape[1]] = librosa.util.normalize(bank @ power, norm=np.inf, axis=-2)
    return out


def rms(y: np.ndarray, hop: int = 512, frame_length: int = 2048,
        block_frames: Optional[int] = None) -> np.ndarray:
    """``librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop)`` ([1, frames]), blockwise."""
    padded = _padded(y, frame_length)
    total = n_frames(len(padded) - 2 * (frame_length // 2), hop)
    block_frames = block_frames or 4 * BLOCK_FRAMES  # framed copy: 4096 x 2048 floats, 32 MB
    out = np.empty((1, total), np.float32)
    for first in range(0, total, block_frames):
        last = min(total, first + block_frames)
        seg = padded[first * hop:(last - 1) * hop + frame_length]
        frames = np.lib.stride_tricks.sliding_window_view(seg, frame_length)[::hop]
        out[0, first:last] = np.sqrt(np.mean(np.abs(frames) ** 2, axis=-1))
    return out
