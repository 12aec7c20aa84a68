"""librosa's numba cache is filled by one process at a time (transforms/core/numba_cache.py).

Two worker processes compiling librosa's beat tracker at once can leave a cache
that segfaults every later run; the warm-up holds a machine-wide lock instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from transforms.core import numba_cache
from transforms.core.stage import StageFn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELD_S = 15.0


def test_the_warm_up_waits_for_the_lock_another_process_holds():
    numba_cache.warm_librosa()  # this process: cache filled, so the child only loads it (seconds)
    child_code = "from transforms.core.numba_cache import warm_librosa; print(round(warm_librosa(), 1))"
    with numba_cache.exclusive(numba_cache.lock_path()):
        child = subprocess.Popen([sys.executable, "-c", child_code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(HELD_S)
        assert child.poll() is None, "the warm-up ran while another process held the lock"
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    assert float(out.strip()) >= HELD_S - 1  # it waited for the release, then loaded the cache


def test_the_lock_sits_next_to_the_cache_it_guards(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    assert numba_cache.cache_dir() == str(tmp_path / "cache")
    assert numba_cache.lock_path() == str(tmp_path / "cache" / numba_cache.LOCK_NAME)
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert numba_cache.cache_dir().endswith(os.path.join("librosa", "__pycache__"))


def test_every_stage_worker_warms_the_cache_in_its_setup(monkeypatch):
    calls = []
    monkeypatch.setattr("transforms.core.stage.warm_librosa", lambda: calls.append(1))

    class Probe(StageFn):
        stage = "probe"

    from transforms.core.config import RunContext, StageConfig

    Probe(StageConfig(stage="probe"), RunContext(run_id="r")).setup()
    assert calls == [1]
