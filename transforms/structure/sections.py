"""Pure section maths: the training side's 13 tags, duration buckets, tiling, snapping, labelling.

No audio and no I/O here: everything is tested on numbers.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

# The vocabulary and tiling live in transforms.core.sections; re-exported for this package's callers.
from transforms.core.sections import (LABEL_FAMILY, TRAINING_TAGS, WORDLESS, bucket, is_wordless,  # noqa: F401
                                      tile, to_training_tag, with_tags)


def snap(times: Sequence[float], grid: Sequence[float], tolerance: float) -> List[float]:
    """Each time moved to the nearest grid point within ``tolerance`` seconds (else kept)."""
    grid = np.asarray(grid, dtype=float)
    out = []
    for t in times:
        if grid.size:
            g = grid[np.argmin(np.abs(grid - t))]
            out.append(float(g) if abs(g - t) <= tolerance else float(t))
        else:
            out.append(float(t))
    return out


def merge_short(boundaries: Sequence[float], duration: float, min_length: float) -> List[float]:
    """Inner boundaries (sorted, unique) with segments shorter than ``min_length`` merged away."""
    inner = sorted({round(b, 3) for b in boundaries if 0.0 < b < duration})
    kept: List[float] = []
    for b in inner:
        if b - (kept[-1] if kept else 0.0) >= min_length and duration - b >= min_length:
            kept.append(b)
    return kept


def label_segments(features: np.ndarray, vocal: Sequence[bool], loudness: Sequence[float],
                   similarity: float = 0.9) -> List[str]:
    """Labels for consecutive segments from their mean features, vocal activity and loudness.

    * segments without vocals: ``intro`` before the first vocal segment, ``outro``
      after the last, ``inst`` between;
    * vocal segments are grouped by cosine similarity of their features (>=
      ``similarity`` to a group's first member); the group that repeats most,
      ties broken by loudness, is the ``chorus`` (only if it repeats); other
      vocal segments are ``verse``, except a one-off group after the first
      chorus that differs from every verse, which is the ``bridge``.
    """
    n = len(vocal)
    if n == 0:
        return []
    feats = np.asarray(features, dtype=float)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    feats = feats / np.where(norms > 0, norms, 1.0)
    voiced = [i for i in range(n) if vocal[i]]
    labels = ["inst"] * n
    if not voiced:
        return ["intro"] + ["inst"] * (n - 2) + ["outro"] if n > 2 else (["intro", "outro"][:n] if n > 1 else ["inst"])
    for i in range(n):
        if not vocal[i]:
            labels[i] = "intro" if i < voiced[0] else ("outro" if i > voiced[-1] else "inst")
    groups: List[List[int]] = []
    for i in voiced:
        for g in groups:
            if float(feats[i] @ feats[g[0]]) >= similarity:
                g.append(i)
                break
        else:
            groups.append([i])
    loud = np.asarray(loudness, dtype=float)
    chorus = max(groups, key=lambda g: (len(g), float(np.mean(loud[g]))))
    first_chorus = chorus[0] if len(chorus) > 1 else None
    for g in groups:
        for i in g:
            if g is chorus and first_chorus is not None:
                labels[i] = "chorus"
            elif len(g) == 1 and first_chorus is not None and i > first_chorus and len(groups) > 2:
                labels[i] = "bridge"
            else:
                labels[i] = "verse"
    return labels
