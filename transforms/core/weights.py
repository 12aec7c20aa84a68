"""Weights digests and pinned checks, in one place.

Every backend that records weights in provenance uses :func:`weights_sha256`
(a file: its sha256; several files or a folder: sha256 over the sorted
``name:sha256`` lines). :func:`verify_sha256` guards any file that would be
unpickled: it must match a pinned digest first.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Mapping

from transforms.core.stage import BackendUnavailable


def file_sha256(path: str, block: int = 1 << 22) -> str:
    """sha256 hex digest of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def digest_of(named: Mapping[str, str]) -> str:
    """One digest over several files' digests (``{file name: sha256}``): sha256 of sorted ``name:sha256`` lines."""
    lines = sorted(f"{name}:{sha}" for name, sha in named.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def files_sha256(paths: Iterable[str]) -> str:
    """One digest over several files (:func:`digest_of` their basenames and sha256s)."""
    return digest_of({os.path.basename(p): file_sha256(p) for p in paths})


def weights_sha256(path: str) -> str:
    """The digest songshard records for weights at ``path``: a file's sha256, or a folder's files' digest."""
    if os.path.isdir(path):
        files = [os.path.join(root, name) for root, _, names in os.walk(path) for name in names]
        return files_sha256(files)
    return file_sha256(path)


def verify_sha256(path: str, pinned: str) -> str:
    """Check ``path`` against a pinned sha256 before it is unpickled; returns the digest.

    Raises BackendUnavailable naming the file and both digests on a mismatch.
    """
    actual = file_sha256(path)
    if actual != pinned:
        raise BackendUnavailable(f"{path}: sha256 {actual} does not match the pinned {pinned}; "
                                 "refusing to load it")
    return actual
