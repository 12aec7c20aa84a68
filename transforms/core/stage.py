"""What every stage shares: its backend interface, its DoFn (failures as data, metrics) and its PTransform.

A stage is one package in ``transforms/`` whose public :class:`StageTransform`
subclass names the stage (``stage``), its backends (``backends``: a plain mapping
``name -> "module:Class"``, so that naming a backend never imports torch while the
graph is built), its default backend and its options. The driver resolves the
options once into a frozen :class:`~transforms.core.config.StageConfig` and hands
it, with the :class:`~transforms.core.config.RunContext`, to the transform.

The DoFn loads its backend once per worker process in ``setup()`` (through Beam's
``Shared``), turns every exception into a :class:`~schemas.records.DeadLetter` on
the ``failed`` output, and counts successes, failures, latency and audio seconds
under the stage's metric namespace (the stage's name).
"""

from __future__ import annotations

import functools
import os
import importlib
import logging
import time
from typing import Any, ClassVar, Dict, Mapping, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from schemas.records import DeadLetter, Provenance, Song
from transforms.core.config import WORKER_THREADS_ENV, RunContext, StageConfig, worker_threads
from transforms.core.memory import peak_rss_mb, reset_peak_rss
from transforms.core.numba_cache import warm_librosa

FAILED = "failed"
log = logging.getLogger("songshard")


class BackendUnavailable(RuntimeError):
    """A backend that was asked for cannot run here (missing weights or package)."""


class SongTimeLimit(RuntimeError):
    """A song took longer than the run's --song_time_limit over the stages it went through."""


def check_time_limit(song: Song, limit: float) -> None:
    """Raise SongTimeLimit when ``song`` has already used more than ``limit`` s of compute (0: no limit).

    Checked before each stage, so a song stops at most one stage past its limit and becomes a
    dead letter naming the limit; the run goes on.
    """
    used = sum(getattr(song, "timings", {}).values()) if isinstance(song, Song) else 0.0
    if limit and used > limit:
        raise SongTimeLimit(f"song took {used:.1f} s of compute over {sorted(song.timings)}, "
                            f"past --song_time_limit {limit:g} s")


class Backend:
    """A model behind a stage: configured from its parameters, checked in the driver, loaded on workers.

    ``params`` are the stage's backend parameters without the stage prefix
    (``--separate_weights`` arrives as ``params["weights"]``). Subclasses set
    ``stage`` and ``name`` and implement ``load()`` plus the stage's call
    (``process``, ``analyze``, ``transcribe``, ``tag``, ``encode`` ...).
    ``check()`` runs in the driver before any song is read and raises
    BackendUnavailable with a message that says where it looked and how to fix it.
    """

    stage: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)

    def check(self) -> None:
        """Fail fast (in the driver) when this backend cannot run. Default: nothing to check."""

    def load(self) -> None:
        """Load weights / build models. Called once per worker process."""

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name)


def backend_class(stage: str, backends: Mapping[str, str], name: str) -> type:
    """Import and return backend ``name`` of ``stage``; BackendUnavailable names the choices if unknown."""
    target = backends.get(name)
    if target is None:
        raise BackendUnavailable(f"unknown {stage} backend {name!r}; choose one of {sorted(backends)}")
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BackendUnavailable(f"{stage} backend {name!r} needs a package that is not installed: {exc}") from exc


class _Holder:
    """Weak-referenceable box for Shared (plain objects may not be)."""

    def __init__(self, value: Any):
        self.value = value


@functools.lru_cache(maxsize=1)
def _use_thread_budget(run_threads: int = 0) -> int:
    """Cap torch's intra-op threads at this worker's share of the cores (once per process).

    The share comes from the worker's environment (a local run's driver sets it for the processes it
    starts) or else from the run (``RunContext.worker_threads``, resolved in the driver: on Dataflow,
    whose workers inherit nothing from the launcher, one thread per SDK process). The latter is put
    into the environment too, so that backends asking ``worker_threads()`` get the same answer.
    """
    threads = worker_threads()
    if not threads and run_threads:
        threads = int(run_threads)
        for name in (WORKER_THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))
    if threads:
        import torch

        torch.set_num_threads(threads)
    return threads


