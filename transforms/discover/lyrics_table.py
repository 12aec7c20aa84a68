"""The corpus-wide lyrics table (``--lyrics_table PATH``), read on workers, keyed for the join by URI.

The table's formats and columns, and its start-up check, are in
:mod:`transforms.core.lyrics_input`. :class:`LyricsTable` reads it with Beam's own reads
(``ReadFromParquet``; ``ReadFromText`` of JSON lines; ``MatchFiles`` + ``ReadMatches`` for CSV,
whose quoted fields may span lines) into ``(join key, text)`` pairs, which
:class:`transforms.discover.read.ReadSongs` joins to the discovered URIs in the same
``CoGroupByKey`` that drops what OUT already holds: the graph holds the table's path only, never
its rows, and nothing is shuffled after decode. Rows that cannot be used (bad JSON, no key, no
text) are skipped and counted (``discover/lyrics_table_skipped_rows``).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator, Optional, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from transforms.core.lyrics_input import KEY_COLUMNS, TEXT_COLUMN, TableSpec, cap_text, check_table, row_key

CSV_FIELD_LIMIT = 1 << 24  # lyrics cells are long; the csv module's default (128 KiB) is not enough


def _skipped() -> None:
    Metrics.counter("discover", "lyrics_table_skipped_rows").inc()


def _json_row(line: str) -> Iterator[dict]:
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if isinstance(row, dict):
        yield row
    elif line.strip():
        _skipped()


def _csv_rows(readable) -> Iterator[dict]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with readable.open() as f:
        yield from csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline=""))


def keyed_text(row: dict, root: str) -> Iterator[Tuple[str, Tuple[str, int]]]:
    """``(join key, (lyrics cut at the caps, length of the whole text))`` of a table row; nothing for
    a row without a key or text (counted)."""
    key, text = row_key(row, root), row.get(TEXT_COLUMN)
    if key and isinstance(text, str) and text.strip():
        yield key, (cap_text(text), len(text))
    else:
        _skipped()


def _read_parquet(spec: TableSpec) -> beam.PTransform:
    wanted = [c for c in (*KEY_COLUMNS, TEXT_COLUMN) if c in spec.columns]
    return beam.io.ReadFromParquet(spec.path, columns=wanted)


@beam.ptransform_fn
def _read_jsonl(pbegin, spec: TableSpec):
    return pbegin | "Lines" >> beam.io.ReadFromText(spec.path) | "Json" >> beam.FlatMap(_json_row)


@beam.ptransform_fn
def _read_csv(pbegin, spec: TableSpec):
    return (pbegin | "Match" >> fileio.MatchFiles(spec.path) | "Open" >> fileio.ReadMatches()
            | "Rows" >> beam.FlatMap(_csv_rows))


# table format -> the Beam read of its rows (dicts), on workers
READERS = {"parquet": _read_parquet, "jsonl": _read_jsonl, "csv": _read_csv}


class LyricsTable(beam.PTransform):
    """PBegin -> ``(join key, (text, whole length))`` of every usable row of the table ``spec``, read on
    workers. ``root``: the input root that a ``path`` column is relative to."""

    def __init__(self, spec: TableSpec, root: str = ""):
        super().__init__()
        self.spec, self.root = spec, root

    def expand(self, pbegin):
        rows = pbegin | "Read" >> READERS[self.spec.format](self.spec)
        return rows | "Keyed" >> beam.FlatMap(keyed_text, self.root)


def lyrics_table(path: Optional[str], root: str = "") -> Optional[LyricsTable]:
    """The LyricsTable read of ``path`` (checked: ValueError as ``check_table``), or None without one."""
    return LyricsTable(check_table(path), root) if path else None


__all__ = ["LyricsTable", "keyed_text", "lyrics_table"]
