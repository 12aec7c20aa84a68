"""The worker image's GPU stack: torch and CTranslate2 on one CUDA major, their libraries loadable.

torch and CTranslate2 (faster-whisper's engine) each load CUDA libraries by
soname: torch from the nvidia-* pip packages it depends on (its own RPATH),
CTranslate2 with a plain ``dlopen("libcublas.so.12")`` that only the loader path
(LD_LIBRARY_PATH, ld.so.conf) satisfies. A torch built for another CUDA major, or
a cuBLAS missing from the loader path, fails only on the first GPU song. This
module checks both without a GPU (dlopen needs none), so the image build fails
instead (docker/Dockerfile; docs/gpu-stack.md says why CUDA 12).

    python -m transforms.core.gpu_stack                      # report; fails on a broken CUDA stack
    python -m transforms.core.gpu_stack --require-gpu-stack  # also fails on a CPU build of torch
    python -m transforms.core.gpu_stack --cuda-major 12      # also fails on another CUDA major
    python -m transforms.core.gpu_stack --print-lib-dirs     # the nvidia pip packages' lib folders

Exit status 0 when the stack is usable, 1 otherwise, with one line saying what is
missing. torch is never imported here: importing it preloads its CUDA libraries,
which would hide a cuBLAS that CTranslate2 could not load on its own.
"""

from __future__ import annotations

import argparse
import ast
import ctypes
import glob
import importlib.metadata
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

# CUDA needs of CTranslate2's PyPI Linux x86-64 wheels, by release: (first version, first version
# after, CUDA major, cuDNN major or None). From CTranslate2's wheel build script
# (python/tools/prepare_build_environment_linux.sh at each release tag) and its CHANGELOG:
#   3.x          CUDA 11.2, cuDNN 8   (libcublas-devel-11-2, libcudnn8 ...cuda11.2)
#   4.0 - 4.4    CUDA 12.2, cuDNN 8   ("update cuda 11.2 to cuda 12.2", libcudnn8 ...cuda12.2)
#   4.5 - 4.6.2  CUDA 12.2/12.4, cuDNN 9 ("Upgrade to CUDNN9")
#   4.6.3 - 4.x  CUDA 12.8, no cuDNN  ("Conv1d pure CUDA implementation": built -DWITH_CUDNN=OFF)
# The libraries are loaded at run time (-DCUDA_DYNAMIC_LOADING=ON): the wheel's libctranslate2
# names libcublas.so.12 and libcuda.so.1 and no cuDNN (checked with `strings` on 4.8.5); the CUDA
# runtime is linked statically. A version outside this table is reported as unknown.
CT2_CUDA: Tuple[Tuple[Tuple[int, ...], Tuple[int, ...], int, Optional[int]], ...] = (
    ((3, 0), (4, 0), 11, 8),
    ((4, 0), (4, 5), 12, 8),
    ((4, 5), (4, 6, 3), 12, 9),
    ((4, 6, 3), (5, 0), 12, None),
)

LoadFn = Callable[[str], bool]


@dataclass(frozen=True)
class Needs:
    """The CUDA libraries one package loads. ``by_name``: it dlopens bare sonames, so they must be
    on the loader path; otherwise it also finds them in the nvidia pip packages' folders."""

    package: str
    version: str
    cuda_major: int
    sonames: Tuple[str, ...]
    by_name: bool


@dataclass(frozen=True)
class Report:
    ok: bool
    line: str


def version_tuple(version: str) -> Tuple[int, ...]:
    """``"4.8.5"`` -> (4, 8, 5); local labels and pre-release tails are dropped (``"2.10.0+cu128"``)."""
    parts = []
    for piece in re.split(r"[.+]", version):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


def cuda_major(cuda_version: Optional[str]) -> Optional[int]:
    """``"12.8"`` -> 12; None (a CPU build) -> None."""
    return version_tuple(cuda_version)[0] if cuda_version else None


