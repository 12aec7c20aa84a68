"""``songshard inspect``: what an output folder or a shard holds, and one record in full.

* ``songshard inspect OUT``: shards with sample counts and sizes, splits, failures
  and filtered songs, the last run's figures.
* ``songshard inspect OUT KEY``: one record's labels (lyric line, description,
  tier, sections, quality, provenance) and token shapes;
  ``--export DIR`` writes its audio members (FLAC) and token arrays to DIR.
* ``songshard inspect SHARD.tar``: the samples in one shard.

Reads shards with ``webdataset`` and the index with pyarrow, as a trainer would.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from typing import Iterator, List, Optional

import numpy as np

from pipeline import finalize


def iter_samples(shard_path: str) -> Iterator[dict]:
    """Raw samples (key -> bytes, plus ``__key__``) of one tar shard, in order."""
    import webdataset as wds

    for sample in wds.WebDataset(shard_path, shardshuffle=False, empty_check=False):
        yield sample


def decode_sample(sample: dict) -> dict:
    """json -> dict, *.npy -> arrays; other members stay bytes."""
    out = {}
    for name, value in sample.items():
        if name == "json":
            out[name] = json.loads(value)
        elif name.endswith(".npy"):
            out[name] = np.load(io.BytesIO(value), allow_pickle=False)
        else:
            out[name] = value
    return out


def list_shards(output: str) -> List[str]:
    return sorted(p for p in finalize.list_uris(os.path.join(output, "*.tar")))


def summary_text(output: str) -> str:
    table = finalize.read_index(output)
    lines = [f"{output}: {table.num_rows} samples in {len(list_shards(output))} shards"]
    if table.num_rows:
        counts = Counter(zip(table.column("shard").to_pylist(), table.column("split").to_pylist()))
        for (shard, split), n in sorted(counts.items()):
            size = os.path.getsize(os.path.join(output, shard)) if os.path.exists(os.path.join(output, shard)) else 0
            lines.append(f"  {shard:<22} {split:<6} {n:>6} samples {size / 1e6:>9.2f} MB")
        dur = sum(table.column("duration").to_pylist())
        lines.append(f"  audio: {dur / 3600:.3f} h; splits {dict(Counter(table.column('split').to_pylist()))}")
        tiers = Counter(table.column("musicality").to_pylist())
        lines.append(f"  musicality: {dict(tiers)}")
    failures = finalize.read_jsonl(os.path.join(output, "failures", "*.jsonl"))
    dropped = finalize.read_jsonl(os.path.join(output, "filtered", "*.jsonl"))
    lines.append(f"  failures: {len(failures)}")
    for f in failures:
        lines.append(f"    {f['uri']}: [{f['stage']}] {f['error_type']}: {f['message'][:120]}")
    lines.append(f"  filtered: {len(dropped)}")
    for d in dropped:
        lines.append(f"    {d['uri']}: {'; '.join(d['reasons'])}")
    return "\n".join(lines)


def find_sample(target: str, key: str) -> Optional[dict]:
    """The decoded sample ``key`` from an output folder (via the index) or a shard path."""
    if target.endswith(".tar"):
        shards = [target]
    else:
        table = finalize.read_index(target)
        rows = [r for r in table.to_pylist() if r["key"] == key]
        shards = [os.path.join(target, rows[0]["shard"])] if rows else list_shards(target)
    for shard in shards:
        for sample in iter_samples(shard):
            if sample["__key__"] == key:
                return decode_sample(sample)
    return None


def record_text(sample: dict) -> str:
    rec = sample["json"]
    labels = rec.get("labels", {})
    st = labels.get("structure", {})
    q = labels.get("quality", {})
    lines = [
        f"key:          {rec['key']}   split: {rec['split']}   duration: {rec['duration']:.2f}s",
        f"source:       {rec['uri']}   ({rec.get('artist') or '?'} - {rec.get('title') or '?'})",
        f"gt_lyric:     {rec.get('gt_lyric', '')}",
        f"descriptions: {rec.get('descriptions', '')}",
        f"musicality:   {rec.get('musicality', '')}   pure music: {rec.get('pure_music')}",
        f"bpm:          {st.get('bpm')}   sections: " + ", ".join(
            f"{s.get('tag', s.get('label'))}[{s['start']:.1f}-{s['end']:.1f}]" for s in st.get("sections", [])),
        "quality:      " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in q.items() if not isinstance(v, (dict, list))),
    ]
    for name, value in sorted(sample.items()):
        if isinstance(value, np.ndarray):
            lines.append(f"{name:<13} {value.dtype} {list(value.shape)}")
        elif isinstance(value, bytes):
            lines.append(f"{name:<13} {len(value)} bytes")
    lines.append("provenance:")
    for stage, prov in sorted(rec.get("provenance", {}).items()):
        lines.append(f"  {stage:<10} {prov.get('backend')} {prov.get('version', '')} "
                     f"{prov.get('weights_sha256', '')[:12]} {prov.get('note', '')}".rstrip())
    return "\n".join(lines)


def export_sample(sample: dict, out_dir: str) -> List[str]:
    """Write the sample's members to ``out_dir`` (audio as FLAC, arrays as .npy, json)."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    key = sample["json"]["key"]
    for name, value in sample.items():
        if name.startswith("__"):
            continue
        path = os.path.join(out_dir, f"{key}.{name}")
        if name == "json":
            with open(path, "w") as f:
                json.dump(value, f, indent=2)
        elif isinstance(value, np.ndarray):
            np.save(path, value)
        else:
            with open(path, "wb") as f:
                f.write(value)
        written.append(path)
    return sorted(written)
