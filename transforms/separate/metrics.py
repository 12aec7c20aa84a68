"""Separation quality and level figures. Pure numpy.

``sdr`` is the plain signal-to-distortion ratio 10 log10(|s|^2 / |s - e|^2)
(the "new SDR" of the SiSEC/MDX challenges, over the whole signal), ``si_sdr``
its scale-invariant variant (Le Roux et al. 2019). Both take [C, N] or [N]
arrays and treat all channels as one signal.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-10
FLOOR_DB = -120.0  # what digital silence reads as, so labels stay finite (JSON)


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    s, e = _flat(reference), _flat(estimate)
    n = min(len(s), len(e))
    s, e = s[:n], e[:n]
    return float(10 * np.log10((np.dot(s, s) + EPS) / (np.dot(s - e, s - e) + EPS)))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    s, e = _flat(reference), _flat(estimate)
    n = min(len(s), len(e))
    s, e = s[:n] - s[:n].mean(), e[:n] - e[:n].mean()
    target = (np.dot(e, s) / (np.dot(s, s) + EPS)) * s
    noise = e - target
    return float(10 * np.log10((np.dot(target, target) + EPS) / (np.dot(noise, noise) + EPS)))


def energy_db(energy: float, samples: int) -> float:
    """RMS level in dBFS from a sum of squares over ``samples`` values, floored at FLOOR_DB."""
    if samples <= 0 or energy <= 0:
        return FLOOR_DB
    return float(max(FLOOR_DB, 10 * np.log10(energy / samples)))
