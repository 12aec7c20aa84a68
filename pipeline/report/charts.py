"""Small charts as inline SVG strings: histograms of numbers, bars of categories. Pure.

The report opens from disk with no libraries, so the overview's charts are SVG
drawn here at build time: they cost nothing in the browser, scale with the page
and print. Every bar carries a ``<title>`` so hovering shows its exact count.

In: plain lists of values. Out: an ``<svg>`` string. Nothing here fails on empty
or all-NaN input: the chart says "no values" instead.
"""

from __future__ import annotations

import math
from collections import Counter
from html import escape
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

WIDTH, HEIGHT = 340, 170
PAD_L, PAD_R, PAD_T, PAD_B = 40, 10, 10, 34
BAR = "#4c72b0"
BAR_CAT = "#dd8452"
MAX_CATEGORIES = 14


def finite(values: Iterable) -> List[float]:
    """The values that are real finite numbers (None, NaN, inf and non-numbers dropped)."""
    out = []
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def fmt_num(x: float) -> str:
    """A short label for an axis tick: 3 significant figures, thousands as k."""
    if x == 0:
        return "0"
    if abs(x) >= 10000:
        return f"{x / 1000:.0f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def bins_for(values: Sequence[float], max_bins: int = 30) -> Tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of a histogram with about sqrt(n) bins, at least 5, at most ``max_bins``."""
    arr = np.asarray(values, dtype=float)
    n_bins = int(min(max_bins, max(5, math.sqrt(len(arr)))))
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo < 1e-12:  # all equal: one visible bar centred on the value
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(arr, bins=n_bins, range=(lo, hi))
    return counts, edges


def _frame(title: str, body: str, note: str = "") -> str:
    sub = (f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 4}" class="note" text-anchor="end">{escape(note)}</text>'
           if note else "")
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">{body}{sub}</svg></figure>')


def _empty(title: str) -> str:
    return _frame(title, f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="note">no values</text>')


def histogram_svg(values: Iterable, title: str, unit: str = "") -> str:
    """SVG histogram of the finite numbers in ``values``; the note gives n, median and missing."""
    raw = list(values)
    nums = finite(raw)
    if not nums:
        return _empty(title)
    counts, edges = bins_for(nums)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    top = max(1, int(counts.max()))
    bw = plot_w / len(counts)
    parts = [f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{WIDTH - PAD_R}" y2="{PAD_T + plot_h}" class="axis"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end" class="tick">{top}</text>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + plot_h}" text-anchor="end" class="tick">0</text>']
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = PAD_L + i * bw
        tip = f"{fmt_num(edges[i])} to {fmt_num(edges[i + 1])}{unit}: {int(c)}"
        parts.append(f'<rect x="{x + 0.5:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{max(bw - 1, 0.5):.1f}" '
                     f'height="{h:.1f}" fill="{BAR}"><title>{escape(tip)}</title></rect>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        val = edges[0] + frac * (edges[-1] - edges[0])
        parts.append(f'<text x="{PAD_L + frac * plot_w:.1f}" y="{PAD_T + plot_h + 13}" text-anchor="{anchor}" '
                     f'class="tick">{escape(fmt_num(val) + unit)}</text>')
    missing = len(raw) - len(nums)
    note = f"n={len(nums)}  median {fmt_num(float(np.median(nums)))}{unit}"
    note += f"  missing {missing}" if missing else ""
    return _frame(title, "".join(parts), note)


def top_categories(values: Iterable, limit: int = MAX_CATEGORIES) -> List[Tuple[str, int]]:
    """[(label, count)] most common first; empty strings read "(none)"; the tail folds into "(other)"."""
    counts = Counter("(none)" if v is None or v == "" else ("yes" if v else "no") if isinstance(v, bool) else str(v)
                     for v in values)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > limit:
        rest = sum(c for _, c in ranked[limit - 1:])
        ranked = ranked[:limit - 1] + [(f"(other: {len(ranked) - limit + 1})", rest)]
    return ranked


def bars_svg(values: Iterable, title: str, order: Optional[Sequence[str]] = None) -> str:
    """SVG of horizontal bars, one per category (``order`` fixes the order of known labels)."""
    ranked = top_categories(values)
    if not ranked:
        return _empty(title)
    if order:
        pos = {k: i for i, k in enumerate(order)}
        ranked.sort(key=lambda kv: (pos.get(kv[0], len(pos)), -kv[1]))
    n = len(ranked)
    height = PAD_T + min(22, max(16, 120 // n)) * n + 22
    label_w, plot_w = 120, WIDTH - 120 - PAD_R - 34
    top = max(c for _, c in ranked)
    total = sum(c for _, c in ranked)
    row_h = (height - PAD_T - 22) / n
    parts = []
    for i, (label, c) in enumerate(ranked):
        y = PAD_T + i * row_h
        w = plot_w * c / top
        short = label if len(label) <= 20 else label[:19] + "…"
        parts.append(f'<text x="{label_w - 4}" y="{y + row_h * 0.7:.1f}" text-anchor="end" class="tick">'
                     f'{escape(short)}</text>'
                     f'<rect x="{label_w}" y="{y + 2:.1f}" width="{max(w, 1):.1f}" height="{max(row_h - 4, 2):.1f}" '
                     f'fill="{BAR_CAT}"><title>{escape(label)}: {c} ({100 * c / total:.1f} %)</title></rect>'
                     f'<text x="{label_w + w + 3:.1f}" y="{y + row_h * 0.7:.1f}" class="tick">{c}</text>')
    body = "".join(parts)
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img" '
            f'aria-label="{escape(title)}">{body}<text x="{WIDTH - PAD_R}" y="{height - 4:.0f}" class="note" '
            f'text-anchor="end">n={total}</text></svg></figure>')
