"""Harmonic change at beats: chords tend to change on bar lines, so it marks downbeats where the
kick does not (a rock beat's kick plays beats 1 and 3 alike).

Used by the metrical-level check (``tempo.apply_level``) to place the bars of a beat grid it has
moved to another level, together with the low-band accents.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

HOP = 512


def harmonic_change(y: np.ndarray, sample_rate: int, beats: Sequence[float], span: int = 2) -> np.ndarray:
    """Per beat, 1 - cosine similarity of the mean chroma over the ``span`` beats before it and the
    ``span`` beats after it (0 where either side is empty). ``y`` is mono audio at ``sample_rate``."""
    from transforms.core import spectral

    beats = np.asarray(beats, dtype=float)
    out = np.zeros(len(beats))
    if len(beats) < 2 or len(np.asarray(y)) == 0:
        return out
    chroma = spectral.chroma(y, sample_rate, HOP)
    frames = np.clip(np.round(beats * sample_rate / HOP).astype(int), 0, chroma.shape[1] - 1)
    for i, here in enumerate(frames):
        before, after = frames[max(i - span, 0)], frames[min(i + span, len(frames) - 1)]
        if here - before < 1 or after - here < 1:
            continue
        u, v = chroma[:, before:here].mean(axis=1), chroma[:, here:after].mean(axis=1)
        out[i] = 1.0 - float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9))
    return out
