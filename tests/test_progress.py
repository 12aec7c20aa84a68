"""Progress from small per-bundle stats files, and the progress line."""

import io
import os

from pipeline.progress import CountDone, ProgressReporter, count_done, format_progress
from schemas.records import DeadLetter, Song


def _run(fn, elements):
    fn.start_bundle()
    passed = [out for e in elements for out in fn.process(e)]
    fn.finish_bundle()
    return passed


def test_counts_come_from_one_file_per_bundle_not_per_song(tmp_path):
    d = str(tmp_path / "progress")
    songs = [Song(uri=f"s{i}", duration=60.0) for i in range(50)]
    assert _run(CountDone(d, "ok"), songs) == songs  # elements pass through
    _run(CountDone(d, "failed"), [DeadLetter(uri="x", stage="decode", error_type="E", message="m")])
    _run(CountDone(d, "dropped"), [])  # an empty bundle writes nothing
    assert len(os.listdir(d)) == 2
    counts = count_done(d)
    assert (counts["ok"], counts["failed"], counts["dropped"]) == (50, 1, 0) and counts["audio_s"] == 3000.0
    line = format_progress(counts, 102, 60.0)
    assert line.startswith("[songshard] 51/102 songs done (50 ok, 1 failed, 0 filtered) | 0.83 h of audio")
    assert "3060 songs/h, ETA 1 min" in line


def test_a_long_bundle_flushes_on_an_interval(tmp_path):
    d = str(tmp_path / "p")
    fn = CountDone(d, "ok", flush_s=0.0)  # every element past the interval: a file each
    _run(fn, [Song(uri="a", duration=1.0), Song(uri="b", duration=2.0)])
    assert len(os.listdir(d)) == 2 and count_done(d)["ok"] == 2


def test_reporter_prints_a_final_line(tmp_path):
    d = str(tmp_path / "p")
    out = io.StringIO()
    with ProgressReporter(d, 2, interval=0.05, stream=out):
        _run(CountDone(d, "ok"), [Song(uri="x", duration=3.0)])
    assert "1/2 songs done" in out.getvalue().splitlines()[-1]
