"""songshard report: the static site built from a hand-made OUT (no pipeline run).

The OUT comes from ``pipeline.report.synthetic``: real record code, WebDataset tars
written with TarWriter, an index parquet in the IndexRow schema, failures and
filtered jsonl, two runs.
"""

from __future__ import annotations

import glob
import html.parser
import io
import os
import re
import tarfile

import pyarrow.parquet as pq
import pytest

from pipeline.report import build_report, report_main
from pipeline.report import charts, data as rdata, sampling, synthetic
from pipeline.report.build import Progress

N_ROWS = 10
N_PAGES = 4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(OUT, path of index.html) for 10 synthetic songs of 6 s, pages for a sample of 4."""
    out = str(tmp_path_factory.mktemp("out"))
    synthetic.write_out(out, N_ROWS, duration=6.0)
    return out, build_report(out, sample=N_PAGES, progress=False)


def _report_files(out: str, exts=("html", "js", "css")):
    return [p for ext in exts for p in glob.glob(os.path.join(out, "report", "**", f"*.{ext}"), recursive=True)]


def test_files_exist(built):
    out, index = built
    report = os.path.join(out, "report")
    assert index == os.path.join(report, "index.html")
    for rel in ("index.html", "table.html", "data/index.js", "assets/report.css", "assets/table.js",
                "assets/sample.js"):
        assert os.path.getsize(os.path.join(report, rel)) > 0, rel
    pages = sorted(glob.glob(os.path.join(report, "samples", "*.html")))
    assert len(pages) == N_PAGES
    for page in pages:
        key = os.path.basename(page)[:-5]
        media = os.path.join(report, "media", key)
        for name in ("mix.flac", "vocals.flac", "accompaniment.flac", "spectrogram.png", "tokens.png", "prompt.png"):
            assert os.path.getsize(os.path.join(media, name)) > 0, (key, name)


def test_extracted_audio_is_the_shards_bytes(built):
    out, _ = built
    page = sorted(glob.glob(os.path.join(out, "report", "samples", "*.html")))[0]
    key = os.path.basename(page)[:-5]
    shard = next(p for p in glob.glob(os.path.join(out, "*.tar")) if f"{key}.mix.flac" in tarfile.open(p).getnames())
    with tarfile.open(shard) as tar:
        stored = tar.extractfile(f"{key}.vocals.flac").read()
    with open(os.path.join(out, "report", "media", key, "vocals.flac"), "rb") as f:
        assert f.read() == stored


def test_data_file_rows_equal_index_rows(built):
    out, _ = built
    index = pq.read_table(os.path.join(out, "index")).to_pylist()
    payload = rdata.read_data_js(os.path.join(out, "report", "data", "index.js"))
    names = [c["name"] for c in payload["columns"]]
    assert len(payload["rows"]) == len(index) == N_ROWS
    assert [r[names.index("key")] for r in payload["rows"]] == [r["key"] for r in index]
    split_col = names.index("split")
    assert [payload["dicts"]["split"][r[split_col]] for r in payload["rows"]] == [r["split"] for r in index]
    durations = [r[names.index("duration")] for r in payload["rows"]]
    assert durations == pytest.approx([r["duration"] for r in index])
    assert len(payload["pages"]) == N_PAGES


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_nothing_from_the_network(built):
    out, _ = built
    files = _report_files(out)
    assert len(files) >= 3 + 3 + N_PAGES
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert not re.search(r"https?://", text, re.I), path
        assert "//cdn" not in text and "@import" not in text, path
        if path.endswith(".html"):
            parser = _Refs()
            parser.feed(text)
            for ref in parser.refs:  # every link and script is a relative file of the report
                target = ref.split("#")[0]
                if target:
                    assert not re.match(r"^[a-z]+:|^//", target), (path, ref)
                    assert os.path.exists(os.path.join(os.path.dirname(path), target)), (path, ref)


def test_overview_lists_failures_filtered_and_runs(built):
    out, index = built
    with open(index, encoding="utf-8") as f:
        page = f.read()
    for text in ("/corpus/broken.mp3", "DecodeError", "/corpus/empty.wav", "too_short", "/corpus/short.wav",
                 synthetic.RUN_IDS[0], synthetic.RUN_IDS[1], "config: filter.min_duration"):
        assert text in page, text
    assert re.search(r"<tr class=diff><td>config: filter.min_duration</td><td>30.0</td><td>60.0</td>", page)
    assert page.count('<figure class="chart">') == 19
    assert ">10<" in page  # the samples card counts every index row, not only the paged ones


def test_sample_page_timeline_matches_labels(built):
    out, _ = built
    page_path = sorted(glob.glob(os.path.join(out, "report", "samples", "*.html")))[0]
    key = os.path.basename(page_path)[:-5]
    song = synthetic.synth_song(int(key, 16), duration=6.0)
    with open(page_path, encoding="utf-8") as f:
        page = f.read()
    seeks = [float(x) for x in re.findall(r'class="seg" data-seek="([0-9.]+)"', page)]
    assert seeks == [s["start"] for s in song.labels["lyrics"]["sections"]]
    assert page.count('class="word"') == len(song.labels["lyrics"]["words"])
    assert page.count('class="vseg"') == len(song.labels["lyrics"]["regions"])
    assert "<details><summary>json" in page and 'data-track="mix"' in page


def test_stratified_sample_picks_n_and_covers_strata():
    rows = [{"key": f"{i:04d}", "split": ("train", "train", "valid", "test")[i % 4],
             "genre": ("pop", "rock", "jazz")[i % 3], "musicality": ("high", "low")[i % 2]} for i in range(300)]
    strata = sampling.strata_of(rows)
    assert len(strata) == 12
    for n in (0, 1, 5, 12, 13, 50, 300, 1000):
        keys = sampling.stratified_sample(rows, n)
        assert len(keys) == min(n, 300) and len(set(keys)) == len(keys)
        picked = sampling.strata_of([r for r in rows if r["key"] in set(keys)])
        assert len(picked) == min(n, 12)
    for n in (3, 5):  # fewer pages than strata: still every split and every genre
        picked = [r for r in rows if r["key"] in set(sampling.stratified_sample(rows, n))]
        assert {r["split"] for r in picked} == {"train", "valid", "test"}
        assert {r["genre"] for r in picked} == {"pop", "rock", "jazz"}
    assert sampling.stratified_sample(rows, 20) == sampling.stratified_sample(list(reversed(rows)), 20)
    assert len(sampling.stratified_sample(rows, None)) == 300
    with pytest.raises(ValueError):
        sampling.stratified_sample(rows, -1)


def test_missing_samples_get_a_stub_page_and_cli(tmp_path, capsys):
    out = str(tmp_path / "out")
    songs = synthetic.write_out(out, 6, duration=6.0, audio=False, shard_keys=[f"{i:016x}" for i in range(3)])
    assert report_main([out, "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(out, "report", "index.html")
    payload = rdata.read_data_js(os.path.join(out, "report", "data", "index.js"))
    assert len(payload["rows"]) == 6 and len(payload["pages"]) == 3
    pages = glob.glob(os.path.join(out, "report", "samples", "*.html"))
    assert len(pages) == len(songs)
    with open(os.path.join(out, "report", "samples", f"{5:016x}.html"), encoding="utf-8") as f:
        assert "does not hold it" in f.read()
    with open(os.path.join(out, "report", "samples", f"{0:016x}.html"), encoding="utf-8") as f:
        assert "holds no audio" in f.read()
    assert report_main([str(tmp_path / "nowhere")]) == 2


def test_charts_and_progress():
    svg = charts.histogram_svg([1, 2, 2, 3, float("nan"), None], "x")
    assert svg.count("<rect") == 5 and "missing 2" in svg
    assert "no values" in charts.histogram_svg([None], "x")
    bars = charts.bars_svg(["a", "b", "a", "", True], "c")
    assert bars.count("<rect") == 4 and "(none)" in bars and "yes" in bars
    stream = io.StringIO()
    bar = Progress(40, stream=stream)
    for _ in range(40):
        bar.update()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 20 and lines[-1].startswith("[report] pages 40/40") and "100%" in lines[-1]