class StageFn(beam.DoFn):
    """Base DoFn of a stage: one backend per process, failures as data, metrics.

    Subclasses implement ``apply(song) -> Song`` (or an iterable of Songs, or
    None to drop nothing and emit nothing) and may use ``self.backend``,
    ``self.config`` (the stage's StageConfig) and ``self.context`` (RunContext).
    Whatever ``apply`` raises becomes a DeadLetter on the ``failed`` output.
    """

    stage: ClassVar[str] = ""

    def __init__(self, config: StageConfig, context: RunContext, backend_target: str = "",
                 shared_handle: shared.Shared | None = None):
        self.config = config
        self.context = context
        self.backend_target = backend_target
        self._shared = shared_handle or shared.Shared()
        self.backend: Backend | None = None

    def _load_backend(self) -> _Holder:
        module, _, cls = self.backend_target.partition(":")
        backend = getattr(importlib.import_module(module), cls)(self.config.backend_params)
        start = time.time()
        backend.load()
        log.info("%s: loaded backend %s in %.1fs", self.stage, self.config.backend, time.time() - start)
        return _Holder(backend)

    def setup(self) -> None:
        _use_thread_budget(self.context.worker_threads)
        warm_librosa()  # once per process, under a machine-wide lock: see numba_cache
        self.ok = Metrics.counter(self.stage, "succeeded")
        self.failed = Metrics.counter(self.stage, "failed")
        self.latency = Metrics.distribution(self.stage, "latency_ms")
        self.audio_ms = Metrics.distribution(self.stage, "audio_ms")
        self.peak_rss = Metrics.distribution(self.stage, "peak_rss_mb")
        if self.backend_target:
            self.backend = self._acquire_backend()

    def _acquire_backend(self) -> Backend:
        """The process's one copy of the backend (built on first use, then shared by the stage's DoFns)."""
        tag = f"{self.stage}:{self.config.backend}:{self.config.backend_items!r}"
        return self._shared.acquire(self._load_backend, tag=tag).value

    def apply(self, song: Song) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, song: Song):
        start = time.time()
        measured = reset_peak_rss()
        try:
            check_time_limit(song, self.context.song_time_limit)
            result = self.apply(song)
            outputs = [result] if isinstance(result, Song) or result is None else list(result)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter
            self.failed.inc()
            log.warning("%s failed on %s: %s: %s", self.stage, getattr(song, "uri", song), type(exc).__name__, exc)
            yield beam.pvalue.TaggedOutput(FAILED, DeadLetter.from_exception(song, self.stage, exc))
            return
        elapsed = time.time() - start
        self.ok.inc()
        self.latency.update(int(elapsed * 1000))
        peak = peak_rss_mb() if measured else None
        if peak is not None:
            self.peak_rss.update(int(peak))
        for out in outputs:
            if isinstance(out, Song):
                out.timings[self.stage] = round(out.timings.get(self.stage, 0.0) + elapsed, 3)
                self.audio_ms.update(int(out.duration * 1000))
                yield out


class Configurable:
    """A stage's options: its flags (each starts with the stage's name) and their resolution.

    ``add_options`` declares the flags on an argparse group; ``configure`` turns
    the parsed ``{flag: value}`` into a frozen StageConfig and validates it, so
    that a bad value stops the run in the driver, before any song is read.
    Without backends every ``--STAGE_*`` flag is a stage parameter.
    """

    stage: ClassVar[str] = ""
    backends: ClassVar[Dict[str, str]] = {}
    default_backend: ClassVar[str] = ""
    stage_params: ClassVar[Tuple[str, ...]] = ()

    @classmethod
    def add_options(cls, group) -> None:
        """Declare the stage's flags on an argparse group. Default: the backend choice only."""
        if cls.backends:
            group.add_argument(f"--{cls.stage}", default=cls.default_backend,
                               help=f"{cls.stage} backend: one of {', '.join(sorted(cls.backends))}")

    @classmethod
    def configure(cls, values: Mapping[str, Any]) -> StageConfig:
        """Resolve the stage's flags (``{flag: value}``) into a frozen StageConfig; validates them.

        ``--STAGE`` names the backend; the flags in ``stage_params`` (all of them
        when the stage has no backends) are stage parameters and every other
        ``--STAGE_*`` flag is a backend parameter. Raises ValueError for a bad
        value and BackendUnavailable for an unknown backend.
        """
        backend = str(values.get(cls.stage) or cls.default_backend or "") if cls.backends else ""
        if backend and backend not in cls.backends:
            raise BackendUnavailable(f"unknown {cls.stage} backend {backend!r}; choose one of {sorted(cls.backends)}")
        prefix = cls.stage + "_"
        stage_p, backend_p = {}, {}
        for key, value in values.items():
            if not key.startswith(prefix):
                continue
            short = key[len(prefix):]
            (stage_p if short in cls.stage_params or not cls.backends else backend_p)[short] = value
        return StageConfig.make(cls.stage, backend, backend_p, stage_p)


class StageTransform(Configurable, beam.PTransform):
    """A model stage: songs in, ``(songs, dead letters)`` out, through its StageFn and backend."""

    fn_class: ClassVar[type] = StageFn

    def __init__(self, config: StageConfig, context: RunContext):
        super().__init__()
        self.config = config
        self.context = context

    @classmethod
    def make_backend(cls, name: str, params: Mapping[str, Any] | None = None) -> Backend:
        """Backend ``name`` of this stage built from its parameters (keys without the stage prefix)."""
        return backend_class(cls.stage, cls.backends, name)(dict(params or {}))

    @classmethod
    def check(cls, config: StageConfig) -> Provenance | None:
        """Driver-side start-up check of the configured backend; its provenance (None: no backend)."""
        if not config.backend:
            return None
        backend = backend_class(cls.stage, cls.backends, config.backend)(config.backend_params)
        backend.check()
        return backend.provenance()

    def make_fn(self) -> StageFn:
        target = self.backends.get(self.config.backend, "") if self.config.backend else ""
        return self.fn_class(self.config, self.context, target, shared.Shared())

    def expand(self, pcoll):
        results = pcoll | beam.ParDo(self.make_fn()).with_outputs(FAILED, main="songs")
        return results.songs, results[FAILED]
