"""One model per machine, shared by every worker process, with batches across songs.

Dataflow runs one SDK worker process per vCPU. Each would load its own copy of a
model onto the machine's one GPU, and each song's segments would go through the
model alone. With ``--separate_share_model`` the separation stage instead hosts
its backend once per machine through Beam's ``multi_process_shared``: the first
worker process to need it builds it and serves it, the others call it through a
proxy, and :class:`BatchingServer` merges the segments that several songs send
at the same time into one forward pass (up to ``max_batch`` segments, waiting at
most ``max_wait_s`` for company).

The server's :meth:`BatchingServer.stats` says how many passes ran, how many
segments they held and how many held segments of more than one caller; the
stage records them in its labels so that a run shows whether batching happened.

With ``--lyrics_share_model`` the lyrics stage's ASR is hosted the same way
(:class:`AsrServer`): one copy per machine, its calls run one at a time.

The server runs in a process of its own, started by the first worker that needs it (Beam's
``spawn_process``), not inside that worker: a song that crashes a worker does not take the model
with it. Beam ends the server when the worker that started it dies; every handle then reconnects
on its next call (the first caller builds a new server, the others connect to it) and repeats the
call, up to :data:`RECONNECTS` times, so the songs in flight are retried, not dead-lettered.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from schemas.records import Provenance

log = logging.getLogger("songshard")

# A call that finds the server gone (its connection refused, reset or closed) reconnects and repeats.
RECONNECTS = 2
SERVER_GONE = (ConnectionError, EOFError, BrokenPipeError)

# what a worker needs of a separator besides ``process`` (transforms.separate.backend.SeparatorBackend)
SEPARATOR_ATTRS = ("name", "sample_rate", "channels", "stems", "chunk_length", "hop", "fade", "batch",
                   "needs_normalisation")


@dataclass
class _Request:
    chunks: np.ndarray
    caller: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Optional[np.ndarray] = None
    error: Optional[BaseException] = None


class BatchingServer:
    """Hosts one backend (``target`` "module:Class" built with ``params``) and batches its ``process`` calls.

    ``process(chunks, caller)`` may be called from many threads at once (the
    multi-process manager serves each worker process on its own thread); calls
    whose chunks have the same shape are concatenated along the first axis, run
    through the backend in one pass, and split back.
    """

    def __init__(self, target: str, params: Mapping[str, Any], max_batch: int = 16, max_wait_s: float = 0.02):
        module, _, cls = target.partition(":")
        self.backend = getattr(importlib.import_module(module), cls)(dict(params))
        self.backend.load()
        self.max_batch, self.max_wait_s = max(1, int(max_batch)), max(0.0, float(max_wait_s))
        self._queue: "queue.Queue[_Request]" = queue.Queue()
        self._held: List[_Request] = []
        self._lock = threading.Lock()
        self._stats = {"passes": 0, "segments": 0, "shared_passes": 0, "max_segments": 0, "callers": set()}
        self._thread = threading.Thread(target=self._serve, name="songshard-batching-server", daemon=True)
        self._thread.start()

    def describe(self) -> Dict[str, Any]:
        """The backend's attributes a worker needs, its provenance, and the serving process id."""
        attrs = {name: getattr(self.backend, name) for name in SEPARATOR_ATTRS if hasattr(self.backend, name)}
        return {"attrs": attrs, "provenance": self.backend.provenance().to_dict(), "pid": os.getpid()}

    def process(self, chunks: np.ndarray, caller: str = "") -> np.ndarray:
        request = _Request(np.ascontiguousarray(chunks), caller)
        self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return {**{k: v for k, v in self._stats.items() if k != "callers"},
                    "callers": len(self._stats["callers"]), "pid": os.getpid()}

    def _next_batch(self) -> List[_Request]:
        first = self._held.pop(0) if self._held else self._queue.get()
        batch, size = [first], first.chunks.shape[0]
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_batch:
            wait = deadline - time.monotonic()
            try:
                request = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if request.chunks.shape[1:] != first.chunks.shape[1:] or size + request.chunks.shape[0] > self.max_batch:
                self._held.append(request)  # another shape, or too many: the next pass
                continue
            batch.append(request)
            size += request.chunks.shape[0]
        return batch

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            sizes = [r.chunks.shape[0] for r in batch]
            try:
                out = self.backend.process(np.concatenate([r.chunks for r in batch]))
                parts = np.split(out, np.cumsum(sizes)[:-1])
                for request, part in zip(batch, parts):
                    request.result = part
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the pass
                for request in batch:
                    request.error = exc
            with self._lock:
                self._stats["passes"] += 1
                self._stats["segments"] += sum(sizes)
                self._stats["max_segments"] = max(self._stats["max_segments"], sum(sizes))
                self._stats["shared_passes"] += len({r.caller for r in batch}) > 1
                self._stats["callers"].update(r.caller for r in batch)
            for request in batch:
                request.done.set()


