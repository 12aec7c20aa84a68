"""Pull the samples that get a page out of the shards, and write their media files.

In: an OUT folder, the index rows, the keys to extract. Out: decoded samples
(``json`` -> dict, ``*.npy`` -> arrays, audio members as bytes, the same shape
``inspect_shards.decode_sample`` gives) and, per sample, ``media/KEY/``: the
audio members as they are in the shard (FLAC), the spectrogram and token PNGs.

Shards are read with ``tarfile`` in random-access mode: headers are read and the
data of samples nobody asked for is seeked over, so a page for one sample of a
many-gigabyte shard does not read the whole shard.

Fails: ``tarfile.ReadError`` for a shard that is not a tar; a key the index names
but its shard lacks comes back with ``None`` instead of a sample.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections import defaultdict
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from pipeline.report import media

AUDIO_MEMBERS = ("mix.flac", "vocals.flac", "accompaniment.flac")
TOKEN_MEMBERS = ("tokens.npy", "prompt.npy")


def safe_name(key: str) -> str:
    """A key usable as a file name (keys are hex digests; anything else is replaced by ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(key)) or "_"


def split_member(name: str) -> Tuple[str, str]:
    """("KEY", "ext") of a tar member name: the key runs up to the first dot of the base name."""
    base = name.rsplit("/", 1)[-1]
    key, _, ext = base.partition(".")
    return key, ext


def iter_members(shard_path: str, keys: Iterable[str]) -> Iterator[Tuple[str, Dict[str, bytes]]]:
    """(key, {ext: bytes}) for each wanted sample of one shard, in shard order; others are skipped.

    A sample's members are adjacent in a WebDataset tar, so one sample is held in memory at a time.
    """
    wanted = set(keys)
    key_now, members = None, {}
    with tarfile.open(shard_path, "r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, ext = split_member(info.name)
            if key != key_now and members:
                yield key_now, members
                members = {}
            key_now = key
            if key in wanted:
                handle = tar.extractfile(info)
                members[ext] = handle.read() if handle else b""
    if members:
        yield key_now, members


def plan(rows: Sequence[dict], keys: Sequence[str]) -> List[dict]:
    """The index rows of ``keys`` in the order :func:`iter_samples` yields them (by shard, then as given)."""
    by_key = {str(r["key"]): r for r in rows}
    chosen = [by_key[k] for k in keys if k in by_key]
    order = {k: i for i, k in enumerate(keys)}
    return sorted(chosen, key=lambda r: (str(r["shard"]), order[str(r["key"])]))


def iter_samples(out_dir: str, rows: Sequence[dict], keys: Sequence[str]) -> Iterator[Tuple[dict, Optional[dict]]]:
    """(index row, decoded sample or None when its shard lacks it) for each key, in :func:`plan` order.

    Streams: one sample is decoded at a time.
    """
    from pipeline.inspect_shards import decode_sample

    planned = plan(rows, keys)
    by_shard: Dict[str, List[dict]] = defaultdict(list)
    for row in planned:
        by_shard[str(row["shard"])].append(row)
    for shard in sorted(by_shard):
        path = os.path.join(out_dir, shard)
        pending = {str(r["key"]): r for r in by_shard[shard]}
        if os.path.exists(path):
            for key, raw in iter_members(path, pending):
                if "json" in raw and key in pending:
                    yield pending.pop(key), decode_sample(raw)
        for row in pending.values():
            yield row, None


def write_media(sample: dict, media_dir: str) -> dict:
    """Write a sample's audio, spectrogram and token images under ``media_dir``.

    Returns {"audio": {member: file name}, "spectrogram": name | None, "waveform_svg": str,
    "tokens": {member: file name}} with names relative to ``media_dir``.
    """
    os.makedirs(media_dir, exist_ok=True)
    out: dict = {"audio": {}, "spectrogram": None, "waveform_svg": "", "tokens": {}}
    for member in AUDIO_MEMBERS:
        if isinstance(sample.get(member), bytes):
            with open(os.path.join(media_dir, member), "wb") as f:
                f.write(sample[member])
            out["audio"][member] = member
    if "mix.flac" in out["audio"]:
        mono, sr = media.decode_mono(sample["mix.flac"])
        media.save_spectrogram_png(mono, sr, os.path.join(media_dir, "spectrogram.png"))
        out["spectrogram"] = "spectrogram.png"
        out["waveform_svg"] = media.waveform_svg(mono)
    for member in TOKEN_MEMBERS:
        if member in sample and getattr(sample[member], "ndim", 0) >= 2:
            name = member.replace(".npy", ".png")
            media.save_tokens_png(sample[member], os.path.join(media_dir, name))
            out["tokens"][member] = name
    return out
