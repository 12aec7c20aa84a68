"""A local multi-process run gives each worker process its share of the cores, not all of them."""

from __future__ import annotations

import os
import subprocess
import sys

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import thread_budget
from pipeline.run import worker_environment
from transforms.core.config import WORKER_THREADS_ENV, worker_threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _options(*argv):
    return PipelineOptions(list(argv))


def test_the_budget_is_cores_over_workers_for_multi_process_runs_only():
    multi = ("--direct_running_mode", "multi_processing", "--direct_num_workers")
    assert thread_budget(_options(*multi, "2"), cores=2) == 1
    assert thread_budget(_options(*multi, "2"), cores=8) == 4
    assert thread_budget(_options(*multi, "4"), cores=2) == 1  # never below one thread
    assert thread_budget(_options("--direct_running_mode", "in_memory"), cores=8) == 0
    # Dataflow runs one SDK process per vCPU: one thread each, unless one process has the machine
    assert thread_budget(_options("--runner", "DataflowRunner"), cores=8) == 1
    assert thread_budget(_options("--runner", "DataflowRunner", "--experiments", "no_use_multiple_sdk_containers"),
                         cores=8) == 0
    assert thread_budget(_options("--runner", "DataflowRunner", "--worker_threads", "3"), cores=8) == 3
    assert thread_budget(_options(*multi, "2", "--worker_threads", "2"), cores=2) == 2  # the user's choice wins


def test_cores_are_the_ones_this_process_may_use(monkeypatch):
    from pipeline import config

    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0})
    assert config.available_cores() == 1
    assert config.local_defaults(["--input", "x"])[-2:] == ["--direct_num_workers", "1"]
    assert thread_budget(_options("--direct_running_mode", "multi_processing", "--direct_num_workers", "1")) == 1


def test_workers_inherit_the_budget_and_the_driver_gets_its_environment_back(monkeypatch):
    monkeypatch.delenv(WORKER_THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the user's own value wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    with worker_environment(1):
        assert worker_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        assert os.environ["MKL_NUM_THREADS"] == "3"
        assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(256 << 20)  # large arrays stay in the heap
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "0"
    assert WORKER_THREADS_ENV not in os.environ and "OMP_NUM_THREADS" not in os.environ
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ and os.environ["MALLOC_TRIM_THRESHOLD_"] == "0"
    assert os.environ["MKL_NUM_THREADS"] == "3" and worker_threads() == 0
    with worker_environment(0):
        assert WORKER_THREADS_ENV not in os.environ


def test_a_stage_worker_caps_torch_threads_at_its_budget():
    code = ("import torch; before = torch.get_num_threads()\n"
            "from transforms.core.config import RunContext, StageConfig\n"
            "from transforms.core.stage import StageFn\n"
            "class Probe(StageFn):\n    stage = 'probe'\n"
            "Probe(StageConfig('probe'), RunContext()).setup()\n"
            "print(before, torch.get_num_threads())\n")
    env = {**os.environ, WORKER_THREADS_ENV: "1"}
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = map(int, out.stdout.split()[-2:])
    assert after == 1 and (before > 1 or os.cpu_count() == 1)  # capped, not the default


def test_a_remote_worker_takes_its_budget_from_the_run_not_the_launchers_environment():
    # A Dataflow worker inherits nothing from the launcher: the budget travels in the RunContext.
    code = ("import os, torch; before = torch.get_num_threads()\n"
            "from transforms.core.config import RunContext, StageConfig, worker_threads\n"
            "from transforms.core.stage import StageFn\n"
            "class Probe(StageFn):\n    stage = 'probe'\n"
            "Probe(StageConfig('probe'), RunContext(worker_threads=1)).setup()\n"
            "print(before, torch.get_num_threads(), worker_threads(), os.environ['OMP_NUM_THREADS'])\n")
    env = {k: v for k, v in os.environ.items() if k not in (WORKER_THREADS_ENV, "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, budget, omp = map(int, out.stdout.split()[-4:])
    assert (after, budget, omp) == (1, 1, 1) and (before > 1 or os.cpu_count() == 1)
