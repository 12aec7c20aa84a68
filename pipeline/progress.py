"""Progress while a run goes: songs done / total and failures so far.

Workers drop one empty marker file per finished song into the run's progress
folder (``ok-*``, ``failed-*``, ``dropped-*``) and one per song and stage
(``stage_separate_ok-*``), so progress shows even while a barrier (the codec's
codebook fit, a shuffle) holds songs back; a thread in the driver counts them
every few seconds and prints a line. Markers work the same on
DirectRunner's worker processes and on Dataflow (through FileSystems).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.core.workdir import write_marker


class MarkDone(beam.DoFn):
    """Writes a marker for each element (a Song, DeadLetter or Dropped) of kind ``kind``."""

    def __init__(self, progress_dir: str, kind: str):
        self.progress_dir = progress_dir
        self.kind = kind

    def process(self, element):
        write_marker(self.progress_dir, self.kind, getattr(element, "uri", str(element)))
        yield element


def count_markers(progress_dir: str) -> dict:
    """{"ok", "failed", "dropped": songs finished so; "stages": {stage: songs through it}}."""
    counts: dict = {"ok": 0, "failed": 0, "dropped": 0, "stages": {}}
    try:
        matches = FileSystems.match([FileSystems.join(progress_dir, "*")])[0].metadata_list
    except Exception:  # noqa: BLE001 - the folder appears with the first marker
        return counts
    for m in matches:
        kind = m.path.rsplit("/", 1)[-1].rsplit("-", 1)[0]
        if kind in ("ok", "failed", "dropped"):
            counts[kind] += 1
        elif kind.startswith("stage_"):
            stage = kind[len("stage_"):].rsplit("_", 1)[0]
            counts["stages"][stage] = counts["stages"].get(stage, 0) + 1
    return counts


def format_progress(counts: dict, total: int, elapsed: float, stage_order=()) -> str:
    done = counts["ok"] + counts["failed"] + counts["dropped"]
    rate = done / elapsed * 3600 if elapsed > 0 else 0.0
    stages = counts.get("stages", {})
    order = [s for s in stage_order if s in stages] + sorted(s for s in stages if s not in stage_order)
    through = " ".join(f"{s} {stages[s]}" for s in order)
    return (f"[songshard] {done}/{total} songs done ({counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['dropped']} filtered)" + (f" | through: {through}" if through else "")
            + f" | {elapsed:.0f}s, {rate:.0f} songs/h")


class ProgressReporter:
    """Prints a progress line every ``interval`` seconds until stopped (``with`` block)."""

    def __init__(self, progress_dir: str, total: int, interval: float = 5.0, stream: Optional[TextIO] = None,
                 stage_order=()):
        self.stage_order = tuple(stage_order)
        self.progress_dir = progress_dir
        self.total = total
        self.interval = interval
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.start_time = time.time()
        self._last = ""

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.report()

    def report(self) -> str:
        line = format_progress(count_markers(self.progress_dir), self.total, time.time() - self.start_time,
                               self.stage_order)
        if line != self._last:
            print(line, file=self.stream, flush=True)
            self._last = line
        return line

    def __enter__(self):
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="songshard-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=1)
        if self.interval > 0:
            self.report()
        return False
