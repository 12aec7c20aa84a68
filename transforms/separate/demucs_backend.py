"""``--separate demucs``: Hybrid Transformer Demucs (htdemucs, 4 stems) through demucs's own code.

Weights (``--separate_weights``), nothing is ever downloaded:

* a checkpoint file saved with demucs's serialisation (``torch.save`` of the
  package ``demucs.states.serialize_model`` makes: klass, args, kwargs, state),
  loaded with ``demucs.states.load_model``;
* a folder laid out as a demucs model repo (``SIG.th`` files and ``NAME.yaml``
  bags), loaded with ``demucs.pretrained.get_model(--separate_model, repo=folder)``;
* a model name or signature whose files are already in the torch hub cache
  (``TORCH_HOME/hub/checkpoints``, where demucs's own download puts them); when
  ``--separate_weights`` is not given, ``--separate_model`` is looked up there.

The song goes through the model in chunks of the model's segment (songshard's
overlap-add, ``transforms.separate.overlap``), ``--separate_batch`` chunks per
``demucs.apply.apply_model`` call, so memory does not grow with the song.
Vocals = the vocals stem; accompaniment = drums + bass + other (computed by the stage).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256, files_sha256
from transforms.separate.backend import SeparatorBackend

SOURCES = ["drums", "bass", "other", "vocals"]

# The released htdemucs (signature 955717e8): demucs's htdemucs defaults plus the
# overrides of its training grid (demucs/grids/mmi.py); segment 7.8 s is the one
# the released package carries.
HTDEMUCS_KWARGS: Dict[str, Any] = dict(
    sources=SOURCES, audio_channels=2, samplerate=44100, segment=Fraction(39, 5),
    channels=48, depth=4, dconv_mode=3, t_layers=5, bottom_channels=0, t_dropout=0.02)




def build_htdemucs(**overrides: Any):
    """An htdemucs with the released hyper-parameters and random weights (for tests, benchmarks)."""
    from demucs.htdemucs import HTDemucs

    return HTDemucs(**{**HTDEMUCS_KWARGS, **overrides})


def model_package(model) -> dict:
    """What ``demucs.states.serialize_model`` stores (minus training args): klass, args, kwargs, state."""
    from demucs.states import get_state

    args, kwargs = model._init_args_kwargs
    return {"klass": model.__class__, "args": args, "kwargs": kwargs,
            "state": get_state(model, None, half=False), "training_args": {}}


def save_checkpoint(model, path: str) -> str:
    """Save ``model`` as a demucs checkpoint file at ``path``; returns ``path``."""
    import torch

    torch.save(model_package(model), path)
    return path


def save_model_repo(model, folder: str, name: str = "htdemucs", signature: str = "00000000") -> str:
    """Lay ``model`` out as a demucs model repo: ``folder/SIG-CHECKSUM.th`` + ``folder/NAME.yaml``."""
    from demucs.states import save_with_checksum

    os.makedirs(folder, exist_ok=True)
    save_with_checksum(model_package(model), Path(folder) / f"{signature}.th")
    with open(os.path.join(folder, f"{name}.yaml"), "w") as f:
        f.write(f"models: ['{signature}']\n")
    return folder


def hub_checkpoint_dir() -> str:
    """Where torch hub (and so demucs's downloader) keeps checkpoints."""
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def hub_files(name: str) -> Tuple[List[str], Optional[dict]]:
    """(checkpoint paths in the hub cache, bag dict or None) of a demucs model name or signature."""
    import yaml
    from demucs import pretrained

    remote = pretrained.REMOTE_ROOT
    urls = pretrained._parse_remote_files(remote / "files.txt")
    bag = None
    if (remote / f"{name}.yaml").is_file():
        bag = yaml.safe_load((remote / f"{name}.yaml").read_text())
        sigs = list(bag["models"])
    else:
        sigs = [name]
    folder = hub_checkpoint_dir()
    return [os.path.join(folder, urls[s].rsplit("/", 1)[-1]) if s in urls else os.path.join(folder, s)
            for s in sigs], bag


class DemucsSeparator(SeparatorBackend):
    """htdemucs (or any demucs model) from local weights; see the module docstring."""

    name = "demucs"
    needs_normalisation = True  # demucs separates the mix standardised by its own mean / std

    def __init__(self, params):
        super().__init__(params)
        self.model = None
        self.stems = tuple(SOURCES)
        self.sample_rate = 44100
        self._weights: List[str] = []
        self._sha256 = ""
        self._model_name = ""

    def _opt(self, key: str, default: Any = None) -> Any:
        value = self.params.get(key)
        return default if value is None else value

    def resolve(self) -> Tuple[str, str, List[str]]:
        """(kind, model name, files): kind is "file", "repo" or "hub". BackendUnavailable otherwise."""
        spec = self._opt("weights")
        name = str(self._opt("model", "htdemucs"))
        if spec is not None and os.path.isfile(str(spec)):
            return "file", Path(str(spec)).stem, [str(spec)]
        if spec is not None and os.path.isdir(str(spec)):
            folder = Path(str(spec))
            names = {p.stem for p in folder.glob("*.yaml")} | {p.stem.rsplit("-", 1)[0] for p in folder.glob("*.th")}
            if name not in names:
                raise BackendUnavailable(
                    f"demucs: model {name!r} is not in the model repo {folder} (it holds {sorted(names)}); "
                    "pass --separate_model NAME, or lay the folder out as NAME.yaml (models: [SIG]) "
                    "plus SIG.th checkpoint files")
            return "repo", name, sorted(str(p) for p in folder.glob("*.th"))
        looked = name if spec is None else str(spec)
        try:
            files, _ = hub_files(looked)
        except Exception as exc:  # noqa: BLE001 - demucs / yaml missing or broken: say so
            raise BackendUnavailable(f"demucs: cannot read demucs's model list: {exc}") from exc
        if files and all(os.path.isfile(f) for f in files):
            return "hub", looked, files
        raise BackendUnavailable(
            f"demucs: no weights found for {looked!r}. Looked for "
            + ("" if spec is None else f"a checkpoint file or model-repo folder at {spec!r}, then for ")
            + f"{', '.join(files) or looked} in the torch hub cache ({hub_checkpoint_dir()}). Provide "
            "--separate_weights PATH to a demucs checkpoint (.th), or to a folder holding "
            "NAME.yaml + SIG.th (with --separate_model NAME), or copy the released files into the hub "
            "cache. Nothing is downloaded; the embedded default is --separate dsp.")

    def check(self) -> None:
        self.resolve()
        import demucs  # noqa: F401 - fail in the driver if the package is missing

    def _fingerprint(self, files: List[str]) -> str:
        return file_sha256(files[0]) if len(files) == 1 else files_sha256(files)

    def load(self) -> None:
        import torch
        from demucs.apply import BagOfModels, apply_model
        from demucs.pretrained import get_model
        from demucs.states import load_model

        kind, name, files = self.resolve()
        if kind == "file":
            model = load_model(files[0])
        elif kind == "repo":
            model = get_model(name, repo=Path(files[0]).parent)
        else:
            _, bag = hub_files(name)
            models = [load_model(f) for f in files]
            if bag is None:
                model = models[0]
            else:
                model = BagOfModels(models, bag.get("weights"), bag.get("segment"))
        self.device = torch.device(str(self._opt("device", "cpu")))
        model.to(self.device).eval()
        self.model, self._apply = model, apply_model
        self._model_name, self._weights = name, files
        self._sha256 = self._fingerprint(files)
        self.stems = tuple(model.sources)
        self.sample_rate = int(model.samplerate)
        self.channels = int(model.audio_channels)
        self.segment = self._segment(model)
        self.overlap = float(self._opt("overlap", 0.25))
        self.shifts = int(self._opt("shifts", 0))
        self.batch = max(1, int(self._opt("batch", 1)))
        self.chunk_length = int(self.segment * self.sample_rate)
        self.hop = max(1, int((1 - self.overlap) * self.chunk_length))
        self.fade = self.chunk_length // 2  # demucs's own triangle weighting

    def _segment(self, model) -> float:
        """Seconds per chunk: --separate_segment, capped at what a transformer model was trained on."""
        from demucs.apply import BagOfModels
        from demucs.htdemucs import HTDemucs

        inner = model.models if isinstance(model, BagOfModels) else [model]
        limit = min([float(m.segment) for m in inner if isinstance(m, HTDemucs)] or [float("inf")])
        default = float(min(float(getattr(m, "segment", 10.0)) for m in inner))
        wanted = self._opt("segment")
        segment = default if wanted is None else float(wanted)
        return min(segment, limit)

    def process(self, chunks: np.ndarray) -> np.ndarray:
        import torch

        mix = torch.from_numpy(np.ascontiguousarray(chunks, dtype=np.float32))
        with torch.no_grad():
            out = self._apply(self.model, mix, shifts=self.shifts, split=False, overlap=self.overlap,
                              segment=self.segment, device=self.device)
        return out.to("cpu", torch.float32).numpy()

    def provenance(self) -> Provenance:
        import demucs

        if not self._sha256:
            _, name, files = self.resolve()
            self._model_name, self._weights, self._sha256 = name, files, self._fingerprint(files)
        return Provenance(
            backend=self.name, version=f"demucs {demucs.__version__}", weights=";".join(self._weights),
            weights_sha256=self._sha256, licence="demucs code MIT; weights: see their source",
            note=f"model {self._model_name}; vocals = vocals stem, accompaniment = drums + bass + other")
