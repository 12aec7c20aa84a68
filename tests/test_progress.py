"""Progress from small per-bundle stats files or from a running job's counters, and the progress line."""

import io
import os

import functools

from apache_beam.metrics.execution import MetricKey
from apache_beam.metrics.metric import MetricResults
from apache_beam.metrics.metricbase import MetricName

from pipeline.progress import CountDone, ProgressReporter, count_done, format_progress, metric_counts
from schemas.records import DeadLetter, Song


def _run(fn, elements):
    fn.setup()
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
    with ProgressReporter(functools.partial(count_done, d), 2, interval=0.05, stream=out):
        _run(CountDone(d, "ok"), [Song(uri="x", duration=3.0)])
    assert "1/2 songs done" in out.getvalue().splitlines()[-1]


class _Counter:
    def __init__(self, name, value, namespace="progress"):
        self.key = MetricKey("step", MetricName(namespace, name))
        self.committed, self.attempted = None, value


class _Job:
    """A running job as Dataflow's result looks to the driver: metrics().query() is one API request."""

    def __init__(self, counters):
        self.queries, self.counters = 0, counters

    def metrics(self):
        job = self

        class _Results(MetricResults):
            def query(self, filter=None):
                job.queries += 1
                assert filter is not None and filter.namespaces == {"progress"}  # only what progress needs
                return {"counters": [c for c in job.counters if c.key.metric.namespace in filter.namespaces],
                        "distributions": [], "gauges": []}
        return _Results()


def test_a_job_that_reports_metrics_is_polled_with_one_query_and_no_files(tmp_path):
    job = _Job([_Counter("ok", 40), _Counter("failed", 2), _Counter("audio_ms", 7_200_000),
                _Counter("ok", 3), _Counter("succeeded", 99, namespace="decode")])
    counts = metric_counts(job)
    assert job.queries == 1
    assert (counts["ok"], counts["failed"], counts["dropped"], counts["audio_s"]) == (43, 2, 0, 7200.0)
    assert metric_counts(None)["ok"] == 0  # before the runner has handed the job back
    fn = CountDone("", "ok")  # no progress folder: counters only, nothing written anywhere
    _run(fn, [Song(uri="x", duration=3.0)])
    assert not os.listdir(tmp_path)


def test_a_failed_poll_skips_a_line_and_the_reporter_goes_on():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("job API unreachable")
        return {"ok": 1, "failed": 0, "dropped": 0, "audio_s": 3.0}

    out = io.StringIO()
    reporter = ProgressReporter(flaky, 2, interval=0, stream=out)
    reporter.report()
    reporter.report()
    lines = out.getvalue().splitlines()
    assert "progress unavailable this time: ConnectionError" in lines[0] and "1/2 songs done" in lines[1]
