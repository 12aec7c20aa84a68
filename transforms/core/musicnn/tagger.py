"""Tag whole songs with the musicnn models (MTT_musicnn, MSD_musicnn; ISC licence) in PyTorch.

``load(names, folder=None, threads=None, hop_frames=187, batch_size=4)`` finds
each model's TensorFlow checkpoint (inside the installed ``musicnn`` package,
located with ``importlib.util.find_spec`` so none of its TensorFlow code runs,
or under ``folder``), checks the files' sha256 against the pinned digests,
reads them with songshard's own bundle reader and returns a
:class:`MusicnnTagger`. ``tagger.tag_song(audio16k)`` computes the log-mel once,
cuts it into 3 s patches (``hop_frames`` apart; 187 = no overlap, the package's
default), runs every model in batches and pools the per-patch sigmoid scores
over the song: ``{name: {"model", "tags" (mean), "max", "windows"}}``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.core.musicnn import checkpoint, features, model

PACKAGE = "musicnn"
PACKAGE_VERSION = "0.1.0"
LICENCE = "ISC"
DATA_FILE = ".data-00000-of-00001"

MTT_LABELS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals",
    "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft",
    "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
    "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral")
MSD_LABELS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
    "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
    "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop",
    "70s", "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
    "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy")


@dataclass(frozen=True)
class ModelSpec:
    """A shipped musicnn model: its tag list and the sha256 of its checkpoint files."""

    labels: Tuple[str, ...]
    data_sha256: str
    index_sha256: str


MODELS: Dict[str, ModelSpec] = {
    "MTT_musicnn": ModelSpec(MTT_LABELS,
                             "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
                             "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57"),
    "MSD_musicnn": ModelSpec(MSD_LABELS,
                             "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
                             "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8"),
}


def package_folder() -> Optional[str]:
    """Folder of the installed ``musicnn`` package, found without importing it; None if absent."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def checkpoint_folder(name: str, folder: Optional[str] = None) -> str:
    """Folder holding ``name``'s ``.index`` / ``.data-*`` files.

    ``folder`` may be the model's own folder or one that contains ``name/``;
    without it the installed package is searched. Raises ``BackendUnavailable``
    saying where it looked when the files are not there.
    """
    roots = [folder] if folder else [package_folder()]
    tried = []
    for root in roots:
        if root is None:
            tried.append(f"python package {PACKAGE!r} (not installed)")
            continue
        for candidate in (os.path.join(root, name), root):
            if os.path.isfile(os.path.join(candidate, ".index")):
                return candidate
            tried.append(candidate)
    raise BackendUnavailable(
        f"musicnn checkpoint {name!r} not found in {tried}; install the weights with "
        f"`pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}` or pass a folder")


def verified_provenance(name: str, folder: str, verify: bool = True) -> Provenance:
    """Hash the checkpoint files of ``name`` in ``folder``; provenance of the weights.

    With ``verify`` a digest differing from the pinned one raises ``ValueError``
    (the reader only trusts files it knows); without it the actual digest is
    recorded and the note says the weights are unpinned.
    """
    spec = MODELS[name]
    data_digest = file_sha256(os.path.join(folder, DATA_FILE))
    index_digest = file_sha256(os.path.join(folder, ".index"))
    pinned = (data_digest, index_digest) == (spec.data_sha256, spec.index_sha256)
    if verify and not pinned:
        raise ValueError(f"{name}: checkpoint sha256 {data_digest} / {index_digest} in {folder} "
                         f"differs from the pinned {spec.data_sha256} / {spec.index_sha256}")
    note = f"{PACKAGE} {PACKAGE_VERSION} {name} weights run by songshard's PyTorch network"
    return Provenance(backend=PACKAGE, version=PACKAGE_VERSION, weights=name, weights_sha256=data_digest,
                      licence=LICENCE, note=note if pinned else note + "; weights not the pinned files")


