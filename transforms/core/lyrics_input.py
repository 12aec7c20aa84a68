"""Lyrics as a lab hands them in: the caps on one text, and the corpus-wide lyrics table's shape.

Shared by three stages that may not import one another: discover reads the table
(``transforms.discover.lyrics_table``), decode reads sidecars and tags
(``transforms.decode.reference``), lyrics parses the text (``transforms.lyrics.sheet``) and owns
the ``--lyrics_table`` flag, whose value :func:`check_table` checks in the driver at start-up.

A table is Parquet (``.parquet`` / ``.pq``), JSON lines (``.jsonl`` / ``.ndjson`` / ``.json``) or CSV
(``.csv`` with a header row); PATH may be a glob of such files. Columns: ``lyrics`` (plain text or
LRC) and ``uri`` (the song's full URI as the input names it) and/or ``path`` (relative to the input
root); a row with both is keyed by ``uri``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
from dataclasses import dataclass
from typing import List, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.core import workdir

MAX_LYRICS_CHARS = 20_000  # a lyric text is cut (at a line end) past this many characters ...
MAX_LYRICS_LINES = 2_000  # ... or lines, and the cut recorded: a song's sheet, not a book
TABLE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".json": "jsonl", ".csv": "csv"}
KEY_COLUMNS = ("uri", "path")
TEXT_COLUMN = "lyrics"


def cap_text(text: str) -> str:
    """``text`` within :data:`MAX_LYRICS_CHARS` and :data:`MAX_LYRICS_LINES`: whole when it fits, else cut
    at the last line end inside both caps (a single over-long line is cut at the character cap)."""
    text = str(text or "")
    if len(text) <= MAX_LYRICS_CHARS and text.count("\n") < MAX_LYRICS_LINES:
        return text
    kept = text[:MAX_LYRICS_CHARS]
    if len(text) > MAX_LYRICS_CHARS and "\n" in kept:
        kept = kept[:kept.rindex("\n")]
    return "\n".join(kept.splitlines()[:MAX_LYRICS_LINES])


@dataclass(frozen=True)
class TableSpec:
    """A checked lyrics table: its path (or glob), format (parquet | jsonl | csv) and columns."""

    path: str
    format: str
    columns: Tuple[str, ...]


def join_key(uri: str) -> str:
    """The form a song's URI is joined by: local paths absolute and normalised, ``scheme://`` names
    normalised (``a/./b``, ``a//b`` -> ``a/b``)."""
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}" if rest else uri
    return os.path.abspath(uri)


def row_key(row: dict, root: str) -> str:
    """The join key of a table row: its ``uri``, else ``root`` + its ``path``; "" when it has neither."""
    uri = str(row.get("uri") or "").strip()
    if uri:
        return join_key(uri)
    path = str(row.get("path") or "").strip()
    if not path:
        return ""
    return join_key(root.rstrip("/") + "/" + path.lstrip("/")) if root else join_key(path)


def table_format(path: str) -> str:
    """parquet | jsonl | csv from the table's name; ValueError for any other."""
    ext = posixpath.splitext(path.lower())[1]
    if ext not in TABLE_FORMATS:
        raise ValueError(f"--lyrics_table {path!r}: unknown format {ext or '(no extension)'!r}; "
                         f"use one of {', '.join(sorted(TABLE_FORMATS))}")
    return TABLE_FORMATS[ext]


def _first_file(path: str) -> str:
    try:
        found = sorted(m.path for m in FileSystems.match([path])[0].metadata_list)
    except Exception as exc:  # noqa: BLE001 - the store's error, said as the flag's
        raise ValueError(f"--lyrics_table {path!r}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if not found:
        raise ValueError(f"--lyrics_table {path!r}: no such file")
    return found[0]


def _columns(first: str, fmt: str) -> List[str]:
    """The column names of one table file: its schema, its header row, or its first JSON object's keys."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with workdir.open_read(first) as f:  # the footer only, not the whole file
            return list(pq.ParquetFile(f).schema_arrow.names)
    with FileSystems.open(first) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
        if fmt == "csv":
            return next(csv.reader(text), [])
        for line in text:
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("its first line is not a JSON object")
                return list(row)
    return []


def check_table(path: str) -> TableSpec:
    """The table at ``path`` checked in the driver: it exists, its format is known, it has a ``lyrics``
    column and a ``uri`` or ``path`` column. Raises ValueError saying which of these fails."""
    fmt = table_format(path)
    first = _first_file(path)
    try:
        columns = _columns(first, fmt)
    except Exception as exc:  # noqa: BLE001 - unreadable: say so as the flag's error
        raise ValueError(f"--lyrics_table {path!r}: cannot read its columns ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in (TEXT_COLUMN,) if c not in columns]
    if not any(c in columns for c in KEY_COLUMNS):
        missing.append(" or ".join(KEY_COLUMNS))
    if missing:
        raise ValueError(f"--lyrics_table {path!r}: missing column(s) {', '.join(missing)} "
                         f"(it has {', '.join(columns) or 'none'})")
    return TableSpec(path, fmt, tuple(columns))
