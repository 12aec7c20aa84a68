"""Packing finished parts into shards: streaming, crash-safe, idempotent and concurrent.

Every finished song is a part in OUT/_parts (``KEY.tar``, then ``KEY.json`` with its
index row: the json marks the part complete). :func:`pack_parts` groups complete parts
by split and key into shards within ``--shard_max_samples`` / ``--shard_max_bytes``
and, per shard: writes the tar under a temporary name (copying one sample's members at
a time), writes its index part under a temporary name, renames the tar, renames the
index part, deletes the shard's parts. Shards are written side by side but renamed in
order, stopping at the first failure, so shard numbers never have a gap. A crash at any point leaves either parts or a
shard with its index, never a truncated tar under a final name; :func:`tidy` (run first)
removes what a crash between those steps left: temporary files, a shard no index row
names (its songs are still parts), parts whose songs the index already holds.

It runs at the end of ``songshard run`` and on its own as ``songshard pack OUT`` (the same
function: a job whose launcher went away is finished from any machine). Its I/O is
concurrent (``transforms.core.bulk``): parts are read on a thread pool, several shards are
written at once, and parts are deleted in batches, so a bucket sees about two reads per
song and no request waits for the one before it (``benchmarks/bench_pack.py``).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

from apache_beam.io.filesystems import FileSystems

from schemas.records import IndexRow
from transforms.core import workdir
from transforms.core.bulk import IO_THREADS, delete_many, map_concurrently, ordered_map
from transforms.core.workdir import list_uris
from transforms.shard import PARTS, plan_shards, write_parquet

SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<n>\d{6})\.tar$")
SHARDS_AT_ONCE = 4  # shards written side by side, each streaming its parts in order


def read_index(output: str, threads: int = IO_THREADS):
    """The whole index of OUT as one pyarrow Table (empty table when there is none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.arrow import index_schema

    uris = list_uris(FileSystems.join(output, "index", "*.parquet"))
    tables = map_concurrently(lambda u: pq.read_table(io.BytesIO(workdir.read_bytes(u))), uris, threads)
    return pa.concat_tables(tables) if tables else index_schema().empty_table()


def next_shard_numbers(output: str) -> Dict[str, int]:
    """{split: first free shard number} from the shards already in OUT."""
    nxt: Dict[str, int] = {}
    for uri in list_uris(FileSystems.join(output, "*.tar")):
        m = SHARD_NAME.match(uri.rsplit("/", 1)[-1])
        if m:
            nxt[m["split"]] = max(nxt.get(m["split"], 0), int(m["n"]) + 1)
    return nxt


def _read_part(uri: str) -> dict:
    try:
        return json.loads(workdir.read_bytes(uri))
    except ValueError as exc:
        raise ValueError(f"part {uri} does not parse: {exc}") from exc


def read_parts(output: str, threads: int = IO_THREADS) -> List[dict]:
    """The complete parts' records ({key, uri, split, bytes, row}), sorted by split and key (read
    ``threads`` at a time). Raises ValueError naming a part that does not parse."""
    records = map_concurrently(_read_part, list_uris(FileSystems.join(output, PARTS, "*.json")), threads)
    return sorted(records, key=lambda r: (r["split"], r["key"]))


def _part_uris(output: str, key: str) -> List[str]:
    return [FileSystems.join(output, PARTS, key + ext) for ext in (".tar", ".json")]


def tidy(output: str, table=None) -> None:
    """Remove what a crash left: temporary files, shards the index does not name, parts already packed.
    ``table``: OUT's index when the caller has it already."""
    doomed = (list_uris(FileSystems.join(output, "*.tmp-*")) + list_uris(FileSystems.join(output, "index", "*.tmp-*"))
              + list_uris(FileSystems.join(output, PARTS, "*.tmp-*")))
    table = read_index(output) if table is None else table
    named = set(table.column("shard").to_pylist()) if table.num_rows else set()
    doomed += [u for u in list_uris(FileSystems.join(output, "*.tar"))
               if SHARD_NAME.match(u.rsplit("/", 1)[-1]) and u.rsplit("/", 1)[-1] not in named]
    packed = set(table.column("key").to_pylist()) if table.num_rows else set()
    for uri in list_uris(FileSystems.join(output, PARTS, "*.json")):
        key = uri.rsplit("/", 1)[-1][: -len(".json")]
        if key in packed:
            doomed += _part_uris(output, key)
    delete_many(doomed)


def _copy_members(out: tarfile.TarFile, part: bytes) -> None:
    """Append one part's members to the shard being written."""
    with tarfile.open(fileobj=io.BytesIO(part), mode="r:") as tar:
        for member in tar.getmembers():
            out.addfile(member, tar.extractfile(member) if member.isfile() else None)


def _stage_shard(output: str, name: str, records: List[dict], run_id: str, pool: ThreadPoolExecutor,
                 ahead: int) -> dict:
    """Write one shard and its index part under temporary names; returns what :func:`_publish` needs.
    Parts are fetched ``ahead`` at a time on ``pool`` and appended in order, so memory holds ``ahead``."""
    shard_uri = FileSystems.join(output, name)
    index_uri = FileSystems.join(output, "index", f"{run_id}-{name[:-4]}.parquet")
    temp = f"{shard_uri}.tmp-{uuid.uuid4().hex[:8]}"
    tars = [FileSystems.join(output, PARTS, rec["key"] + ".tar") for rec in records]
    with workdir.open_write(temp) as stream:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT) as out:
            for part in ordered_map(workdir.read_bytes, tars, pool, ahead):
                _copy_members(out, part)
    rows = [IndexRow(**{**rec["row"], "shard": name}) for rec in records]
    temp_index = f"{index_uri}.tmp-{uuid.uuid4().hex[:8]}"
    write_parquet(temp_index, rows)
    return {"shard": name, "split": records[0]["split"], "samples": len(records),
            "bytes": sum(r["bytes"] for r in records), "rows": rows,
            "renames": [(temp, shard_uri), (temp_index, index_uri)],
            "parts": [u for rec in records for u in _part_uris(output, rec["key"])]}


