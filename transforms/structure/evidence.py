"""The models behind the metrical-level check's song-level evidence (``tempo.ModelEvidence``).

* ``--structure_tempo_cnn`` (default ``cnn,deeptemp_k8``; ``none`` to switch
  off): tempo classifiers from the ``tempocnn`` package (AGPL-3.0 code and
  models, sha256 pinned; ``transforms.structure.tempo_cnn``), averaged.
* ``--structure_genre_prior`` (default ``musicnn``; ``none`` to switch off): the
  MTT musicnn tagger's "metal" score (ISC weights, sha256 pinned; the tags
  stage's model), which tilts the tempo prior towards fast levels.

Both are measured on the whole song. Asked for but not installed, either stops
the run at start-up (:meth:`LevelEvidence.check`) with the command that
installs it.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from transforms.core import audio as au
from transforms.core.stage import BackendUnavailable
from transforms.structure import tempo, tempo_cnn

GENRE_MODEL = "MTT_musicnn"
GENRE_TAG = "metal"


def parse_models(value) -> Tuple[str, ...]:
    """``"cnn,deeptemp_k8"`` -> the model names; ``"none"`` or empty -> (). ValueError for an unknown name."""
    names = tuple(n.strip() for n in str(value if value is not None else ",".join(tempo_cnn.DEFAULT_TEMPO_MODELS)).split(",")
                  if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in tempo_cnn.MODELS]
    if unknown:
        raise ValueError(f"--structure_tempo_cnn: unknown model(s) {unknown}; choose from "
                         f"{sorted(tempo_cnn.MODELS)} or none")
    return names


class LevelEvidence:
    """Loads the evidence models once per worker and measures a song (:meth:`measure`)."""

    def __init__(self, tempo_models=None, genre_prior: Optional[str] = "musicnn"):
        self.tempo_models = parse_models(tempo_models)
        self.genre_prior = str(genre_prior or "none")
        if self.genre_prior not in ("musicnn", "none"):
            raise ValueError(f"--structure_genre_prior must be musicnn or none, got {self.genre_prior!r}")
        self._cnn = None
        self._tagger = None

    @property
    def active(self) -> bool:
        return bool(self.tempo_models) or self.genre_prior == "musicnn"

    def check(self) -> None:
        """BackendUnavailable when a model asked for is not installed."""
        for name in self.tempo_models:
            tempo_cnn.model_path(name)
        if self.genre_prior == "musicnn":
            from transforms.core.musicnn import tagger

            try:
                tagger.checkpoint_folder(GENRE_MODEL)
            except BackendUnavailable as err:
                raise BackendUnavailable(f"--structure_genre_prior musicnn: {err} "
                                         "(or pass --structure_genre_prior none)") from err

    def load(self) -> None:
        """Reads and checks the weights (ValueError when a file's sha256 is not the pinned one)."""
        if self.tempo_models and self._cnn is None:
            self._cnn = tempo_cnn.TempoCNN(self.tempo_models)
        if self.genre_prior == "musicnn" and self._tagger is None:
            from transforms.core.musicnn import tagger

            self._tagger = tagger.load((GENRE_MODEL,))

    def measure(self, y: np.ndarray, sample_rate: int) -> Optional[tempo.ModelEvidence]:
        """Mono audio -> the song's :class:`tempo.ModelEvidence` (None when no model is on)."""
        if not self.active:
            return None
        self.load()
        dist = self._cnn.distribution(y, sample_rate) if self._cnn is not None else None
        metal = None
        if self._tagger is not None:
            y16 = au.resample(np.asarray(y, np.float32)[None], sample_rate, au.ASR_RATE)[0]
            metal = float(self._tagger.tag_song(y16)[GENRE_MODEL]["tags"][GENRE_TAG])
        return tempo.ModelEvidence(tempo=dist, metal=metal)

    def describe(self) -> str:
        """The evidence models for provenance notes ("" when none)."""
        parts = []
        if self.tempo_models:
            parts.append(f"tempo CNN {tempo_cnn.VERSION}: " + ", ".join(
                f"{n} (sha256 {tempo_cnn.MODELS[n][0][:12]})" for n in self.tempo_models) + f", {tempo_cnn.LICENCE}")
        if self.genre_prior == "musicnn":
            parts.append(f"genre prior: {GENRE_MODEL} '{GENRE_TAG}' score (ISC)")
        return "; ".join(parts)
