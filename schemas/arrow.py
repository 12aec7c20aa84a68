"""Arrow schema of the Parquet index, derived from :class:`schemas.records.IndexRow`.

The dataclass is the one source of truth: its annotations map to Arrow types
here, and ``tests/test_schemas.py`` round-trips rows through Parquet.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from schemas.records import IndexRow

_ARROW_TYPES = {
    "str": "string",
    "float": "float64",
    "int": "int64",
    "bool": "bool",
    "list": "list<string>",
}


def index_schema():
    """pyarrow.Schema with one field per IndexRow field, in declaration order."""
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
             "bool": pa.bool_(), "list<string>": pa.list_(pa.string())}
    fields = []
    for f in dataclasses.fields(IndexRow):
        annotation = f.type if isinstance(f.type, str) else f.type.__name__
        fields.append(pa.field(f.name, types[_ARROW_TYPES[annotation]]))
    return pa.schema(fields, metadata={"songshard.record": "IndexRow"})


def rows_to_table(rows: Iterable[IndexRow]):
    """A pyarrow.Table of IndexRows under :func:`index_schema`."""
    import pyarrow as pa

    schema = index_schema()
    columns = {name: [] for name in schema.names}
    for row in rows:
        for name, value in dataclasses.asdict(row).items():
            columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=schema)


def table_to_rows(table) -> list:
    """IndexRows back from a table written by :func:`rows_to_table`."""
    names = [f.name for f in dataclasses.fields(IndexRow)]
    return [IndexRow(**{n: rec[n] for n in names}) for rec in table.to_pylist()]