def _publish(staged: dict) -> dict:
    """Rename a staged shard, then its index part, into place; delete its parts. What was published."""
    for temp, final in staged["renames"]:
        FileSystems.rename([temp], [final])
    delete_many(staged["parts"])
    return {k: staged[k] for k in ("shard", "split", "samples", "bytes", "rows")}


def pack_parts(output: str, run_id: str, max_samples: int, max_bytes: float,
               threads: int = IO_THREADS) -> List[dict]:
    """Pack every complete part in OUT into shards (numbering after OUT's); returns the published shards
    in shard order. Parts of earlier, killed runs are packed too: a rerun publishes everything finished
    so far. ``threads``: requests in flight. Raises ValueError naming a part that does not parse.
    """
    output = output.rstrip("/")
    tidy(output)
    numbers = next_shard_numbers(output)
    records = read_parts(output, threads)
    plan = []
    for split in sorted({r["split"] for r in records}):
        mine = [r for r in records if r["split"] == split]
        for idx in plan_shards([r["bytes"] for r in mine], max_samples, max_bytes):
            n = numbers.get(split, 0)
            numbers[split] = n + 1
            plan.append((f"{split}-{n:06d}.tar", [mine[i] for i in idx]))
    if not plan:
        return []
    ahead = max(1, threads // SHARDS_AT_ONCE)
    published: List[dict] = []
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="songshard-pack-io") as io_pool, \
            ThreadPoolExecutor(max_workers=min(SHARDS_AT_ONCE, len(plan)), thread_name_prefix="songshard-pack") as shards:
        staged = [shards.submit(_stage_shard, output, name, recs, run_id, io_pool, ahead) for name, recs in plan]
        try:
            for future in staged:  # written side by side, published in order: a failure leaves no gap
                published.append(_publish(future.result()))
        finally:
            for future in staged:
                future.cancel()
    return published
