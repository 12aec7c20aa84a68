"""Progress markers and the progress line."""

import io

from pipeline.progress import ProgressReporter, count_markers, format_progress
from transforms.core.workdir import write_marker


def test_markers_count_songs_and_stages(tmp_path):
    d = str(tmp_path / "progress")
    for uri in ("a", "b", "c"):
        write_marker(d, "stage_decode_ok", uri)
    write_marker(d, "stage_separate_ok", "a")
    write_marker(d, "stage_separate_failed", "b")
    write_marker(d, "failed", "b")
    write_marker(d, "ok", "a")
    write_marker(d, "ok", "a")  # a rewrite does not count twice
    counts = count_markers(d)
    assert counts["ok"] == 1 and counts["failed"] == 1 and counts["dropped"] == 0
    assert counts["stages"] == {"decode": 3, "separate": 2}
    line = format_progress(counts, 5, 10.0, ("decode", "separate"))
    assert line.startswith("[songshard] 2/5 songs done (1 ok, 1 failed, 0 filtered)")
    assert "through: decode 3 separate 2" in line


def test_reporter_prints_a_final_line(tmp_path):
    d = str(tmp_path / "p")
    out = io.StringIO()
    with ProgressReporter(d, 2, interval=0.05, stream=out):
        write_marker(d, "ok", "x")
    assert "1/2 songs done" in out.getvalue().splitlines()[-1]