def pool_scores(scores: np.ndarray, labels: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per-patch scores (windows, tags) -> {"tags": mean per tag, "max": max per tag}."""
    return {"tags": {tag: float(v) for tag, v in zip(labels, scores.mean(axis=0))},
            "max": {tag: float(v) for tag, v in zip(labels, scores.max(axis=0))}}


class MusicnnTagger:
    """One or more musicnn networks sharing one log-mel front end.

    Built by :func:`load` (shipped weights) or directly from parameter dicts
    (``{name: (labels, params)}``, e.g. ``model.random_params()`` in tests).
    With ``prune`` (the default) front-end channels that cannot vary are
    computed once as constants (``model.prune_constant_channels``); a batch
    whose log-mel exceeds the bound that proof assumes runs the full network.
    """

    def __init__(self, nets: Dict[str, Tuple[Sequence[str], Dict[str, np.ndarray]]],
                 hop_frames: int = features.PATCH_FRAMES, batch_size: int = 4,
                 provenance: Optional[Dict[str, Provenance]] = None, prune: bool = True):
        if hop_frames <= 0 or batch_size <= 0:
            raise ValueError("hop_frames and batch_size must be positive")
        self.labels = {name: tuple(labels) for name, (labels, _) in nets.items()}
        self.params = {name: model.to_torch(params) for name, (_, params) in nets.items()}
        self.pruned = {name: model.to_torch(model.prune_constant_channels(params))
                       for name, (_, params) in nets.items()} if prune else {}
        self.hop_frames = hop_frames
        self.batch_size = batch_size
        self.provenance = dict(provenance or {})

    def scores(self, name: str, patches: np.ndarray) -> np.ndarray:
        """Patches (n, 187, 96) -> sigmoid tag scores (n, tags) of model ``name``, in batches."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(patches), self.batch_size):
                batch = torch.from_numpy(patches[start:start + self.batch_size])
                params = self.pruned.get(name)
                if params is None or float(batch.max()) > float(params["max_logmel"]):
                    params = self.params[name]
                out.append(torch.sigmoid(model.logits(params, batch)).numpy())
        return np.concatenate(out).astype(np.float32)

    def taggram(self, audio16k: np.ndarray) -> Dict[str, np.ndarray]:
        """16 kHz mono audio -> {model name: per-patch scores (windows, tags)}."""
        patches = features.patches(features.log_mel(audio16k), hop_frames=self.hop_frames)
        return {name: self.scores(name, patches) for name in self.params}

    def tag_song(self, audio16k: np.ndarray) -> Dict[str, dict]:
        """16 kHz mono audio -> {name: {"model", "tags": {tag: mean score}, "max": {...}, "windows"}}.

        Songs shorter than 3 s are repeat-padded to one patch; a tail shorter than
        a patch after the last whole one is not tagged. Raises ``ValueError`` for
        empty or multi-channel audio.
        """
        audio16k = np.asarray(audio16k)
        if audio16k.ndim != 1 or audio16k.size == 0:
            raise ValueError(f"expected non-empty mono 1-D audio, got shape {audio16k.shape}")
        result = {}
        for name, scores in self.taggram(audio16k).items():
            result[name] = {"model": name, **pool_scores(scores, self.labels[name]), "windows": len(scores)}
        return result


def load(names: Iterable[str] = ("MTT_musicnn", "MSD_musicnn"), folder: Optional[str] = None,
         threads: Optional[int] = None, hop_frames: int = features.PATCH_FRAMES, batch_size: int = 4,
         verify: bool = True, prune: bool = True) -> MusicnnTagger:
    """Load the named musicnn models -> :class:`MusicnnTagger`.

    ``threads`` sets torch's intra-op threads (process-wide); ``prune`` see
    :class:`MusicnnTagger`. Raises ``KeyError``
    for a model songshard has no spec for, ``BackendUnavailable`` when the
    checkpoint is missing and ``ValueError`` when its sha256 is not the pinned one.
    """
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    nets, provenance = {}, {}
    for name in names:
        if name not in MODELS:
            raise KeyError(f"unknown musicnn model {name!r}; choose from {sorted(MODELS)}")
        where = checkpoint_folder(name, folder)
        provenance[name] = verified_provenance(name, where, verify)
        weights = checkpoint.read_checkpoint(checkpoint.bundle_prefix(where))
        nets[name] = (MODELS[name].labels, model.params_from_checkpoint(weights))
    return MusicnnTagger(nets, hop_frames=hop_frames, batch_size=batch_size, provenance=provenance,
                         prune=prune)
