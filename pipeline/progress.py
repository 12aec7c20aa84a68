"""Progress while a run goes: songs done / total, audio hours, songs per hour and an ETA.

Workers count finished songs (ok, failed, filtered) and their audio seconds (:class:`CountDone`)
in two ways, and the driver reads whichever its runner serves cheaply:

- Beam counters in the ``progress`` namespace. A runner that reports metrics while the job runs
  (Dataflow) answers one request per poll whatever the size of the job (:func:`metric_counts`).
- Small stats files, one per bundle or every ``flush_s`` seconds of a long bundle, for the local
  runner, whose metrics exist only once the run is over (:func:`count_done`). Written only where
  a progress folder is given, so a Dataflow job leaves no such objects in a bucket.

A thread in the driver polls every few seconds and prints a line.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Callable, Optional, TextIO

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from transforms.core import workdir

KINDS = ("ok", "failed", "dropped")
NAMESPACE = "progress"  # counters: one per kind (songs) and audio_ms


class CountDone(beam.DoFn):
    """Counts the elements (Songs, DeadLetters, Dropped records) of kind ``kind``; passes them on.

    Counts them in the ``progress`` counters and, where ``progress_dir`` is given, writes
    ``{kind, songs, audio_s}`` to a new file there at the end of each bundle and every ``flush_s``
    seconds within one.
    """

    def __init__(self, progress_dir: str, kind: str, flush_s: float = 10.0):
        self.progress_dir, self.kind, self.flush_s = progress_dir, kind, flush_s

    def setup(self):
        self.songs_counter = Metrics.counter(NAMESPACE, self.kind)
        self.audio_counter = Metrics.counter(NAMESPACE, "audio_ms")

    def start_bundle(self):
        self.songs, self.audio_s, self.last = 0, 0.0, time.time()

    def _flush(self):
        if self.songs and self.progress_dir:
            name = f"{self.kind}-{uuid.uuid4().hex}.json"
            workdir.write_bytes(workdir.join(self.progress_dir, name),
                                json.dumps({"kind": self.kind, "songs": self.songs, "audio_s": self.audio_s}).encode())
        self.songs, self.audio_s, self.last = 0, 0.0, time.time()

    def process(self, element):
        seconds = float(getattr(element, "duration", 0.0) or 0.0)
        self.songs += 1
        self.audio_s += seconds
        self.songs_counter.inc()
        self.audio_counter.inc(int(round(seconds * 1000)))
        if time.time() - self.last >= self.flush_s:
            self._flush()
        yield element

    def finish_bundle(self):
        self._flush()


def count_done(progress_dir: str) -> dict:
    """{"ok", "failed", "dropped": songs finished so, "audio_s": seconds of audio done}."""
    counts = {k: 0 for k in KINDS}
    counts["audio_s"] = 0.0
    for uri in workdir.list_uris(FileSystems.join(progress_dir, "*.json")):
        try:
            record = json.loads(workdir.read_bytes(uri))
        except ValueError:  # a file being written right now: counted next time
            continue
        counts[record["kind"]] += int(record["songs"])
        counts["audio_s"] += float(record.get("audio_s", 0.0))
    return counts


def metric_counts(result) -> dict:
    """The same counts as :func:`count_done` from a running job's ``progress`` counters: one query
    (one request to Dataflow's job API) per call. All zero before the job reports any."""
    counts = {k: 0 for k in KINDS}
    counts["audio_s"] = 0.0
    if result is None:
        return counts
    for c in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE)).get("counters", []):
        value = c.committed or c.attempted or 0
        if c.key.metric.name in KINDS:
            counts[c.key.metric.name] += int(value)
        elif c.key.metric.name == "audio_ms":
            counts["audio_s"] += value / 1000.0
    return counts


def format_progress(counts: dict, total: int, elapsed: float) -> str:
    """One line: songs done / total (ok, failed, filtered), audio hours, songs per hour, ETA."""
    done = counts["ok"] + counts["failed"] + counts["dropped"]
    rate = done / elapsed * 3600 if elapsed > 0 else 0.0
    eta = (total - done) / (rate / 3600) if rate > 0 and total > done else 0.0
    return (f"[songshard] {done}/{total} songs done ({counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['dropped']} filtered) | {counts.get('audio_s', 0.0) / 3600:.2f} h of audio | "
            f"{elapsed:.0f}s, {rate:.0f} songs/h" + (f", ETA {eta / 60:.0f} min" if eta else ""))


class ProgressReporter:
    """Prints a progress line every ``interval`` seconds until stopped (``with`` block); ``counts()``
    returns what :func:`count_done` returns (a folder's files, or :func:`metric_counts` of a job)."""

    def __init__(self, counts: Callable[[], dict], total: int, interval: float = 5.0,
                 stream: Optional[TextIO] = None):
        self.counts = counts
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
        try:
            counts = self.counts()
        except Exception as exc:  # noqa: BLE001 - a failed poll (a store or API hiccup) skips one line
            print(f"[songshard] progress unavailable this time: {type(exc).__name__}: {exc}", file=self.stream)
            return self._last
        line = format_progress(counts, self.total, time.time() - self.start_time)
        if line.split(" | ")[0] != self._last.split(" | ")[0] or not self._last:
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
