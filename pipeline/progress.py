"""Progress while a run goes: songs done / total, audio hours, songs per hour and an ETA.

Workers count finished songs (ok, failed, filtered) and their audio seconds per bundle and write
one small stats file per bundle, or one every ``flush_s`` seconds while a long bundle goes on
(:class:`CountDone`): O(1) objects per bundle and interval, not per song and stage. A thread in the
driver sums the files every few seconds and prints a line. The files go through FileSystems, so
this works the same on DirectRunner's worker processes and on Dataflow.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Optional, TextIO

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.core import workdir

KINDS = ("ok", "failed", "dropped")


class CountDone(beam.DoFn):
    """Counts the elements (Songs, DeadLetters, Dropped records) of kind ``kind``; passes them on.

    Writes ``{kind, songs, audio_s}`` to a new file in ``progress_dir`` at the end of each bundle
    and every ``flush_s`` seconds within one.
    """

    def __init__(self, progress_dir: str, kind: str, flush_s: float = 10.0):
        self.progress_dir, self.kind, self.flush_s = progress_dir, kind, flush_s

    def start_bundle(self):
        self.songs, self.audio_s, self.last = 0, 0.0, time.time()

    def _flush(self):
        if self.songs:
            name = f"{self.kind}-{uuid.uuid4().hex}.json"
            workdir.write_bytes(workdir.join(self.progress_dir, name),
                                json.dumps({"kind": self.kind, "songs": self.songs, "audio_s": self.audio_s}).encode())
        self.songs, self.audio_s, self.last = 0, 0.0, time.time()

    def process(self, element):
        self.songs += 1
        self.audio_s += float(getattr(element, "duration", 0.0) or 0.0)
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


def format_progress(counts: dict, total: int, elapsed: float) -> str:
    """One line: songs done / total (ok, failed, filtered), audio hours, songs per hour, ETA."""
    done = counts["ok"] + counts["failed"] + counts["dropped"]
    rate = done / elapsed * 3600 if elapsed > 0 else 0.0
    eta = (total - done) / (rate / 3600) if rate > 0 and total > done else 0.0
    return (f"[songshard] {done}/{total} songs done ({counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['dropped']} filtered) | {counts.get('audio_s', 0.0) / 3600:.2f} h of audio | "
            f"{elapsed:.0f}s, {rate:.0f} songs/h" + (f", ETA {eta / 60:.0f} min" if eta else ""))


class ProgressReporter:
    """Prints a progress line every ``interval`` seconds until stopped (``with`` block)."""

    def __init__(self, progress_dir: str, total: int, interval: float = 5.0, stream: Optional[TextIO] = None):
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
        line = format_progress(count_done(self.progress_dir), self.total, time.time() - self.start_time)
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
