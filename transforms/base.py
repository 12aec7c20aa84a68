"""What every stage shares: backends chosen by name, model loading, dead letters, metrics.

A stage is a :class:`StageTransform` around a :class:`StageFn`. The DoFn loads its
backend once per worker process in ``setup()`` (through Beam's ``Shared``), turns
every exception into a :class:`~schemas.records.DeadLetter` on the ``failed``
output, and counts successes, failures, latency and audio seconds under the
stage's metric namespace.

Backends register under ``(stage, name)`` as ``"module:Class"`` strings, so that
naming a backend never imports torch, demucs or whisper while the graph is built.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import time
from typing import Any, Callable, ClassVar, Dict, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from schemas.records import DeadLetter, Provenance, Song

FAILED = "failed"
log = logging.getLogger("songshard")

_REGISTRY: Dict[Tuple[str, str], str] = {}


class BackendUnavailable(RuntimeError):
    """A backend that was asked for cannot run here (missing weights or package)."""


def register_backend(stage: str, name: str, target: str) -> None:
    """Declare that backend ``name`` of ``stage`` is the class at ``target`` ("module:Class")."""
    _REGISTRY[(stage, name)] = target


def backend_names(stage: str) -> list:
    return sorted(name for (s, name) in _REGISTRY if s == stage)


def backend_class(stage: str, name: str) -> type:
    """Import and return the backend class; BackendUnavailable names the choices if unknown."""
    target = _REGISTRY.get((stage, name))
    if target is None:
        raise BackendUnavailable(
            f"unknown {stage} backend {name!r}; choose one of {backend_names(stage)}")
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BackendUnavailable(
            f"{stage} backend {name!r} needs a package that is not installed: {exc}") from exc


class Backend:
    """A model behind a stage: configured from options, checked in the driver, loaded on workers.

    Subclasses set ``stage`` and ``name`` and implement ``load()`` plus the stage's
    call (``separate``, ``analyze``, ``transcribe``, ``tag``, ``encode`` ...).
    ``check()`` runs in the driver before any song is read and raises
    BackendUnavailable with a message that says where it looked and how to fix it.
    """

    stage: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __init__(self, options: Dict[str, Any]):
        self.options = dict(options)

    def check(self) -> None:
        """Fail fast (in the driver) when this backend cannot run. Default: nothing to check."""

    def load(self) -> None:
        """Load weights / build models. Called once per worker process."""

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name)


def make_backend(stage: str, name: str, options: Dict[str, Any]) -> Backend:
    return backend_class(stage, name)(options)


class _Holder:
    """Weak-referenceable box for Shared (plain objects may not be)."""

    def __init__(self, value: Any):
        self.value = value


class StageFn(beam.DoFn):
    """Base DoFn of a stage: one backend per process, failures as data, metrics.

    Subclasses implement ``apply(song) -> Song`` (or an iterable of Songs) and may
    use ``self.backend``. Whatever ``apply`` raises becomes a DeadLetter on the
    ``failed`` output; the song is never silently dropped.
    """

    stage: ClassVar[str] = ""

    def __init__(self, backend_name: str = "", backend_options: Dict[str, Any] | None = None,
                 shared_handle: shared.Shared | None = None, **params: Any):
        self.backend_name = backend_name
        self.backend_options = dict(backend_options or {})
        self.params = params
        self._shared = shared_handle or shared.Shared()
        self.backend: Backend | None = None

    def _load_backend(self) -> _Holder:
        backend = make_backend(self.stage, self.backend_name, self.backend_options)
        start = time.time()
        backend.load()
        log.info("%s: loaded backend %s in %.1fs", self.stage, self.backend_name, time.time() - start)
        return _Holder(backend)

    def setup(self) -> None:
        self.ok = Metrics.counter(self.stage, "succeeded")
        self.failed = Metrics.counter(self.stage, "failed")
        self.latency = Metrics.distribution(self.stage, "latency_ms")
        self.audio_ms = Metrics.distribution(self.stage, "audio_ms")
        if self.backend_name:
            tag = f"{self.stage}:{self.backend_name}:{sorted(self.backend_options.items())!r}"
            self.backend = self._shared.acquire(self._load_backend, tag=tag).value

    def apply(self, song: Song) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _mark(self, song: Any, outcome: str) -> None:
        """Drop a progress marker for this stage (see pipeline.progress); best effort."""
        progress_dir = self.params.get("progress_dir")
        if progress_dir:
            from transforms.workdir import write_marker

            write_marker(progress_dir, f"stage_{self.stage}_{outcome}", getattr(song, "uri", str(song)))

    def process(self, song: Song):
        start = time.time()
        try:
            result = self.apply(song)
            outputs = [result] if isinstance(result, Song) or result is None else list(result)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter
            self.failed.inc()
            log.warning("%s failed on %s: %s: %s", self.stage, getattr(song, "uri", song),
                        type(exc).__name__, exc)
            self._mark(song, "failed")
            yield beam.pvalue.TaggedOutput(FAILED, DeadLetter.from_exception(song, self.stage, exc))
            return
        elapsed = time.time() - start
        self._mark(song, "ok")
        self.ok.inc()
        self.latency.update(int(elapsed * 1000))
        for out in outputs:
            if out is None:
                continue
            if isinstance(out, Song):
                out.timings[self.stage] = round(out.timings.get(self.stage, 0.0) + elapsed, 3)
                self.audio_ms.update(int(out.duration * 1000))
            yield out


class StageTransform(beam.PTransform):
    """Applies a StageFn; returns ``(songs, failures)``.

    ``backend_option`` names the option that picks the backend (e.g. "separator");
    every option that starts with that name plus "_" is handed to the backend.
    """

    fn_class: ClassVar[type] = StageFn
    backend_option: ClassVar[str] = ""

    def __init__(self, options: Any = None, **params: Any):
        super().__init__()
        self.options = options
        self.params = params
        self.backend_name, self.backend_options = backend_choice(options, self.backend_option)
        if options is not None:
            values = option_values(options)
            self.params.setdefault("work_dir", values.get("work_dir"))
            self.params.setdefault("progress_dir", values.get("progress_dir"))

    def expand(self, pcoll):
        fn = self.fn_class(self.backend_name, self.backend_options, shared.Shared(), **self.params)
        results = pcoll | beam.ParDo(fn).with_outputs(FAILED, main="songs")
        return results.songs, results[FAILED]


def backend_choice(options: Any, prefix: str) -> Tuple[str, Dict[str, Any]]:
    """(backend name, {option: value} for options named ``prefix_*``) from PipelineOptions."""
    if not prefix or options is None:
        return "", {}
    values = option_values(options)
    name = values.get(prefix) or ""
    sub = {k: v for k, v in values.items() if k.startswith(prefix + "_")}
    return name, sub


def file_sha256(path: str, block: int = 1 << 22) -> str:
    """sha256 hex digest of a local file (weights checksums in provenance)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def option_values(options: Any) -> Dict[str, Any]:
    """{flag: value} from PipelineOptions (unknown flags kept) or a plain dict (tests)."""
    if options is None:
        return {}
    if hasattr(options, "get_all_options"):
        return options.get_all_options(retain_unknown_options=True)
    return dict(options)


def check_backend(stage: str, name: str, options: Dict[str, Any]) -> Provenance:
    """Driver-side start-up check; raises BackendUnavailable with a clear message."""
    backend = make_backend(stage, name, options)
    backend.check()
    return backend.provenance()


Constructor = Callable[[], Any]
