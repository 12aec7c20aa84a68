"""The tagger backend interface and the embedded default ``--tags dsp``.

A tagger backend answers one question: which vocabulary terms does the audio
itself suggest? ``tag(mix, sample_rate)`` returns
``{"picks": {dimension: [(term, source)]}, "scores": {dimension: {term: p}}}``
where picks are the terms it is confident about. Metadata and signal
descriptors are not the backend's business: the stage merges them
(``transforms.tags.descriptions``).
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np

from schemas.records import Provenance
from transforms.core.facts import ASR_RATE
from transforms.core.stage import Backend

VERSION = "1"




def folder_licence(folder: str) -> str:
    """First non-empty line of a LICENSE / LICENCE file in ``folder``, else a pointer to it."""
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.upper().startswith(("LICENSE", "LICENCE")):
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.strip():
                        return line.strip()[:200]
    return f"unknown: not stated in {folder}"


class TaggerBackend(Backend):
    stage = "tags"
    # The rate at which tag() wants the mix and stems as mono [1, N] arrays (the stage then reads them
    # block by block, never a whole 48 kHz stereo array); None: whole arrays at the mix's own rate.
    input_rate: Optional[int] = None

    def tag(self, mix: np.ndarray, sample_rate: int, vocals: Optional[np.ndarray] = None,
            accompaniment: Optional[np.ndarray] = None,
            voiced: Optional[Sequence[Sequence[float]]] = None) -> Dict[str, dict]:
        """Tags of the mix (``vocals``, ``accompaniment``: the stems at ``sample_rate``, for backends
        that use them; ``voiced``: the [start, end] seconds where the lyrics stage found a voice, [] for
        none found, None when unknown)."""
        raise NotImplementedError  # pragma: no cover - abstract


class DspTagger(TaggerBackend):
    """No model: the stage's tags come from metadata and signal descriptors only."""

    name = "dsp"
    input_rate = ASR_RATE  # it uses no audio; the stage's descriptors work at 16 kHz mono

    def tag(self, mix: np.ndarray, sample_rate: int, vocals: Optional[np.ndarray] = None,
            accompaniment: Optional[np.ndarray] = None,
            voiced: Optional[Sequence[Sequence[float]]] = None) -> Dict[str, dict]:
        return {"picks": {}, "scores": {}}

    def provenance(self) -> Provenance:
        return Provenance(
            backend=self.name, version=VERSION, licence="songshard",
            note="embedded default: file tags and sidecar mapped to songshard's vocabulary, plus signal "
                 "processing (Krumhansl key profiles, YIN vocal pitch for gender, librosa onsets and "
                 "spectral centroid); no learned weights, so genre and emotion come from metadata only")