def ctranslate2_needs(version: str) -> Optional[Needs]:
    """What a CTranslate2 PyPI wheel of ``version`` loads (None: a version CT2_CUDA does not know)."""
    have = version_tuple(version)
    for first, after, major, cudnn in CT2_CUDA:
        if first <= have < after:
            sonames = (f"libcublas.so.{major}",) + ((f"libcudnn.so.{cudnn}",) if cudnn else ())
            return Needs("ctranslate2", version, major, sonames, by_name=True)
    return None


def cudnn_major(requires: Iterable[str]) -> Optional[int]:
    """The cuDNN major pinned by torch's requirements (``nvidia-cudnn-cu12==9.10.2.21`` -> 9)."""
    for requirement in requires:
        found = re.match(r"nvidia-cudnn-cu\d+\s*==\s*(\d+)\.", requirement)
        if found:
            return int(found.group(1))
    return None


def torch_needs(version: str, cuda_version: Optional[str], requires: Iterable[str]) -> Optional[Needs]:
    """What a CUDA build of torch loads first (None for a CPU build). cuDNN 9 unless its pins say else."""
    major = cuda_major(cuda_version)
    if major is None:
        return None
    cudnn = cudnn_major(requires) or 9
    sonames = (f"libcudart.so.{major}", f"libcublas.so.{major}", f"libcudnn.so.{cudnn}")
    return Needs("torch", version, major, sonames, by_name=False)


def probe(sonames: Iterable[str], load: LoadFn, lib_dirs: Sequence[str]) -> Dict[str, Tuple[bool, Optional[str]]]:
    """{soname: (loads by bare name, first folder of ``lib_dirs`` it loads from by full path or None)}.

    Every bare name is tried before any full path: once a library is loaded from a path, the loader
    answers its bare soname from memory, which would pass a library CTranslate2 cannot find itself.
    """
    names = list(dict.fromkeys(sonames))
    by_name = {soname: load(soname) for soname in names}
    found: Dict[str, Tuple[bool, Optional[str]]] = {}
    for soname in names:
        folder = None
        if not by_name[soname]:
            folder = next((d for d in lib_dirs if load(os.path.join(d, soname))), None)
        found[soname] = (by_name[soname], folder)
    return found


def library_problems(needs: Needs, found: Dict[str, Tuple[bool, Optional[str]]]) -> List[str]:
    """One phrase per library of ``needs`` that its package could not load (``found``: :func:`probe`)."""
    problems = []
    for soname in needs.sonames:
        by_name, folder = found[soname]
        if by_name or (folder and not needs.by_name):
            continue
        who = f"{soname} ({needs.package} {needs.version})"
        if folder:
            problems.append(f"{who} is in {folder} but not on the loader path "
                            f"(add the folder to LD_LIBRARY_PATH or /etc/ld.so.conf.d and run ldconfig)")
        else:
            problems.append(f"{who} cannot be loaded: no such library on the loader path "
                            f"or in the nvidia pip packages")
    return problems


