"""Many small objects at once: concurrent reads and batched deletes through Beam's FileSystems.

Packing touches every finished song's part (``OUT/_parts/KEY.tar`` and ``KEY.json``). Done one
call at a time from one machine, a million songs are millions of sequential round trips to a
bucket. Here reads run on a thread pool (object stores serve many requests at once; a local disk
does not mind), and deletes go in batches: Cloud Storage's batch API (100 objects a request) and
S3's multi-object delete (Beam's S3 filesystem batches them), where ``FileSystems.delete`` on
``gs://`` would list and then delete every path alone.

Deleting something that is already gone is not an error (a rerun after a crash deletes again
what the crash had half deleted); any other failure raises ``BeamIOError`` naming the paths.
"""

from __future__ import annotations

import collections
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Deque, Dict, Iterable, Iterator, List, TypeVar

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from transforms.core import workdir

T = TypeVar("T")
R = TypeVar("R")

IO_THREADS = 16  # requests in flight from one process; Cloud Storage and S3 take far more


def ordered_map(fn: Callable[[T], R], items: Iterable[T], pool: ThreadPoolExecutor, ahead: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``pool``, results in input order, at most ``ahead`` calls in flight
    (so that memory holds ``ahead`` results, not all of them). An exception in ``fn`` is raised when
    its result's turn comes."""
    pending: Deque[Future] = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= max(1, ahead):
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def map_concurrently(fn: Callable[[T], R], items: Iterable[T], threads: int = IO_THREADS) -> List[R]:
    """``[fn(x) for x in items]`` with up to ``threads`` calls at once, in input order."""
    items = list(items)
    if len(items) <= 1 or threads <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="songshard-io") as pool:
        return list(pool.map(fn, items))


def _local_path(uri: str):
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return None if "://" in uri else uri


def _delete_gcs(uris: List[str]) -> Dict[str, object]:
    """Cloud Storage's batch delete, 100 objects a request; {uri: error} for failures other than 404."""
    # GCSFileSystem.delete matches (lists) every path before deleting it alone; its client's
    # delete_batch is the batch API itself.
    statuses = workdir.gcs_io().delete_batch(uris)
    return {uri: error for uri, error in statuses if error}


def delete_many(uris: Iterable[str]) -> int:
    """Delete every object in ``uris`` (files, not folders); returns how many were asked for.

    Gone already is fine. Raises BeamIOError with {uri: error} for any other failure.
    """
    uris = list(dict.fromkeys(uris))
    if not uris:
        return 0
    errors: Dict[str, object] = {}
    local = [u for u in uris if _local_path(u) is not None]
    gcs = [u for u in uris if u.startswith("gs://")]
    other = [u for u in uris if u not in set(local) | set(gcs)]
    for uri in local:
        try:
            os.remove(_local_path(uri))
        except FileNotFoundError:
            pass
        except OSError as exc:
            errors[uri] = exc
    if gcs:
        errors.update(_delete_gcs(gcs))
    if other:  # s3:// and the rest: Beam's filesystem batches them (S3: delete_objects); missing is no error
        try:
            FileSystems.delete(other)
        except BeamIOError as exc:
            errors.update({u: e for u, e in exc.exception_details.items() if FileSystems.exists(u)})
    if errors:
        raise BeamIOError(f"could not delete {len(errors)} of {len(uris)} objects", errors)
    return len(uris)
