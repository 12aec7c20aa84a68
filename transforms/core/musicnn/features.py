"""The log-mel front end the musicnn models were trained on, and its 3 s patches.

Settings (read from the musicnn package's extractor and configuration): 16 kHz
mono float32, librosa's ``melspectrogram`` with its defaults except n_fft 512,
hop 256, 96 bands: power spectrum (power=2), Slaney mel scale (htk=False),
Slaney area normalisation, centred frames with librosa's default padding
(zeros in librosa >= 0.10), fmax = 8 kHz. The mel power is rounded to float16
(the models were trained on float16-stored spectrograms) and compressed as
``log10(10000 x + 1)`` in float32. The package's ``10000 * x`` on a float16
array is float32 under numpy 1.x's value-based casting; numpy 2 would keep
float16 and overflow to inf above x = 6.55, so the widening is explicit here.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr, hop, n_fft) + 1
LOG_GAIN = 10000
F16_MAX = float(np.finfo(np.float16).max)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono audio (1-D, any float dtype) -> float32 log-mel, shape (frames, 96).

    Frames = 1 + len(audio) // 256. Raises ``ValueError`` for non-1-D input.
    """
    from transforms.core import spectral

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
    # librosa's melspectrogram with these settings, a block of STFT frames at a time (bounded memory)
    (mel,) = spectral.mel_powers(audio, SAMPLE_RATE, [{"n_mels": N_MELS}], n_fft=N_FFT, hop=HOP)
    return compress(mel.T)


def compress(mel: np.ndarray) -> np.ndarray:
    """Mel power (frames, bands) -> float32 ``log10(10000 x + 1)`` of its float16 rounding.

    Powers above float16's largest value (65504; only audio far beyond [-1, 1]
    gets there) are clipped to it rather than becoming inf, so the result is
    at most 8.82.
    """
    mel32 = np.minimum(np.asarray(mel), F16_MAX).astype(np.float16).astype(np.float32)
    return np.log10(np.float32(LOG_GAIN) * mel32 + np.float32(1)).astype(np.float32)


def window_starts(n_frames: int, hop_frames: int = PATCH_FRAMES,
                  patch_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Start frames of the patches covering ``n_frames`` frames, the package's way.

    Patches start at 0, hop, 2 hop, ... while a whole patch fits; a tail shorter
    than a patch is dropped. With fewer frames than one patch, one patch starts
    at 0 (``patches`` pads it). Raises ``ValueError`` for a non-positive hop.
    """
    if hop_frames <= 0:
        raise ValueError("hop_frames must be positive")
    last = max(n_frames - patch_frames, 0)
    return np.arange(0, last + 1, hop_frames)


def patches(features: np.ndarray, hop_frames: int = PATCH_FRAMES,
            patch_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Log-mel (frames, 96) -> patches (n, patch_frames, 96), float32.

    Songs shorter than one patch are repeated to fill it (the padding the
    models were trained with for short clips). Raises ``ValueError`` when there
    are no frames at all.
    """
    if len(features) == 0:
        raise ValueError("no frames to tag")
    if len(features) < patch_frames:
        reps = -(-patch_frames // len(features))
        features = np.tile(features, (reps, 1))[:patch_frames]
    starts = window_starts(len(features), hop_frames, patch_frames)
    index = starts[:, None] + np.arange(patch_frames)[None, :]
    return np.ascontiguousarray(features[index], dtype=np.float32)
