"""``index.html``: the overview of an OUT folder, always over the whole index. Pure (returns HTML).

Headline figures, splits and shards, distributions drawn as inline SVG
(``charts``), failures and filtered songs grouped by stage and reason with the
files each group names, the last run's config and backends, and every run side
by side (``runs``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Dict, List, Sequence, Tuple

from pipeline.report import charts, layout, runs
from pipeline.report.data import OutData, tier_names
from pipeline.report.layout import esc

MAX_FILES_LISTED = 2000  # per group; a folder with more failures lists the first ones and says so
CATEGORY_CHARTS = (("split", "split"), ("genre", "genre"), ("emotion", "emotion"), ("gender", "gender"),
                   ("language", "language"), ("tier", "musicality tier"), ("pure_music", "pure music"),
                   ("source_codec", "source codec"), ("source_sample_rate", "source sample rate"))
NUMBER_CHARTS = (("duration", "duration", " s"), ("bpm", "bpm", ""),
                 ("language_probability", "language probability", ""),
                 ("language_coverage", "language coverage", ""), ("num_words", "words per song", ""),
                 ("loudness_lufs", "loudness (LUFS)", ""), ("true_peak_dbfs", "true peak (dBFS)", ""),
                 ("clipping_ratio", "clipping ratio", ""), ("bandwidth_hz", "bandwidth", " Hz"),
                 ("silence_ratio", "silence ratio", ""))


def _hours(rows: Sequence[dict]) -> float:
    return sum(float(r.get("duration") or 0.0) for r in rows) / 3600.0


def headline(data: OutData, pages: int) -> str:
    """The row of headline cards: samples, hours, shards, splits, artists, failures, filtered, runs."""
    rows = data.rows
    splits = Counter(r["split"] for r in rows)
    cards = [layout.card("samples", f"{len(rows):,}", f"{pages:,} with a page"),
             layout.card("hours of audio", f"{_hours(rows):.2f}",
                         f"mean {_hours(rows) * 3600 / max(len(rows), 1):.0f} s"),
             layout.card("shards", f"{len(data.shards):,}",
                         f"{sum(s['bytes'] for s in data.shards) / 1e9:.2f} GB"),
             layout.card("train", f"{splits.get('train', 0):,}",
                         f"valid {splits.get('valid', 0):,}, test {splits.get('test', 0):,}"),
             layout.card("artists", f"{len({r.get('artist') for r in rows if r.get('artist')}):,}"),
             layout.card("failures", f"{len(data.failures):,}", "dead letters"),
             layout.card("filtered", f"{len(data.filtered):,}", "dropped by a rule"),
             layout.card("runs", f"{len(data.runs):,}")]
    return f'<div class="cards">{"".join(cards)}</div>'


def splits_section(data: OutData) -> str:
    """Samples, hours and artists per split beside every shard with its samples and size."""
    by_split: Dict[str, List[dict]] = defaultdict(list)
    for r in data.rows:
        by_split[r["split"]].append(r)
    split_rows = [(s, f"{len(rs):,}", f"{_hours(rs):.3f}", f"{len({r.get('artist') for r in rs}):,}")
                  for s, rs in sorted(by_split.items())]
    shard_rows = [(s["shard"], s["split"], f"{s['samples']:,}",
                   f"{s['bytes'] / 1e6:,.1f}" if s["exists"] else "missing") for s in data.shards]
    body = (f'<div class="two"><div>{layout.table(("split", "samples", "hours", "artists"), split_rows)}</div>'
            f'<div style="max-height:320px;overflow:auto">'
            f'{layout.table(("shard", "split", "samples", "MB"), shard_rows)}</div></div>')
    return layout.section("Splits and shards", body, anchor="splits")


def distributions_section(rows: Sequence[dict]) -> str:
    """Bars for the categorical columns and histograms for the numeric ones, over every row."""
    tiers = list(tier_names())
    parts = []
    for col, title in CATEGORY_CHARTS:
        order = tiers if col == "tier" else (["train", "valid", "test"] if col == "split" else None)
        parts.append(charts.bars_svg([r.get(col) for r in rows], title, order=order))
    for col, title, unit in NUMBER_CHARTS:
        parts.append(charts.histogram_svg([r.get(col) for r in rows], title, unit))
    note = "over every row of the index; hover a bar for its count"
    return layout.section("Distributions", f'<div class="charts">{"".join(parts)}</div>', anchor="distributions",
                          note=note)


def group_failures(failures: Sequence[dict]) -> Dict[Tuple[str, str], List[Tuple[str, str]]]:
    """{(stage, error type): [(uri, message)]} for the dead letters."""
    groups: Dict[Tuple[str, str], List[Tuple[str, str]]] = defaultdict(list)
    for f in failures:
        groups[(str(f.get("stage", "?")), str(f.get("error_type", "?")))].append(
            (str(f.get("uri", "")), str(f.get("message", ""))))
    return dict(groups)


def group_filtered(dropped: Sequence[dict]) -> Dict[Tuple[str, str], List[Tuple[str, str]]]:
    """{(stage, reason): [(uri, the reason in full)]}; a song with two reasons is in two groups."""
    groups: Dict[Tuple[str, str], List[Tuple[str, str]]] = defaultdict(list)
    for d in dropped:
        for reason in d.get("reasons", []) or ["(no reason recorded)"]:
            group = (str(d.get("stage", "filter")), str(reason).split(":")[0])
            groups[group].append((str(d.get("uri", "")), str(reason)))
    return dict(groups)


def _groups_html(groups: Dict[Tuple[str, str], List[Tuple[str, str]]], what: str) -> str:
    if not groups:
        return f'<p class="muted">no {what}</p>'
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    summary = layout.table(("stage", "reason", "songs"), [(s, r, f"{len(v):,}") for (s, r), v in ranked])
    lists = []
    for (stage, reason), items in ranked:
        shown = items[:MAX_FILES_LISTED]
        more = f"<li class=muted>… and {len(items) - len(shown):,} more</li>" if len(items) > len(shown) else ""
        lis = "".join(f'<li><code>{esc(uri)}</code> <span class="muted">{esc(msg[:300])}</span></li>'
                      for uri, msg in shown)
        lists.append(f"<details><summary>{esc(stage)} · {esc(reason)} ({len(items):,})</summary>"
                     f"<ul>{lis}{more}</ul></details>")
    return summary + "".join(lists)


def failures_section(data: OutData) -> str:
    """Dead letters by stage and error type, each group listing its files and messages."""
    return layout.section(f"Failures ({len(data.failures):,})", _groups_html(group_failures(data.failures), "failures"),
                          anchor="failures", note="OUT/failures/*.jsonl: songs a stage could not process")


def filtered_section(data: OutData) -> str:
    """Dropped songs by stage and reason, each group listing its files and the reason in full."""
    return layout.section(f"Filtered ({len(data.filtered):,})", _groups_html(group_filtered(data.filtered),
                                                                              "filtered songs"),
                          anchor="filtered", note="OUT/filtered/*.jsonl: songs a rule dropped, with every reason")


def render_overview(data: OutData, pages: int, built_at: str) -> str:
    """The overview page of ``data``; ``pages`` is how many samples have a page, ``built_at`` a timestamp."""
    body = "".join([
        f'<h1>{esc(data.out_dir)} <small>report built {esc(built_at)}</small></h1>',
        headline(data, pages), splits_section(data), distributions_section(data.rows),
        failures_section(data), filtered_section(data), runs.last_run_section(data.stats), runs.runs_section(data.runs),
    ])
    return layout.page("songshard report", body, depth=0, active="index.html")
