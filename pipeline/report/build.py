"""Build OUT/report/: the overview, the samples table, a page per (sampled) sample.

``build_report(out_dir, sample=None)`` is the entry point; ``report_main(argv)``
is ``songshard report OUT [--sample N]``. The folder it writes is self-contained
(pages, ``assets/``, ``data/index.js``, ``media/KEY/``) and opens from disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import List, Optional, Sequence, TextIO

from pipeline.report import data as rdata
from pipeline.report import extract, overview, sample_page, sampling, table_page

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
ASSET_FILES = ("report.css", "table.js", "sample.js")


class Progress:
    """A tqdm-style line on ``stream`` while pages are built: done/total, bar, rate, time left.

    On a terminal the line redraws in place; otherwise (a log file, CI) a line is printed about
    every 5 % so logs stay short.
    """

    def __init__(self, total: int, label: str = "pages", stream: Optional[TextIO] = None, enabled: bool = True):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.start = time.time()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 1 if self.tty else max(1, total // 20)

    def line(self) -> str:
        """The progress line as it stands: "[report] pages 3/10 [###.....] 30% ..."."""
        elapsed = time.time() - self.start
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        rate = elapsed / self.done if self.done else 0.0
        eta = rate * (self.total - self.done)
        return (f"[report] {self.label} {self.done}/{self.total} [{bar}] {100 * frac:3.0f}% "
                f"{elapsed:.1f}s elapsed, {rate:.2f}s/{self.label[:-1] or 'item'}, {eta:.0f}s left")

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done and print the line when due."""
        self.done += n
        if self.enabled and (self.done % self.every == 0 or self.done == self.total):
            end = "\n" if not self.tty or self.done == self.total else ""
            print(("\r" if self.tty else "") + self.line(), end=end, file=self.stream, flush=True)


def copy_assets(report_dir: str) -> None:
    """The stylesheet and scripts every page links (copied, so the folder stands alone)."""
    os.makedirs(os.path.join(report_dir, "assets"), exist_ok=True)
    for name in ASSET_FILES:
        shutil.copyfile(os.path.join(ASSETS_DIR, name), os.path.join(report_dir, "assets", name))


def write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` as UTF-8 (folders made); returns the path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def missing_page(row: dict) -> str:
    """A stub for a sample the index names but its shard lacks (so neighbours' links still work)."""
    from pipeline.report import layout

    body = (f'<p class="pager"><a href="../table.html">&larr; samples</a></p><h1>{layout.esc(row["key"])}</h1>'
            + layout.section("Not in its shard", f'<p>The index places this sample in '
                             f'<code>{layout.esc(row["shard"])}</code>, but that shard does not hold it.</p>'))
    return layout.page(f"{row['key']} – missing", body, depth=1)


def write_sample_pages(out_dir: str, report_dir: str, rows: Sequence[dict], keys: Sequence[str],
                       progress: bool = True) -> List[str]:
    """A page (and media folder) for each key; returns the keys whose sample was found in its shard.

    Samples stream from the shards one at a time. Keys the index names but whose shard lacks
    them get a stub page and a line on stderr.
    """
    bar = Progress(len(keys), "pages", enabled=progress)
    names = [extract.safe_name(r["key"]) for r in extract.plan(rows, keys)]
    written: List[str] = []
    for i, (row, sample) in enumerate(extract.iter_samples(out_dir, rows, keys)):
        name = names[i]
        if sample is None:
            print(f"[report] {row['key']} is in the index but not in {row['shard']}", file=sys.stderr)
            html = missing_page(row)
        else:
            media = extract.write_media(sample, os.path.join(report_dir, "media", name))
            prev_key, next_key = sample_page.neighbours(names, i)
            html = sample_page.render_sample_page(sample, row, media, f"../media/{name}/", prev_key, next_key)
            written.append(str(row["key"]))
        write_text(os.path.join(report_dir, "samples", f"{name}.html"), html)
        bar.update()
    return written


def build_report(out_dir: str, sample: Optional[int] = None, progress: bool = True) -> str:
    """Write OUT/report/ and return the path of OUT/report/index.html.

    ``sample``: make pages for a stratified sample of that many samples (split x genre x tier);
    None makes a page for every sample. The overview and the table always cover the whole index.
    Raises FileNotFoundError when ``out_dir`` does not exist; earlier pages and media in
    OUT/report are replaced.
    """
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"no output folder {out_dir!r}")
    started = time.time()
    report_dir = os.path.join(out_dir, "report")
    for stale in ("samples", "media"):
        shutil.rmtree(os.path.join(report_dir, stale), ignore_errors=True)
    data = rdata.load_out(out_dir)
    keys = sampling.stratified_sample(data.rows, sample)
    copy_assets(report_dir)
    paged = write_sample_pages(out_dir, report_dir, data.rows, keys, progress)
    rdata.write_data_js(os.path.join(report_dir, "data", "index.js"), rdata.table_payload(data.rows, paged))
    write_text(os.path.join(report_dir, "table.html"), table_page.render_table_page(len(data.rows), len(paged)))
    built_at = time.strftime("%Y-%m-%d %H:%M:%S")
    index = write_text(os.path.join(report_dir, "index.html"), overview.render_overview(data, len(paged), built_at))
    if progress:
        print(f"[report] {len(data.rows):,} index rows, {len(paged):,} sample pages in {time.time() - started:.1f}s: "
              f"{index}", file=sys.stderr)
    return index


def report_main(argv: Optional[Sequence[str]] = None) -> int:
    """``songshard report OUT [--sample N] [--quiet]``: 0 on success, 2 when OUT is missing."""
    parser = argparse.ArgumentParser(prog="songshard report",
                                     description="a static HTML report of an output folder (opens from disk)")
    parser.add_argument("output", help="the output folder of a songshard run")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="pages for a stratified sample of N samples (default: every sample)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.sample is not None and args.sample < 0:
        parser.error("--sample must be >= 0")
    try:
        path = build_report(args.output, sample=args.sample, progress=not args.quiet)
    except FileNotFoundError as exc:
        print(f"songshard report: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
