"""The hook for a learned aesthetic scorer (``--quality_scorer_weights``).

A scorer file is ``torch.save`` of ``{"arch": ARCH, "config": {...}, "state_dict": ...}``
for :func:`build_model`: a small MLP on a song summary (the mean and standard
deviation over time of the 16 kHz mix's log-mel spectrogram), ending in a
sigmoid, so its output is a score in [0, 1]. Train one on rated songs, save it
with :func:`save_scorer`, and the stage blends it into the musicality score
(``transforms.quality.measures.quality_label``). Loaded with
``torch.load(weights_only=True)``: a scorer file cannot run code.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import numpy as np

from schemas.records import Provenance
from transforms.core.weights import file_sha256

ARCH = "songshard-aesthetic-mlp"
DEFAULT_CONFIG = {"n_mels": 64, "hidden": 64, "sample_rate": 16000}


def features(mono: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """[2 * n_mels] float32: mean and std over time of the log-mel spectrogram (dB, ref 1.0)."""
    import librosa

    mono = np.asarray(mono, dtype=np.float32).reshape(-1)
    if mono.size < 2048:
        mono = np.pad(mono, (0, 2048 - mono.size))
    mel = librosa.feature.melspectrogram(y=mono, sr=sample_rate, n_fft=2048, hop_length=1024, n_mels=n_mels)
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None) / 100.0
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)]).astype(np.float32)


def build_model(config: Dict[str, Any]):
    """The scorer's torch module for ``config`` (n_mels, hidden)."""
    from torch import nn

    n_in = 2 * int(config["n_mels"])
    return nn.Sequential(nn.Linear(n_in, int(config["hidden"])), nn.ReLU(),
                         nn.Linear(int(config["hidden"]), 1), nn.Sigmoid())


def save_scorer(path: str, model, config: Dict[str, Any]) -> str:
    """Write ``model`` (from :func:`build_model`) with its config to ``path``."""
    import torch

    torch.save({"arch": ARCH, "config": dict(config), "state_dict": model.state_dict()}, path)
    return path


class AestheticScorer:
    """A loaded scorer: ``score(mono, sample_rate) -> float`` in [0, 1]."""

    def __init__(self, path: str):
        import torch

        if not os.path.isfile(path):
            raise FileNotFoundError(f"--quality_scorer_weights {path!r}: no such file (write one with "
                                    "transforms.quality.scorer.save_scorer)")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("arch") != ARCH:
            raise ValueError(f"{path} is not a {ARCH} file (arch={blob.get('arch') if isinstance(blob, dict) else None})")
        self.path = path
        self.config = {**DEFAULT_CONFIG, **blob.get("config", {})}
        self.model = build_model(self.config)
        self.model.load_state_dict(blob["state_dict"])
        self.model.eval()
        self.sha256 = file_sha256(path)

    def score(self, mono: np.ndarray, sample_rate: int) -> float:
        import torch

        from transforms.core.audio import resample

        rate = int(self.config["sample_rate"])
        mono = np.asarray(mono, dtype=np.float32).reshape(1, -1)
        if sample_rate != rate:
            mono = resample(mono, sample_rate, rate)
        x = torch.from_numpy(features(mono[0], rate, int(self.config["n_mels"])))[None]
        with torch.inference_mode():
            return float(self.model(x)[0, 0])


def quality_provenance(scorer: AestheticScorer | None) -> Provenance:
    """Provenance of ``labels["quality"]``: the signal measures, plus the scorer when one is loaded."""
    note = ("embedded default: signal processing (BS.1770 loudness via pyloudnorm, 4x oversampled true peak, "
            "clipping, long-term-spectrum bandwidth, silence, DC, mid/side width, stem-based vocal presence "
            "and leakage), no learned weights")
    if scorer is None:
        return Provenance(backend="songshard-quality", version="1", licence="songshard", note=note)
    return Provenance(backend="songshard-quality+scorer", version="1", weights=scorer.path,
                      weights_sha256=scorer.sha256, licence="",
                      note=note.replace("no learned weights", f"blended with the learned {ARCH} scorer"))
