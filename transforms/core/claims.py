"""First-come claims on a content id, so that duplicates are dropped without grouping every song.

A song's decode stage claims its content id in the run's work dir: :func:`claim` creates
``WORK/claims/<id>`` holding the song's URI only if no such object exists yet, in one atomic
step, and returns whichever URI holds the claim. The song whose URI comes back goes on; any
other song with the same audio is a duplicate of it. No song waits for another, which is what
grouping by id (a shuffle: every song decoded before any is separated) could not give.

What is atomic:

- a local work dir: the URI is written to a private temporary file that is then hard-linked
  to the claim's name; ``link`` fails if the name exists, so a claim appears whole or not at
  all, and two processes racing for one id get one winner. Where the filesystem has no hard
  links, the claim is created with ``O_EXCL`` and a reader waits for its content;
- ``gs://``: an upload with ``if_generation_match=0``, Cloud Storage's create-if-absent.

What is idempotent: claiming again with the URI that holds a claim returns that URI, so a
retried bundle, or the same song read twice by one run, goes on as before. Claims live in the
run's work dir and go with it; across runs, OUT's index catches copies of finished songs.

Other filesystems (``s3://`` ...) have no create-if-absent here: :func:`check_supported`
says so at start-up, and ``--dedupe group`` (a grouping by id) still works on them. (S3 now
has one, ``PutObject`` with ``If-None-Match: *``, which moto's server honours; using it would
take a boto3 client built from Beam's S3 options on every worker.)

The ``gs://`` path is tested against gcp-storage-emulator (``tests/test_object_stores.py``):
two claims of one key, and threads racing for one, get one winner (the emulator ignores
``ifGenerationMatch``; the test fixture adds Cloud Storage's answer, 412, to its uploads).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Optional

CLAIMS_FOLDER = "claims"


def _local_path(uri: str) -> Optional[str]:
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return None if "://" in uri else uri


def supported(work_root: str) -> bool:
    """Whether claims can be made atomically under ``work_root`` (a local folder or ``gs://``)."""
    return _local_path(work_root) is not None or work_root.startswith("gs://")


def check_supported(work_root: str) -> None:
    """Raise ValueError, at start-up, when ``work_root`` cannot hold atomic claims."""
    if not supported(work_root):
        raise ValueError(
            f"--dedupe claims needs a work dir on a local disk or in gs:// (it creates objects only if "
            f"absent); {work_root!r} is neither: pass --work_dir on one of those, or --dedupe group "
            f"(groups songs by content id: no song is separated before every song is decoded)")


def _read_claim(path: str, wait_s: float = 2.0) -> str:
    """The owner in a claim file; waits a moment for one that :func:`_create_exclusive` is still writing."""
    deadline = time.monotonic() + wait_s
    while True:
        with open(path, encoding="utf-8") as f:
            owner = f.read()
        if owner or time.monotonic() > deadline:
            return owner
        time.sleep(0.01)


def _create_exclusive(path: str, owner: str) -> str:
    """For filesystems without hard links: O_EXCL creation, then the owner written into it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return _read_claim(path)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(owner)
    return owner


def _claim_local(folder: str, key: str, owner: str) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, key)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".claim-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(owner)
        try:
            os.link(tmp, path)
            return owner
        except FileExistsError:
            return _read_claim(path)
        except OSError:  # no hard links on this filesystem (some network and FUSE mounts)
            return _create_exclusive(path, owner)
    finally:
        os.unlink(tmp)


def _claim_gcs(folder: str, key: str, owner: str, client=None) -> str:
    from google.api_core.exceptions import PreconditionFailed  # the worker image has google-cloud-storage
    from google.cloud import storage

    bucket_name, _, prefix = folder[len("gs://"):].partition("/")
    client = client or storage.Client()  # honours STORAGE_EMULATOR_HOST
    blob = client.bucket(bucket_name).blob(f"{prefix.rstrip('/')}/{key}".lstrip("/"))
    try:
        blob.upload_from_string(owner.encode("utf-8"), if_generation_match=0)
        return owner
    except PreconditionFailed:
        return blob.download_as_bytes().decode("utf-8")


def claim(work_dir: str, key: str, owner: str) -> str:
    """Claim ``key`` for ``owner`` under ``work_dir``; returns the owner holding it (``owner`` if it won)."""
    if not key or "/" in key:
        raise ValueError(f"a claim key is one path segment, not {key!r}")
    check_supported(work_dir)
    local = _local_path(work_dir)
    if local is not None:
        return _claim_local(os.path.join(local, CLAIMS_FOLDER), key, owner)
    return _claim_gcs(f"{work_dir.rstrip('/')}/{CLAIMS_FOLDER}", key, owner)


__all__ = ["claim", "check_supported", "supported", "CLAIMS_FOLDER"]
