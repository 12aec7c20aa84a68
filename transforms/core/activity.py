"""Where a (vocal) signal is active: the energy gate and the maths of time regions. Pure.

Regions are ``(start, end)`` seconds. The lyrics stage transcribes inside them;
the structure stage shapes sections around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from transforms.core import audio as au

Region = Tuple[float, float]
VOCAL_ACTIVE_DB = -70.0  # a vocal-stem frame is active above this RMS (dBFS) ...
VOCAL_SHARE_DB = -15.0  # ... and no more than this far below the mix frame


@dataclass
class GateConfig:
    """Energy gate: a 50 ms frame is active when it is within ``rel_db`` of the stem's loud level
    (95th percentile frame) and above ``floor_db`` dBFS; spans are bridged over ``merge_gap``
    seconds, dropped under ``min_region`` seconds, and padded by ``pad`` seconds."""

    rel_db: float = 30.0
    floor_db: float = -50.0
    hop_s: float = 0.05
    merge_gap: float = 0.8
    min_region: float = 0.3
    pad: float = 0.25


def active_regions(audio: np.ndarray, sample_rate: int, config: Optional[GateConfig] = None) -> List[Region]:
    """Spans (seconds) where the (vocal) signal is active; [] for silence or an empty stem."""
    cfg = config or GateConfig()
    rms = au.frame_rms(audio, sample_rate, cfg.hop_s).astype(np.float64)
    if rms.size == 0 or not np.any(rms > 0):
        return []
    db = 20.0 * np.log10(np.maximum(rms, 1e-10))
    loud = float(np.percentile(db, 95))
    if loud < cfg.floor_db:
        return []
    active = db > max(cfg.floor_db, loud - cfg.rel_db)
    spans: List[List[float]] = []
    for idx in np.flatnonzero(active):
        start, end = idx * cfg.hop_s, (idx + 1) * cfg.hop_s
        if spans and start - spans[-1][1] <= cfg.merge_gap:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    duration = audio.shape[-1] / float(sample_rate)
    out = []
    for start, end in spans:
        if end - start < cfg.min_region:
            continue
        out.append((round(max(0.0, start - cfg.pad), 3), round(min(duration, end + cfg.pad), 3)))
    return merge_regions(out, 0.0)


def merge_regions(regions: Sequence[Region], max_gap: float) -> List[Region]:
    """Sorted regions with overlaps (and gaps up to ``max_gap`` s) joined."""
    out: List[List[float]] = []
    for start, end in sorted(regions):
        if out and start - out[-1][1] <= max_gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(float(s), float(e)) for s, e in out]


def confirmed_regions(gated: Sequence[Region], vad: Sequence[Region], min_overlap: float = 0.25) -> List[Region]:
    """The energy-gate regions that overlap a voice-activity region by at least ``min_overlap`` s.

    The gate keeps whole sung phrases (a VAD misses long sustained notes inside
    them); the VAD vetoes stretches where only a separator's leakage is loud.
    """
    kept = []
    for start, end in gated:
        overlap = sum(max(0.0, min(end, e) - max(start, s)) for s, e in vad)
        if overlap >= min_overlap:
            kept.append((start, end))
    return kept


def total_seconds(regions: Sequence[Region]) -> float:
    return float(sum(e - s for s, e in regions))


def stem_presence(vocals: np.ndarray, mix: np.ndarray, sample_rate: int, hop_s: float = 0.1) -> float:
    """Share of ``hop_s`` frames where the vocal stem is active: loud enough, and a real part of the mix.

    Active: vocal RMS above ``VOCAL_ACTIVE_DB`` dBFS and no more than
    ``-VOCAL_SHARE_DB`` dB below the mix in that frame (a separator's faint
    leakage on an instrumental stays below that). Both arrays share ``sample_rate``.
    """
    return presence_from_rms(au.frame_rms(vocals, sample_rate, hop_s), au.frame_rms(mix, sample_rate, hop_s))


def presence_from_rms(v: np.ndarray, m: np.ndarray) -> float:
    """:func:`stem_presence` from the two signals' frame RMS (``audio.frame_rms``, same frames)."""
    n = min(v.size, m.size)
    if n == 0:
        return 0.0
    v, m = v[:n].astype(np.float64), m[:n].astype(np.float64)
    active = (v > 10.0 ** (VOCAL_ACTIVE_DB / 20.0)) & (v >= m * 10.0 ** (VOCAL_SHARE_DB / 20.0))
    return float(np.mean(active))