class _Handle:
    """What a worker's handle on a machine-wide server shares: the server's ``describe()``, no-op
    ``load`` / ``check`` (the server did both), ``stats``, a provenance that names the server, and
    calls that survive the server's death (:meth:`_call`). ``connect()`` returns a proxy on the
    machine's server, building one when there is none."""

    served = "one copy per machine (process {pid})"

    def __init__(self, connect: Callable[[], Any], caller: str):
        self._connect, self._caller = connect, caller
        self._attach(connect())

    def _attach(self, proxy: Any) -> None:
        self._proxy = proxy
        self._info = proxy.describe()
        self._provenance, self.server_pid = self._info["provenance"], self._info["pid"]

    def _call(self, name: str, *args) -> Any:
        """``proxy.name(*args)``; if the server is gone, reconnect (a new server if need be) and repeat."""
        for attempt in range(RECONNECTS + 1):
            try:
                return getattr(self._proxy, name)(*args)
            except SERVER_GONE as exc:
                if attempt == RECONNECTS:
                    raise
                log.warning("shared model server %d gone (%s: %s); reconnecting", self.server_pid,
                            type(exc).__name__, exc)
                self._attach(self._connect())
        raise AssertionError("unreachable")

    def load(self) -> None:
        """Loaded by the server."""

    def check(self) -> None:
        """Checked by the server when it loaded."""

    def stats(self) -> Dict[str, Any]:
        return self._call("stats")

    def provenance(self) -> Provenance:
        p = dict(self._provenance)
        p["note"] = "; ".join(filter(None, [p.get("note", ""), self.served.format(pid=self.server_pid)]))
        return Provenance(**p)


class SharedSeparator(_Handle):
    """A worker's handle on the machine's :class:`BatchingServer`: a separator backend whose
    ``process`` runs in the server process, batched with other songs' segments."""

    served = "one copy per machine (process {pid}), batched across songs"

    def __init__(self, connect: Callable[[], Any], caller: str):
        super().__init__(connect, caller)
        for name, value in self._info["attrs"].items():
            setattr(self, name, value)

    def process(self, chunks: np.ndarray) -> np.ndarray:
        return self._call("process", chunks, self._caller)


