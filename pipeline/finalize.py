"""Driver-side end of a run: pack the finished parts into shards, write the figures.

The pipeline leaves every finished song as a part in OUT/_parts; here they are
packed into shards with contiguous names (``train-000000.tar`` ... continuing
after shards an earlier run left; ``transforms.shard.pack``), and ``stats.json``
(plus ``runs/RUN_ID.json``) records the run's figures and its config.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import List

from apache_beam.io.filesystems import FileSystems

from transforms.core import workdir

# Listing, the index and shard numbering live with the work-dir I/O and the shard stage; re-exported.
from transforms.core.workdir import list_uris  # noqa: F401
from transforms.shard.pack import (SHARD_NAME, next_shard_numbers, pack_parts, read_index,  # noqa: F401
                                   read_parts)


def read_jsonl(pattern: str) -> List[dict]:
    records = []
    for uri in list_uris(pattern):
        for line in workdir.read_bytes(uri).decode("utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


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
