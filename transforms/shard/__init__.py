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

import io
import json
import math
from typing import Dict, Iterable, List

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from schemas.arrow import rows_to_table
from schemas.records import ShardInfo, Song, hash_fraction, index_row, sample_json
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


def bucket_count(expected_songs: float, max_samples: int) -> int:
    """Writer groups for a split: one per shard's worth of songs, at least one."""
    return max(1, math.ceil(expected_songs / max(1, max_samples)))


class _WriteBucket(beam.DoFn):
    def __init__(self, tmp_dir: str, run: dict, max_samples: int, max_bytes: float, write_audio: bool):
        self.tmp_dir = tmp_dir
        self.run = run
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.write_audio = write_audio

    def setup(self):
        self.samples = Metrics.counter("shard", "samples")
        self.shards = Metrics.counter("shard", "shards")

    def process(self, item):
        (split, bucket), songs = item
        songs = sorted(songs, key=lambda s: s.song_id)
        members = [sample_members(s, self.run, self.write_audio) for s in songs]
        plan = plan_shards([tar_size(m) for m in members], self.max_samples, self.max_bytes)
        for seq, idx in enumerate(plan):
            name = f"{split}-b{bucket:05d}-{seq:05d}"
            tar_uri = workdir.join(self.tmp_dir, name + ".tar")
            write_tar(tar_uri, ((songs[i].song_id, members[i]) for i in idx))
            rows = [index_row(songs[i], shard=name + ".tar", run_id=self.run["run_id"]) for i in idx]
            index_uri = workdir.join(self.tmp_dir, name + ".parquet")
            _write_parquet(index_uri, rows)
            self.samples.inc(len(idx))
            self.shards.inc()
            yield ShardInfo(split=split, temp_uri=tar_uri, temp_index_uri=index_uri, writer=bucket,
                            seq=seq, samples=len(idx), bytes=sum(tar_size(members[i]) for i in idx) + 1024)


def _write_parquet(uri: str, rows) -> None:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(rows_to_table(rows), buf)
    workdir.write_bytes(uri, buf.getvalue())


class WriteShards(Configurable, beam.PTransform):
    """Songs with ``split`` set in; one :class:`ShardInfo` per temporary shard out.

    Songs of a split are spread over about one writer group per shard's worth of
    the ``expected_songs`` that split will get (``fractions``: the split stage's
    shares), so a large run writes in parallel and a small one writes one shard
    per split. Flags: ``--shard_*``.
    """

    stage = "shard"

    def __init__(self, config: StageConfig, tmp_dir: str, run: dict, fractions: Dict[str, float],
                 expected_songs: int = 0):
        super().__init__()
        self.tmp_dir = tmp_dir
        self.run = run
        self.max_samples = int(config.get("max_samples", 1000))
        self.max_bytes = float(config.get("max_bytes", 1e9))
        self.write_audio = bool(config.get("write_audio", False))
        self.buckets = {split: bucket_count(expected_songs * f, self.max_samples)
                        for split, f in fractions.items()}

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
        buckets = self.buckets
        return (pcoll
                | "KeyByBucket" >> beam.Map(
                    lambda s: ((s.split, int(hash_fraction(s.song_id) * buckets.get(s.split, 1))), s))
                | "GroupByBucket" >> beam.GroupByKey()
                | "WriteBucket" >> beam.ParDo(_WriteBucket(self.tmp_dir, self.run, self.max_samples,
                                                           self.max_bytes, self.write_audio)))
