"""Driver-side end of a run: name the shards, publish the index, write the figures.

The pipeline leaves complete shards under temporary names with an index part
each and a manifest of them. Here they get their final, contiguous names
(``train-000000.tar`` ... continuing after shards an earlier run left), index
parts move to ``OUT/index/`` with the final shard name, and ``stats.json``
(plus ``runs/RUN_ID.json``) records the run's figures and its config.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from typing import Dict, List

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from schemas.arrow import rows_to_table, table_to_rows
from transforms.core import workdir

SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<n>\d{6})\.tar$")


def list_uris(pattern: str) -> List[str]:
    """Sorted URIs matching ``pattern``; [] when nothing matches or the folder does not exist yet.

    Any other listing error (permissions, a transient storage failure) is raised:
    read as an empty OUT, it would make a resume renumber shards from 000000.
    """
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except BeamIOError:
        folder = pattern.rsplit("/", 1)[0] if "/" in pattern else "."
        if "*" not in folder and not FileSystems.exists(folder):
            return []
        raise


def read_jsonl(pattern: str) -> List[dict]:
    records = []
    for uri in list_uris(pattern):
        for line in workdir.read_bytes(uri).decode("utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def next_shard_numbers(output: str) -> Dict[str, int]:
    """{split: first free shard number} from the shards already in OUT."""
    nxt: Dict[str, int] = {}
    for uri in list_uris(FileSystems.join(output, "*.tar")):
        m = SHARD_NAME.match(uri.rsplit("/", 1)[-1])
        if m:
            nxt[m["split"]] = max(nxt.get(m["split"], 0), int(m["n"]) + 1)
    return nxt


def _rewrite_index(temp_index_uri: str, final_uri: str, shard_name: str) -> List:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(workdir.read_bytes(temp_index_uri)))
    rows = table_to_rows(table)
    for row in rows:
        row.shard = shard_name
    buf = io.BytesIO()
    pq.write_table(rows_to_table(rows), buf)
    workdir.write_bytes(final_uri, buf.getvalue())
    return rows


def publish_shards(output: str, manifest_pattern: str, run_id: str) -> List[dict]:
    """Rename temporary shards to final names; returns [{"shard", "split", "samples", "bytes", "rows"}]."""
    infos = read_jsonl(manifest_pattern)
    infos.sort(key=lambda i: (i["split"], i["writer"], i["seq"]))
    numbers = next_shard_numbers(output)
    published = []
    for info in infos:
        n = numbers.get(info["split"], 0)
        numbers[info["split"]] = n + 1
        name = f"{info['split']}-{n:06d}.tar"
        rows = _rewrite_index(info["temp_index_uri"], FileSystems.join(output, "index", f"{run_id}-{name[:-4]}.parquet"),
                              name)
        FileSystems.rename([info["temp_uri"]], [FileSystems.join(output, name)])
        published.append({"shard": name, "split": info["split"], "samples": info["samples"],
                          "bytes": info["bytes"], "rows": rows})
    return published


def read_index(output: str):
    """The whole index of OUT as one pyarrow Table (empty table when there is none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.arrow import index_schema

    tables = [pq.read_table(io.BytesIO(workdir.read_bytes(u))) for u in list_uris(FileSystems.join(output, "index", "*.parquet"))]
    return pa.concat_tables(tables) if tables else index_schema().empty_table()


def summarise(run: dict, songs_in: int, skipped: int, published: List[dict], failures: List[dict],
              dropped: List[dict], wall_time: float, stage_metrics: dict) -> dict:
    """The figures of one run as a JSON-able dict (what stats.json holds)."""
    rows = [r for p in published for r in p["rows"]]
    seconds = sum(r.duration for r in rows)
    by_stage = Counter(f["stage"] for f in failures)
    by_reason = Counter(f"{f['stage']}: {f['error_type']}" for f in failures)
    drop_reasons = Counter(r.split(":")[0] for d in dropped for r in d.get("reasons", []))
    return {
        "run_id": run["run_id"],
        "config_sha256": run.get("config_sha256", ""),
        "songs_in": songs_in,
        "songs_skipped_already_done": skipped,
        "records_out": len(rows),
        "records_by_split": dict(Counter(r.split for r in rows)),
        "shards": [{k: p[k] for k in ("shard", "split", "samples", "bytes")} for p in published],
        "failures": len(failures),
        "failures_by_stage": dict(by_stage),
        "failures_by_reason": dict(by_reason),
        "filtered": len(dropped),
        "filtered_by_reason": dict(drop_reasons),
        "hours_of_audio": round(seconds / 3600.0, 4),
        "wall_time_s": round(wall_time, 1),
        "realtime_factor": round(wall_time / seconds, 3) if seconds else None,
        "stages": stage_metrics,
        "backends": run.get("backends", {}),
        "config": run.get("config", {}),
    }


def write_stats(output: str, stats: dict) -> None:
    data = json.dumps(stats, indent=2, sort_keys=True, default=str).encode("utf-8")
    workdir.write_bytes(FileSystems.join(output, "stats.json"), data)
    workdir.write_bytes(FileSystems.join(output, "runs", f"{stats['run_id']}.json"), data)


def format_summary(stats: dict) -> str:
    lines = [
        f"songshard run {stats['run_id']}: {stats['songs_in']} songs in "
        f"({stats['songs_skipped_already_done']} already done), {stats['records_out']} records out "
        f"in {len(stats['shards'])} shards {stats['records_by_split']}",
        f"  audio: {stats['hours_of_audio']:.3f} h, wall time {stats['wall_time_s']:.0f} s"
        + (f" ({stats['realtime_factor']:.2f} s per second of audio)" if stats["realtime_factor"] else ""),
        f"  failures: {stats['failures']}" + "".join(f"\n    {k}: {v}" for k, v in sorted(stats["failures_by_reason"].items())),
        f"  filtered: {stats['filtered']}" + "".join(f"\n    {k}: {v}" for k, v in sorted(stats["filtered_by_reason"].items())),
    ]
    for stage, m in sorted(stats.get("stages", {}).items()):
        if m.get("succeeded") or m.get("failed"):
            lines.append(f"  {stage}: {m.get('succeeded', 0)} ok, {m.get('failed', 0)} failed, "
                         f"mean {m.get('mean_latency_s', 0):.2f} s/song")
    return "\n".join(lines)
