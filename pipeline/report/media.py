"""Pictures on a sample page: spectrogram PNG, waveform SVG, token-stream PNG.

In: decoded audio (float arrays) or token arrays. Out: PNG files (written with
matplotlib's ``image.imsave``, no figure, so a picture costs milliseconds) or
SVG strings. The images carry no axes: the page lays its own time axis, lanes
and playhead over them, so one time scale serves every lane.

Fails: ``soundfile.LibsndfileError`` for audio bytes it cannot decode.
"""

from __future__ import annotations

import io
from typing import Tuple

import numpy as np

SPEC_COLUMNS = 1600  # time columns of the spectrogram (a 6 min song: 0.23 s a column)
SPEC_ROWS = 180  # log-spaced frequency bands
SPEC_FMIN, SPEC_FMAX = 30.0, 16000.0
SPEC_RANGE_DB = 80.0
N_FFT = 4096
WAVE_COLUMNS = 1200


def decode_mono(flac_bytes: bytes) -> Tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of an audio file held in memory."""
    import soundfile as sf

    audio, sr = sf.read(io.BytesIO(flac_bytes), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sr)


def _frames(mono: np.ndarray, columns: int, n_fft: int) -> np.ndarray:
    """[columns, n_fft] windowed frames spread evenly over the signal (zero-padded when short)."""
    if len(mono) < n_fft:
        mono = np.pad(mono, (0, n_fft - len(mono)))
    starts = np.linspace(0, len(mono) - n_fft, columns).astype(np.int64)
    return mono[starts[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft).astype(np.float32)


def spectrogram_db(mono: np.ndarray, sr: int, columns: int = SPEC_COLUMNS, rows: int = SPEC_ROWS) -> np.ndarray:
    """[rows, columns] power in dB over log-spaced bands from SPEC_FMIN to min(SPEC_FMAX, sr/2), low rows first.

    Each band is the loudest FFT bin inside it; a band narrower than one bin takes the bin at
    its lower edge, so low frequencies are not left black.
    """
    power = np.abs(np.fft.rfft(_frames(mono, columns, N_FFT), axis=1)) ** 2  # [columns, bins]
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    edges = np.geomspace(SPEC_FMIN, min(SPEC_FMAX, sr / 2.0), rows + 1)
    starts = np.clip(np.searchsorted(freqs, edges[:-1]), 0, len(freqs) - 1)
    bands = np.maximum.reduceat(power, starts, axis=1)  # [columns, rows]
    return (10.0 * np.log10(bands + 1e-12)).T


def save_spectrogram_png(mono: np.ndarray, sr: int, path: str) -> str:
    """Write the mix's spectrogram (magma colours, top SPEC_RANGE_DB dB shown) to ``path``."""
    from matplotlib import image

    db = spectrogram_db(mono, sr)
    top = float(db.max())
    image.imsave(path, db, cmap="magma", vmin=top - SPEC_RANGE_DB, vmax=top, origin="lower")
    return path


def waveform_svg(mono: np.ndarray, columns: int = WAVE_COLUMNS) -> str:
    """An SVG of the peak envelope (max |x| per column, mirrored), stretched to its box.

    The viewBox is ``columns`` wide and 100 high with ``preserveAspectRatio="none"``, so the
    page sizes it like the other lanes.
    """
    n = len(mono)
    if n == 0:
        return ""
    columns = max(1, min(columns, n))
    cut = n // columns * columns
    peaks = np.abs(mono[:cut]).reshape(columns, -1).max(axis=1)
    peaks = peaks / max(float(peaks.max()), 1e-9) * 48.0
    top = " ".join(f"{i},{50 - p:.1f}" for i, p in enumerate(peaks))
    bottom = " ".join(f"{i},{50 + p:.1f}" for i, p in reversed(list(enumerate(peaks))))
    return (f'<svg viewBox="0 0 {columns} 100" preserveAspectRatio="none" aria-label="waveform">'
            f'<polygon points="{top} {bottom}" fill="#3a4560"/></svg>')


def save_tokens_png(tokens: np.ndarray, path: str) -> str:
    """Write a ``[streams, T]`` token array as a ``streams x T`` PNG (one pixel a frame, viridis by id).

    The page scales it up with nearest-neighbour sampling; ids are colours, so repeated codes
    show as runs and the streams can be compared frame by frame.
    Raises ValueError for an array that is not 2-D.
    """
    from matplotlib import image

    arr = np.asarray(tokens)
    if arr.ndim == 3 and arr.shape[0] == 1:  # [1, 3, T] as some extraction scripts save it
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"token array must be [streams, T], got shape {arr.shape}")
    image.imsave(path, arr.astype(np.float32), cmap="viridis", vmin=0, vmax=max(float(arr.max()), 1.0))
    return path
