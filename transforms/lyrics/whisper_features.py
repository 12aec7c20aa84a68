"""faster-whisper's log-mel features of a whole song, a block of frames at a time.

faster-whisper's ``FeatureExtractor`` frames the whole waveform, then takes its
complex STFT and power at once: for 6 minutes at 16 kHz (n_fft 400, hop 160)
the windowed frames, the spectrum and the power are about 58 + 58 + 29 MB, so
the lyrics stage's peak memory grew with the song by about 200 MB from 3 to 6
minutes. :class:`BlockwiseFeatureExtractor` gives the same values (the same
frames, window, FFT and mel filters; the clamp to 8 below the song's maximum
is applied once at the end, as there) while holding one block of frames.
:func:`install` puts one on a loaded ``WhisperModel``.
"""

from __future__ import annotations

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

BLOCK_FRAMES = 4096  # 41 s of 10 ms frames: 4096 x 400 floats framed, 4096 x 201 complex


class BlockwiseFeatureExtractor(FeatureExtractor):
    """``FeatureExtractor`` whose ``__call__`` works block by block (same arguments, same result)."""

    def __call__(self, waveform: np.ndarray, padding=160, chunk_length=None):
        if chunk_length is not None:
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        waveform = np.asarray(waveform)
        if waveform.dtype is not np.float32:
            waveform = waveform.astype(np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {waveform.shape}")
        if padding:
            waveform = np.pad(waveform, (0, padding))
        window = np.hanning(self.n_fft + 1)[:-1].astype("float32")
        padded = np.pad(waveform, self.n_fft // 2, mode="reflect")  # the STFT's centring
        frames = 1 + (len(padded) - self.n_fft) // self.hop_length
        kept = frames - 1  # the last frame is dropped, as faster-whisper does
        mel = np.empty((self.mel_filters.shape[0], kept), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[::self.hop_length]
        for first in range(0, kept, BLOCK_FRAMES):
            last = min(kept, first + BLOCK_FRAMES)
            spec = np.fft.rfft(view[first:last] * window, n=self.n_fft, axis=-1).astype("complex64")
            mel[:, first:last] = self.mel_filters @ (np.abs(spec.T) ** 2)
        log_spec = np.log10(np.clip(mel, a_min=1e-10, a_max=None))
        log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0


def install(model) -> None:
    """Replace a loaded ``faster_whisper.WhisperModel``'s feature extractor by a blockwise one with the
    same settings (mel bands, rate, hop, chunk length, n_fft)."""
    old = model.feature_extractor
    model.feature_extractor = BlockwiseFeatureExtractor(
        feature_size=old.mel_filters.shape[0], sampling_rate=old.sampling_rate, hop_length=old.hop_length,
        chunk_length=old.chunk_length, n_fft=old.n_fft)
