"""Time ``songshard report`` on synthesised output folders of 10 and 10,000 index rows.

Rows are made by ``pipeline.report.synthetic`` in the IndexRow schema (real record
code); only the samples that get a page (``--sample``, stratified) are written into
the shards, with synthesised 48 kHz stereo FLAC mix and stems, so the figures
separate the overview / table cost (grows with rows) from the page cost (grows with
pages). With Chromium, chromedriver and selenium present it also times the samples
table in the browser: load with every row, then one filter.

    python benchmarks/bench_report.py                 # 10 and 10,000 rows, pages for 10
    python benchmarks/bench_report.py --table-rows 100000   # the samples table alone, 100,000 rows
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.report import build_report, synthetic  # noqa: E402


def make_out(out_dir: str, n_rows: int, n_pages: int) -> float:
    """Write the synthetic OUT (only the samples that will get a page go into the shards); seconds taken."""
    t0 = time.time()
    synthetic.write_out(out_dir, n_rows, shard_sample=n_pages)
    return time.time() - t0


def table_only(n_rows: int, out_dir: str) -> str:
    """Write just table.html, its assets and data/index.js for ``n_rows`` rows; returns the report folder.

    Rows are 1,000 synthetic songs' index rows repeated under new keys: synthesising 100,000
    songs would take minutes and the table's cost depends only on the number of rows.
    """
    import dataclasses

    from pipeline.report import build, data, table_page
    from schemas.records import index_row

    base = [dataclasses.asdict(index_row(synthetic.synth_song(i), "train-000000.tar", "r")) for i in range(1000)]
    rows = [{**base[i % 1000], "key": f"{i:016x}", "tier": data.short_tier(base[i % 1000]["musicality"])}
            for i in range(n_rows)]
    report = os.path.join(out_dir, "report")
    build.copy_assets(report)
    data.write_data_js(os.path.join(report, "data", "index.js"), data.table_payload(rows))
    build.write_text(os.path.join(report, "table.html"), table_page.render_table_page(n_rows, 0))
    return report


def browser_table_timing(report_dir: str) -> dict:
    """Seconds to load table.html (data file parsed, first page drawn) and to apply one filter."""
    import shutil as sh

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        return {"skipped": "selenium not installed"}
    if not (sh.which("chromium") and sh.which("chromedriver")):
        return {"skipped": "chromium / chromedriver not installed"}
    opts = webdriver.ChromeOptions()
    opts.binary_location = sh.which("chromium")
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(sh.which("chromedriver")), options=opts)
    try:
        t0 = time.time()
        drv.get("file://" + os.path.join(report_dir, "table.html"))
        load = time.time() - t0
        # Filter inside the page, without the typing debounce: the cost of one pass over every row.
        filt = drv.execute_script(
            "var box = document.getElementById('filter'); var t = performance.now();"
            "box.value = 'genre:rock duration>100'; box.dispatchEvent(new Event('input'));"
            "return new Promise(function (done) { (function poll() {"
            "  var n = +document.getElementById('rowcount').getAttribute('data-count');"
            "  if (n !== %d) done([performance.now() - t, n]); else setTimeout(poll, 5); })(); });"
            % int(drv.find_element(By.ID, "rowcount").get_attribute("data-count")))
        sort_ms = drv.execute_script("var th = document.querySelectorAll('#samples th')[4];"
                                     "var t = performance.now(); th.click(); return performance.now() - t;")
        return {"load_s": round(load, 3), "filter_ms_including_120ms_debounce": round(filt[0], 1),
                "rows_after_filter": filt[1], "sort_by_duration_ms": round(sort_ms, 1)}
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def bench(n_rows: int, n_pages: int, keep: bool) -> dict:
    """Make a synthetic OUT of ``n_rows`` rows, build its report with ``n_pages`` pages; the figures as a dict."""
    out = tempfile.mkdtemp(prefix=f"bench-report-{n_rows}-")
    try:
        setup = make_out(out, n_rows, n_pages)
        t0 = time.time()
        index = build_report(out, sample=n_pages, progress=False)
        build = time.time() - t0
        report = os.path.dirname(index)
        size = lambda rel: os.path.getsize(os.path.join(report, rel))  # noqa: E731
        result = {"rows": n_rows, "pages": n_pages, "setup_s": round(setup, 2),
                  "build_s": round(build, 2), "index_html_kb": round(size("index.html") / 1024, 1),
                  "data_js_kb": round(size("data/index.js") / 1024, 1),
                  "report_mb": round(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(report)
                                         for f in fs) / 1e6, 2)}
        result["browser"] = browser_table_timing(report)
        if keep:
            result["out"] = out
        return result
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def main(argv=None) -> int:
    """Run :func:`bench` for each ``--rows`` value, one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10, 10000])
    parser.add_argument("--sample", type=int, default=10, help="pages to build (stratified)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic OUT folders and print where")
    parser.add_argument("--table-rows", type=int, default=0, metavar="N",
                        help="instead: only the samples table for N rows, timed in the browser")
    args = parser.parse_args(argv)
    if args.table_rows:
        out = tempfile.mkdtemp(prefix="bench-table-")
        t0 = time.time()
        report = table_only(args.table_rows, out)
        result = {"rows": args.table_rows, "write_s": round(time.time() - t0, 2),
                  "data_js_kb": round(os.path.getsize(os.path.join(report, "data", "index.js")) / 1024, 1),
                  "browser": browser_table_timing(report)}
        print(json.dumps(result), flush=True)
        shutil.rmtree(out, ignore_errors=True)
        return 0
    for n in args.rows:
        print(json.dumps(bench(n, args.sample, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