def evaluate(torch_version: Optional[str], torch_cuda: Optional[str], torch_requires: Sequence[str],
             ct2_version: Optional[str], load: LoadFn, lib_dirs: Sequence[str],
             require_gpu_stack: bool = False, want_major: Optional[int] = None) -> Report:
    """Whether torch and CTranslate2 share one CUDA major whose libraries each can load.

    A CPU build of torch is fine unless ``require_gpu_stack`` (the GPU image's build);
    ``want_major`` also requires that CUDA major (the one the target driver supports).
    """
    if torch_version is None:
        return Report(False, "torch is not installed")
    torch_side = torch_needs(torch_version, torch_cuda, torch_requires)
    if torch_side is None:
        line = f"torch {torch_version} is a CPU build (torch.version.cuda is None)"
        if require_gpu_stack:
            return Report(False, line + ": the GPU image needs a CUDA build of torch")
        return Report(True, line + ": no GPU stack to check")
    problems = []
    if want_major is not None and torch_side.cuda_major != want_major:
        problems.append(f"torch {torch_version} is built for CUDA {torch_cuda}, this image targets "
                        f"CUDA {want_major}")
    ct2_side = ctranslate2_needs(ct2_version) if ct2_version else None
    if ct2_version is None:
        problems.append("ctranslate2 is not installed")
    elif ct2_side is None:
        problems.append(f"ctranslate2 {ct2_version} has no known CUDA requirement "
                        f"(add its release to transforms/core/gpu_stack.py's CT2_CUDA)")
    elif ct2_side.cuda_major != torch_side.cuda_major:
        problems.append(f"torch {torch_version} is built for CUDA {torch_cuda} but ctranslate2 {ct2_version} "
                        f"needs CUDA {ct2_side.cuda_major} ({', '.join(ct2_side.sonames)}): "
                        f"install both for one CUDA major")
    sides = [side for side in (torch_side, ct2_side) if side is not None]
    found = probe([soname for side in sides for soname in side.sonames], load, lib_dirs)
    for side in sides:
        problems.extend(library_problems(side, found))
    if problems:
        return Report(False, "; ".join(problems))
    sonames = sorted(set(torch_side.sonames) | set(ct2_side.sonames))
    return Report(True, f"torch {torch_version} (CUDA {torch_cuda}) and ctranslate2 {ct2_version} "
                        f"(CUDA {ct2_side.cuda_major}) can load {', '.join(sonames)}")


# ---- this machine's values ------------------------------------------------------------------


def dlopen(name: str) -> bool:
    """Whether the dynamic loader opens ``name`` (a soname or a path); no GPU is needed for this."""
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def nvidia_lib_dirs(search_path: Optional[Sequence[str]] = None) -> List[str]:
    """The lib folders of the installed nvidia-* pip packages (``site-packages/nvidia/*/lib``)."""
    folders: List[str] = []
    for entry in (sys.path if search_path is None else search_path):
        for folder in sorted(glob.glob(os.path.join(entry or ".", "nvidia", "*", "lib"))):
            if os.path.isdir(folder) and os.path.realpath(folder) not in map(os.path.realpath, folders):
                folders.append(folder)
    return folders


def torch_build() -> Tuple[Optional[str], Optional[str], List[str]]:
    """(torch's version, its CUDA version or None, its requirements), read without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None, None, []
    with open(os.path.join(list(spec.submodule_search_locations)[0], "version.py")) as handle:
        values = version_file_values(handle.read())
    try:
        requires = importlib.metadata.requires("torch") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    return values.get("__version__"), values.get("cuda"), list(requires)


def version_file_values(text: str) -> dict:
    """The literal assignments of a ``torch/version.py`` (``cuda: Optional[str] = '12.8'``)."""
    values = {}
    for node in ast.parse(text).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            try:
                values[target.id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def installed_version(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms.core.gpu_stack", description=__doc__.split("\n")[0])
    parser.add_argument("--require-gpu-stack", action="store_true",
                        help="fail unless torch is a CUDA build (the GPU worker image's build step)")
    parser.add_argument("--cuda-major", type=int, default=None, help="fail unless torch is built for this CUDA major")
    parser.add_argument("--print-lib-dirs", action="store_true",
                        help="print the nvidia pip packages' lib folders, one a line, and exit")
    args = parser.parse_args(argv)
    lib_dirs = nvidia_lib_dirs()
    if args.print_lib_dirs:
        print("\n".join(lib_dirs))
        return 0
    torch_version, torch_cuda, requires = torch_build()
    report = evaluate(torch_version, torch_cuda, requires, installed_version("ctranslate2"), dlopen, lib_dirs,
                      require_gpu_stack=args.require_gpu_stack, want_major=args.cuda_major)
    print(f"gpu stack: {'ok' if report.ok else 'FAILED'}: {report.line}", file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
