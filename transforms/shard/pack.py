"""Packing finished parts into shards: streaming, crash-safe and idempotent. Runs in the driver.

Every finished song is a part in OUT/_parts (``KEY.tar``, then ``KEY.json`` with its
index row: the json marks the part complete). :func:`pack_parts` groups complete parts
by split and key into shards within ``--shard_max_samples`` / ``--shard_max_bytes``
and, per shard: writes the tar under a temporary name (copying one sample's members at
a time), writes its index part under a temporary name, renames the tar, renames the
index part, deletes the shard's parts. A crash at any point leaves either parts or a
shard with its index, never a truncated tar under a final name; :func:`tidy` (run first)
removes what a crash between those steps left: temporary files, a shard no index row
names (its songs are still parts), parts whose songs the index already holds.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import uuid
from typing import Dict, List

from apache_beam.io.filesystems import FileSystems

from schemas.records import IndexRow
from transforms.core import workdir
from transforms.core.workdir import list_uris
from transforms.shard import PARTS, plan_shards, write_parquet

SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<n>\d{6})\.tar$")


def read_index(output: str):
    """The whole index of OUT as one pyarrow Table (empty table when there is none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.arrow import index_schema

    uris = list_uris(FileSystems.join(output, "index", "*.parquet"))
    tables = [pq.read_table(io.BytesIO(workdir.read_bytes(u))) for u in uris]
    return pa.concat_tables(tables) if tables else index_schema().empty_table()


def next_shard_numbers(output: str) -> Dict[str, int]:
    """{split: first free shard number} from the shards already in OUT."""
    nxt: Dict[str, int] = {}
    for uri in list_uris(FileSystems.join(output, "*.tar")):
        m = SHARD_NAME.match(uri.rsplit("/", 1)[-1])
        if m:
            nxt[m["split"]] = max(nxt.get(m["split"], 0), int(m["n"]) + 1)
    return nxt


def read_parts(output: str) -> List[dict]:
    """The complete parts' records ({key, uri, split, bytes, row}), sorted by split and key."""
    records = [json.loads(workdir.read_bytes(u)) for u in list_uris(FileSystems.join(output, PARTS, "*.json"))]
    return sorted(records, key=lambda r: (r["split"], r["key"]))


def _delete(uris: List[str]) -> None:
    existing = [u for u in uris if FileSystems.exists(u)]
    if existing:
        FileSystems.delete(existing)


def tidy(output: str) -> None:
    """Remove what a crash left: temporary files, shards the index does not name, parts already packed."""
    _delete(list_uris(FileSystems.join(output, "*.tmp-*")) + list_uris(FileSystems.join(output, "index", "*.tmp-*"))
            + list_uris(FileSystems.join(output, PARTS, "*.tmp-*")))
    table = read_index(output)
    named = set(table.column("shard").to_pylist()) if table.num_rows else set()
    _delete([u for u in list_uris(FileSystems.join(output, "*.tar"))
             if SHARD_NAME.match(u.rsplit("/", 1)[-1]) and u.rsplit("/", 1)[-1] not in named])
    packed = set(table.column("key").to_pylist()) if table.num_rows else set()
    for uri in list_uris(FileSystems.join(output, PARTS, "*.json")):
        key = uri.rsplit("/", 1)[-1][: -len(".json")]
        if key in packed:
            _delete([uri, uri[: -len(".json")] + ".tar"])


def _copy_members(out: tarfile.TarFile, part_uri: str) -> None:
    """Append one part's members to the shard being written (one sample in memory at a time)."""
    with tarfile.open(fileobj=io.BytesIO(workdir.read_bytes(part_uri)), mode="r:") as part:
        for member in part.getmembers():
            out.addfile(member, part.extractfile(member) if member.isfile() else None)


def _write_shard(output: str, name: str, records: List[dict], run_id: str) -> dict:
    """One shard and its index part from ``records``; returns what was published."""
    shard_uri = FileSystems.join(output, name)
    index_uri = FileSystems.join(output, "index", f"{run_id}-{name[:-4]}.parquet")
    temp = f"{shard_uri}.tmp-{uuid.uuid4().hex[:8]}"
    with workdir.open_write(temp) as stream:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT) as out:
            for rec in records:
                _copy_members(out, FileSystems.join(output, PARTS, rec["key"] + ".tar"))
    rows = [IndexRow(**{**rec["row"], "shard": name}) for rec in records]
    temp_index = f"{index_uri}.tmp-{uuid.uuid4().hex[:8]}"
    write_parquet(temp_index, rows)
    FileSystems.rename([temp], [shard_uri])
    FileSystems.rename([temp_index], [index_uri])
    _delete([FileSystems.join(output, PARTS, rec["key"] + ext) for rec in records for ext in (".tar", ".json")])
    return {"shard": name, "split": records[0]["split"], "samples": len(records),
            "bytes": sum(r["bytes"] for r in records), "rows": rows}


def pack_parts(output: str, run_id: str, max_samples: int, max_bytes: float) -> List[dict]:
    """Pack every complete part in OUT into shards (numbering after OUT's); returns the published shards.

    Parts of earlier, killed runs are packed too: a rerun publishes everything finished so far.
    """
    output = output.rstrip("/")
    tidy(output)
    numbers = next_shard_numbers(output)
    published: List[dict] = []
    records = read_parts(output)
    for split in sorted({r["split"] for r in records}):
        mine = [r for r in records if r["split"] == split]
        for idx in plan_shards([r["bytes"] for r in mine], max_samples, max_bytes):
            n = numbers.get(split, 0)
            numbers[split] = n + 1
            published.append(_write_shard(output, f"{split}-{n:06d}.tar", [mine[i] for i in idx], run_id))
    return published
