"""What the report reads from an output folder, and the table data file it writes.

In: an OUT folder as ``songshard run`` leaves it (index parquet, failures and
filtered jsonl, stats.json, runs/*.json, shards). Out: :class:`OutData`, plain
dicts and lists the page builders render, and ``data/index.js``: the index's
table columns in a compact, dictionary-encoded form that a page opened from
``file://`` can load with a ``<script>`` tag (browsers refuse ``fetch`` of local
files).

A missing index, failures or runs folder reads as empty; a malformed JSON file
raises ``json.JSONDecodeError`` naming nothing more, as the pipeline wrote it.
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

# The columns the samples table shows, in order: (column, heading, kind). "cat" columns are
# dictionary-encoded in the data file (few distinct values), "num" are numbers, "text" strings.
TABLE_COLUMNS = (
    ("key", "key", "text"), ("split", "split", "cat"), ("artist", "artist", "text"),
    ("title", "title", "text"), ("duration", "duration s", "num"), ("genre", "genre", "cat"),
    ("emotion", "emotion", "cat"), ("gender", "gender", "cat"), ("tier", "tier", "cat"),
    ("language", "lang", "cat"), ("language_probability", "p(lang)", "num"), ("bpm", "bpm", "num"),
    ("loudness_lufs", "LUFS", "num"), ("num_words", "words", "num"), ("pure_music", "pure music", "cat"),
    ("shard", "shard", "cat"), ("descriptions", "descriptions", "text"), ("uri", "source", "text"),
)
DATA_VAR = "SONGSHARD_INDEX"


@dataclass
class OutData:
    """Everything the overview shows about one OUT folder."""

    out_dir: str
    rows: List[dict]  # index rows (IndexRow fields) plus "emotion" and "tier"
    failures: List[dict] = field(default_factory=list)
    filtered: List[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    runs: List[dict] = field(default_factory=list)
    shards: List[dict] = field(default_factory=list)  # {"shard", "split", "samples", "bytes", "exists"}


def _vocabulary() -> dict:
    # The tags stage's controlled vocabulary is the one list of emotion terms; its module moved
    # from transforms.tags to transforms.tags in the tree's restructuring, so both are tried.
    try:
        from transforms.tags.metadata import load_vocabulary
    except ImportError:
        from transforms.tags.metadata import load_vocabulary
    return load_vocabulary()


def tier_names() -> Sequence[str]:
    """Musicality tier names best first ("very-high" ... "very-low"), from the quality stage."""
    from transforms.core.tiers import TIER_NAMES

    return TIER_NAMES


def short_tier(tier: str) -> str:
    """"[Musicality-high]" -> "high"; "" stays ""."""
    return str(tier or "").strip("[] ").replace("Musicality-", "").lower()


def emotion_of(tags: Optional[Sequence[str]], emotions: Sequence[str]) -> str:
    """The first of a row's tags that is an emotion term ("" if none).

    The index keeps the tag list (gender, genre, emotion, instruments) but no emotion column;
    the tags stage writes at most one emotion, so the first match is it.
    """
    known = set(emotions)
    for tag in tags or []:
        if tag in known:
            return tag
    return ""


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_runs(out_dir: str) -> List[dict]:
    """Every runs/*.json of OUT, oldest first (run ids start with a timestamp; file time breaks ties)."""
    paths = glob.glob(os.path.join(out_dir, "runs", "*.json"))
    paths.sort(key=lambda p: (str(_read_json(p).get("run_id", "")), os.path.getmtime(p)))
    return [_read_json(p) for p in paths]


def shard_table(out_dir: str, rows: Sequence[dict]) -> List[dict]:
    """One entry per shard named by the index or found on disk: split, samples (from the index), bytes,
    and whether the file exists (an index can name a shard that was deleted or never copied)."""
    counts = Counter(r["shard"] for r in rows)
    splits = {r["shard"]: r["split"] for r in rows}
    names = set(counts) | {os.path.basename(p) for p in glob.glob(os.path.join(out_dir, "*.tar"))}
    out = []
    for name in sorted(names):
        path = os.path.join(out_dir, name)
        exists = os.path.exists(path)
        out.append({"shard": name, "split": splits.get(name, name.split("-")[0]), "samples": counts.get(name, 0),
                    "bytes": os.path.getsize(path) if exists else 0, "exists": exists})
    return out


def load_out(out_dir: str) -> OutData:
    """Read OUT: index rows (with "emotion" and "tier" added), failures, filtered, stats, runs, shards."""
    from pipeline import finalize

    rows = finalize.read_index(out_dir).to_pylist()
    emotions = _vocabulary().get("emotion", [])
    for row in rows:
        row["emotion"] = emotion_of(row.get("tags"), emotions)
        row["tier"] = short_tier(row.get("musicality", ""))
    stats_path = os.path.join(out_dir, "stats.json")
    return OutData(
        out_dir=out_dir, rows=rows,
        failures=finalize.read_jsonl(os.path.join(out_dir, "failures", "*.jsonl")),
        filtered=finalize.read_jsonl(os.path.join(out_dir, "filtered", "*.jsonl")),
        stats=_read_json(stats_path) if os.path.exists(stats_path) else {},
        runs=read_runs(out_dir), shards=shard_table(out_dir, rows))


def _cell(value, kind: str):
    """A JSON-able table cell: numbers rounded (NaN -> None), booleans "yes" / "no", None -> ""."""
    if kind == "num":
        if value is None or isinstance(value, bool):
            return None if value is None else int(value)
        f = float(value)
        return round(f, 3) if math.isfinite(f) else None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def table_payload(rows: Sequence[dict], page_keys: Sequence[str] = ()) -> dict:
    """The samples table's data: {"columns", "dicts", "rows", "pages"}.

    ``rows[i][j]`` is column j of row i: an index into ``dicts[column]`` for "cat" columns,
    a number (or null) for "num", a string for "text". ``pages`` lists the row indices that
    have a sample page.
    """
    dicts: Dict[str, List[str]] = {c: [] for c, _, kind in TABLE_COLUMNS if kind == "cat"}
    lookup: Dict[str, Dict[str, int]] = {c: {} for c in dicts}
    out_rows = []
    for row in rows:
        cells = []
        for col, _, kind in TABLE_COLUMNS:
            value = _cell(row.get(col), kind)
            if kind == "cat":
                if value not in lookup[col]:
                    lookup[col][value] = len(dicts[col])
                    dicts[col].append(value)
                value = lookup[col][value]
            cells.append(value)
        out_rows.append(cells)
    wanted = set(page_keys)
    pages = [i for i, row in enumerate(rows) if str(row["key"]) in wanted]
    columns = [{"name": c, "label": label, "kind": kind} for c, label, kind in TABLE_COLUMNS]
    return {"columns": columns, "dicts": dicts, "rows": out_rows, "pages": pages}


def write_data_js(path: str, payload: dict, var: str = DATA_VAR) -> str:
    """Write ``window.VAR = {...};`` to ``path`` (folders made); returns the path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # "\/" is JSON for "/": URIs in the data read the same, and the file holds no "http(s)://" string.
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("://", ":\\/\\/")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"window.{var} = {text};\n")
    return path


def read_data_js(path: str, var: str = DATA_VAR) -> dict:
    """The payload back from a file :func:`write_data_js` wrote (for tests and tools)."""
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    prefix = f"window.{var} = "
    if not text.startswith(prefix):
        raise ValueError(f"{path} does not start with {prefix!r}")
    return json.loads(text[len(prefix):].rstrip(";"))
