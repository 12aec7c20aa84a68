"""Resolved configuration: frozen, typed, made once in the driver and handed to every stage.

* :class:`RunContext`: where this run reads and writes (run id, OUT, work dir).
  It changes from run to run and never enters the config hash.
* :class:`StageConfig`: one stage's backend name, backend parameters and stage
  parameters. Parameters are kept as sorted ``(key, value)`` tuples so that the
  object is immutable, hashable and pickles the same way on every worker.

Nothing here reads flags or the environment; ``pipeline.config`` builds these.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple

Items = Tuple[Tuple[str, Any], ...]


def _freeze(values: Mapping[str, Any]) -> Items:
    """Sorted (key, value) pairs; lists become tuples so that the result is hashable."""
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


@dataclass(frozen=True)
class StageConfig:
    """A stage's resolved configuration: ``backend`` ("" for stages without one) and its parameters."""

    stage: str
    backend: str = ""
    backend_items: Items = ()
    stage_items: Items = ()

    @classmethod
    def make(cls, stage: str, backend: str = "", backend_params: Mapping[str, Any] | None = None,
             stage_params: Mapping[str, Any] | None = None) -> "StageConfig":
        return cls(stage, backend, _freeze(backend_params or {}), _freeze(stage_params or {}))

    @property
    def backend_params(self) -> Dict[str, Any]:
        """A fresh dict of the backend's parameters (keys without the stage prefix)."""
        return dict(self.backend_items)

    @property
    def params(self) -> Dict[str, Any]:
        """A fresh dict of the stage's own parameters."""
        return dict(self.stage_items)

    def get(self, key: str, default: Any = None) -> Any:
        """A stage parameter; ``default`` when it is absent or None."""
        value = dict(self.stage_items).get(key)
        return default if value is None else value

    def to_dict(self) -> dict:
        return {"backend": self.backend, "backend_params": dict(self.backend_items), "params": dict(self.stage_items)}


@dataclass(frozen=True)
class RunContext:
    """Where a run lives: its id, OUT, and the work dir for this run's scratch data."""

    run_id: str = "test"
    output: str = ""
    work_dir: str = ""
    config_sha256: str = ""
    song_time_limit: float = 0.0  # seconds of compute a song may take over all stages (0: no limit)
    work_audio: str = "npz"  # how audio is stored in the work dir: transforms.core.workdir.AUDIO_FORMATS
    dedupe: str = "claims"  # "claims": first come in the work dir (transforms.core.claims); "group": by id
    worker_threads: int = 0  # CPU threads per worker process (0: the libraries' defaults); pipeline.config
    extra: Items = field(default=())

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)

    def sample_run(self) -> dict:
        """What every sample records about the run that made it."""
        return {"run_id": self.run_id, "config_sha256": self.config_sha256}


WORKER_THREADS_ENV = "SONGSHARD_WORKER_THREADS"


def worker_threads() -> int:
    """CPU threads each worker process may use (0: the libraries' defaults).

    A local multi-process run sets it to cores / workers (``pipeline.config.thread_budget``), so
    that two workers on two cores run one thread each instead of four threads fighting for two.
    """
    try:
        return max(0, int(os.environ.get(WORKER_THREADS_ENV, "0") or 0))
    except ValueError:
        return 0


def config_sha256(config: Mapping[str, Any]) -> str:
    """16 hex digits of sha256 over the canonical JSON of a config dict."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
