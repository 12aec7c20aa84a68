"""Shard stage: finished songs in; WebDataset tar shards under temporary names out.

Songs are bucketed by (split, stable hash of the song id), each bucket is sorted
by key and written as tar files of at most ``--shard_max_samples`` samples and
``--shard_max_bytes`` bytes, each with a Parquet index part beside it. Tars are
written under ``TMP/`` names; the driver renames them to ``split-000000.tar``
when the run has finished (``pipeline.finalize``), so a shard under its final
name is always complete.

A sample: ``__key__`` = song id (hex, no dots), ``json`` (every label),
``tokens.npy`` (int [3, T]), ``prompt.npy`` (int [3, T']) and with
``--shard_write_audio`` ``mix.flac``, ``vocals.flac``, ``accompaniment.flac``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import uuid
from typing import Dict, Iterable, List

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from schemas.arrow import rows_to_table
from schemas.records import Song, index_row, sample_json
from transforms.core import workdir
from transforms.core.config import StageConfig
from transforms.core.stage import Configurable

TAR_BLOCK = 512
AUDIO_MEMBERS = ("mix", "vocals", "accompaniment")


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def flac_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(audio.T, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def sample_members(song: Song, run: dict, write_audio: bool) -> Dict[str, bytes]:
    """The files of one sample, name (extension after the key) -> bytes."""
    members = {"json": json.dumps(sample_json(song, run), ensure_ascii=False).encode("utf-8")}
    for name, array in sorted(song.tokens.items()):
        members[f"{name}.npy"] = npy_bytes(np.asarray(array))
    if write_audio:
        for name in AUDIO_MEMBERS:
            if name in song.audio:
                audio, sr = workdir.load_audio(song.audio[name])
                members[f"{name}.flac"] = flac_bytes(audio, sr)
    return members


def tar_size(members: Dict[str, bytes]) -> int:
    """Bytes the members take in a tar: a header block each plus data padded to blocks."""
    return sum(TAR_BLOCK + math.ceil(len(b) / TAR_BLOCK) * TAR_BLOCK for b in members.values())


def plan_shards(sizes: List[int], max_samples: int, max_bytes: float) -> List[List[int]]:
    """Group consecutive sample indices into shards within both limits.

    A sample larger than ``max_bytes`` alone still gets a shard of its own.
    """
    shards: List[List[int]] = []
    current: List[int] = []
    current_bytes = 0
    for i, size in enumerate(sizes):
        if current and (len(current) >= max_samples or current_bytes + size > max_bytes):
            shards.append(current)
            current, current_bytes = [], 0
        current.append(i)
        current_bytes += size
    if current:
        shards.append(current)
    return shards


def write_tar(uri: str, samples: Iterable[tuple]) -> int:
    """Write (key, members) samples to a tar at ``uri``; returns bytes written."""
    import webdataset as wds

    count = 0
    with workdir.open_write(uri) as stream:
        writer = wds.TarWriter(stream)
        for key, members in samples:
            if "." in key:
                raise ValueError(f"sample key {key!r} holds a dot; WebDataset keys cannot")
            writer.write({"__key__": key, **members})
            count += 1
        writer.close()
    return count


PARTS = "_parts"  # OUT/_parts/KEY.tar + KEY.json: finished songs not yet packed into shards


def part_uris(parts_dir: str, key: str) -> Dict[str, str]:
    return {"tar": workdir.join(parts_dir, key + ".tar"), "json": workdir.join(parts_dir, key + ".json")}


def write_atomically(uri: str, data: bytes) -> None:
    """Write ``data`` so that ``uri`` is whole or absent, never truncated.

    On a disk: a temporary name, then a rename. In an object store (``gs://``, ``s3://``) an upload
    is published whole when it completes and not at all if it fails, so the object is written under
    its name at once: a rename there is a copy and a delete, two more requests for every file.
    """
    from apache_beam.io.filesystems import FileSystems

    if "://" in uri and not uri.startswith("file://"):
        workdir.write_bytes(uri, data)
        return
    temp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
    workdir.write_bytes(temp, data)
    FileSystems.rename([temp], [uri])


def part_bytes(key: str, members: Dict[str, bytes]) -> bytes:
    """One sample as a complete tar (its members adjacent, under one key)."""
    import webdataset as wds

    if "." in key:
        raise ValueError(f"sample key {key!r} holds a dot; WebDataset keys cannot")
    buf = io.BytesIO()
    writer = wds.TarWriter(buf)
    writer.write({"__key__": key, **members})
    writer.close()
    return buf.getvalue()


def write_parquet(uri: str, rows) -> None:
    """IndexRows as a Parquet file at ``uri`` (the schema derived from IndexRow)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(rows_to_table(rows), buf)
    workdir.write_bytes(uri, buf.getvalue())


class _WritePart(beam.DoFn):
    """A finished song -> its part (OUT/_parts/KEY.tar, then KEY.json with its index row) and a small
    record of it. Idempotent: a retried bundle rewrites the same two names; the json, written last,
    marks the part complete."""

    def __init__(self, parts_dir: str, run: dict, write_audio: bool):
        self.parts_dir, self.run, self.write_audio = parts_dir, run, write_audio

    def setup(self):
        self.samples = Metrics.counter("shard", "parts")

    def process(self, song: Song):
        members = sample_members(song, self.run, self.write_audio)
        data = part_bytes(song.song_id, members)
        uris = part_uris(self.parts_dir, song.song_id)
        write_atomically(uris["tar"], data)
        row = dataclasses.asdict(index_row(song, shard="", run_id=self.run["run_id"]))
        record = {"key": song.song_id, "uri": song.uri, "split": song.split, "bytes": len(data), "row": row}
        write_atomically(uris["json"], json.dumps(record, sort_keys=True, default=str).encode("utf-8"))
        self.samples.inc()
        yield {"key": song.song_id, "split": song.split, "bytes": len(data)}


class WriteShards(Configurable, beam.PTransform):
    """Songs with ``split`` set in; one small record per written part out.

    Each song is written as soon as it is finished, on the worker that finished it, as a
    complete one-sample tar in OUT/_parts (temporary name, then rename), so a run killed at
    any moment keeps every song it finished; the driver packs parts into shards
    (:func:`transforms.shard.pack.pack_parts`) at the end of the run, or of the next one.
    Flags: ``--shard_*``.
    """

    stage = "shard"

    def __init__(self, config: StageConfig, parts_dir: str, run: dict):
        super().__init__()
        self.parts_dir = parts_dir
        self.run = run
        self.write_audio = bool(config.get("write_audio", False))

    @classmethod
    def add_options(cls, group) -> None:
        group.add_argument("--shard_max_samples", type=int, default=1000, help="samples per shard, at most")
        group.add_argument("--shard_max_bytes", type=float, default=1e9, help="bytes per shard, about")
        group.add_argument("--shard_write_audio", action="store_true",
                           help="put the mix and the vocal / accompaniment stems in each sample as FLAC")

    @classmethod
    def configure(cls, values) -> StageConfig:
        config = super().configure(values)
        if int(config.get("max_samples", 1000)) < 1 or float(config.get("max_bytes", 1e9)) <= 0:
            raise ValueError("--shard_max_samples and --shard_max_bytes must be positive")
        return config

    def expand(self, pcoll):
        return pcoll | "WritePart" >> beam.ParDo(_WritePart(self.parts_dir, self.run, self.write_audio))