class AsrServer:
    """Hosts one ASR backend (a lyrics backend "module:Class" built with ``params``) for every worker
    process on the machine. Its calls (``language_probs``, ``transcribe``) run one at a time: an ASR
    decodes a song window by window, each conditioned on the last, so songs are not merged into one
    batch as the separator's segments are; what is saved is the model copy per worker process."""

    def __init__(self, target: str, params: Mapping[str, Any]):
        module, _, cls = target.partition(":")
        self.backend = getattr(importlib.import_module(module), cls)(dict(params))
        self.backend.load()
        self._lock = threading.Lock()
        self._stats = {"calls": 0, "busy_s": 0.0, "callers": set()}

    def describe(self) -> Dict[str, Any]:
        """What a worker needs besides the calls: the guard thresholds, provenance, the serving pid."""
        return {"does_transcribe": self.backend.does_transcribe, "thresholds": self.backend.thresholds,
                "does_align": bool(getattr(self.backend, "does_align", False)),
                "provenance": self.backend.provenance().to_dict(), "pid": os.getpid()}

    def _call(self, name: str, caller: str, *args) -> Any:
        with self._lock:
            start = time.monotonic()
            try:
                return getattr(self.backend, name)(*args)
            finally:
                self._stats["calls"] += 1
                self._stats["busy_s"] += time.monotonic() - start
                self._stats["callers"].add(caller)

    def language_probs(self, clip: np.ndarray, caller: str = "") -> Dict[str, float]:
        return self._call("language_probs", caller, clip)

    def transcribe(self, audio: np.ndarray, clips, language: Optional[str], caller: str = "") -> List[dict]:
        return self._call("transcribe", caller, audio, list(clips), language)

    def align(self, audio: np.ndarray, windows, language: Optional[str], caller: str = "") -> List[List[dict]]:
        return self._call("align", caller, audio, list(windows), language)

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return {"calls": self._stats["calls"], "busy_s": round(self._stats["busy_s"], 3),
                    "callers": len(self._stats["callers"]), "pid": os.getpid()}


class SharedAsr(_Handle):
    """A worker's handle on the machine's :class:`AsrServer`: an ASR backend whose calls run there."""

    def __init__(self, connect: Callable[[], Any], caller: str):
        super().__init__(connect, caller)
        self.does_transcribe, self.thresholds = self._info["does_transcribe"], self._info["thresholds"]
        self.does_align = bool(self._info.get("does_align", False))

    def language_probs(self, clip: np.ndarray) -> Dict[str, float]:
        return self._call("language_probs", clip, self._caller)

    def transcribe(self, audio: np.ndarray, clips, language: Optional[str]) -> List[dict]:
        return self._call("transcribe", audio, list(clips), language, self._caller)

    def align(self, audio: np.ndarray, windows, language: Optional[str]) -> List[List[dict]]:
        return self._call("align", audio, list(windows), language, self._caller)


def server_tag(stage: str, target: str, params: Mapping[str, Any]) -> str:
    """A file-name-safe tag naming one backend configuration (one server per tag per machine)."""
    digest = hashlib.sha256(repr((stage, target, sorted(params.items()))).encode()).hexdigest()[:16]
    return f"songshard-{stage}-{digest}"


def _machine_wide(stage: str, target: str, params: Mapping[str, Any], build: Callable[[], Any],
                  path: Optional[str]) -> Callable[[], Any]:
    """A function returning a proxy on the machine-wide object ``build()`` for this backend configuration:
    the first caller on the machine starts a process that builds and serves it, the others connect.
    ``build`` is pickled into that process (a module-level class bound with ``functools.partial``)."""
    import tempfile

    from apache_beam.utils.multi_process_shared import MultiProcessShared

    def connect() -> Any:
        # A new MultiProcessShared each time: its address file names the live server, or a dead one
        # that it then replaces.
        return MultiProcessShared(build, tag=server_tag(stage, target, params), path=path or tempfile.gettempdir(),
                                  always_proxy=True, spawn_process=True).acquire()
    return connect


def acquire_shared(stage: str, target: str, params: Mapping[str, Any], max_batch: int, max_wait_s: float,
                   caller: str, path: Optional[str] = None) -> SharedSeparator:
    """This worker's handle on the machine-wide separator server for ``target`` (started by the first caller)."""
    params = dict(params)
    build = functools.partial(BatchingServer, target, params, max_batch, max_wait_s)
    return SharedSeparator(_machine_wide(stage, target, params, build, path), caller)


def acquire_shared_asr(stage: str, target: str, params: Mapping[str, Any], caller: str,
                       path: Optional[str] = None) -> SharedAsr:
    """This worker's handle on the machine-wide ASR server for ``target`` (started by the first caller)."""
    params = dict(params)
    build = functools.partial(AsrServer, target, params)
    return SharedAsr(_machine_wide(stage, target, params, build, path), caller)
