"""The songshard graph, composed from ``transforms/``: the ordered list of stages and its wiring.

    read (on workers, less what OUT holds) -> spread -> decode -> dedupe -> duration filter -> separate -> structure -> lyrics
         -> tags -> quality -> tokens -> filter -> split -> shard

Adding a model stage is one package in ``transforms/`` and one line in
``MODEL_STAGES`` (plus its test file). Every stage's failures are flattened into
one dead-letter collection; every drop into one filtered collection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Sequence

import apache_beam as beam

from pipeline.progress import CountDone
from transforms.decode import DecodeAudio
from transforms.dedupe import DropDuplicates
from transforms.core.facts import MAX_SONG_SECONDS
from transforms.discover.read import ReadSongs
from transforms.discover.spread import BalancedSpread
from transforms.filter import FilterSongs
from transforms.lyrics import TranscribeLyrics
from transforms.quality import MeasureQuality
from transforms.separate import SeparateStems
from transforms.shard import WriteShards
from transforms.split import AssignSplit
from transforms.structure import AnalyzeStructure
from transforms.tags import TagSongs
from transforms.tokens import EncodeTokens

# The model stages, in graph order: each takes songs and returns (songs, dead letters).
MODEL_STAGES: List[type] = [
    SeparateStems,
    AnalyzeStructure,
    TranscribeLyrics,
    TagSongs,
    MeasureQuality,
    EncodeTokens,
]


def configurable_stages(model_stages: Sequence[type] | None = None) -> List[type]:
    """Every stage with flags of its own, in graph order."""
    return [DecodeAudio, *(MODEL_STAGES if model_stages is None else model_stages), FilterSongs, AssignSplit,
            WriteShards]


@dataclass
class GraphOutputs:
    shards: Any
    failures: Any
    dropped: Any


def _json_line(record) -> str:
    return json.dumps(record.to_dict(), sort_keys=True, default=str)


def _write_jsonl(pcoll, label: str, prefix: str) -> None:
    _ = (pcoll | f"{label}Json" >> beam.Map(_json_line)
         | f"Write{label}" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl", skip_if_empty=True))


def spread(config, work_dir: str = "") -> beam.PTransform:
    """How songs reach the workers: pulled longest first by a local run's worker processes
    (:class:`BalancedSpread`), else a plain reshuffle that leaves balancing to the runner."""
    if config.local_workers > 1:
        return BalancedSpread(config.local_workers, config.stage("decode").get("max_seconds", MAX_SONG_SECONDS),
                              work_dir)
    return beam.Reshuffle()


def build(p: beam.Pipeline, config, context, paths: dict) -> GraphOutputs:
    """Compose the graph on ``p`` for the run's input; returns the shard-info, failure and drop collections.

    ``config`` is the run's :class:`pipeline.config.RunConfig` (its ``input``, and its
    ``model_stages`` are the stages wired in), ``context`` its RunContext; ``paths``
    holds ``parts`` (OUT/_parts: each finished song, written at once), ``failures``,
    ``filtered`` (file prefixes for JSONL) and ``progress`` (marker folder). The
    input is read on workers and what OUT holds is joined away there: nothing per
    song is pickled into the graph, and no song waits for another.
    """
    songs, done_ids = p | "read" >> ReadSongs(config.input, config.output, config.retry_failed,
                                              lyrics_table=config.stage(TranscribeLyrics.stage).get("table", ""))
    songs = songs | "Spread" >> spread(config, context.work_dir)
    songs, decode_failed = songs | "decode" >> DecodeAudio(config.stage("decode"), context, done_ids)
    songs, duplicates = songs | "dedupe" >> DropDuplicates(config.dedupe)
    songs, too_long_or_short = songs | "filter_duration" >> FilterSongs(config.stage("filter"), rules=("duration",))
    failures = [decode_failed]
    for stage in config.model_stages:
        songs, failed = songs | stage.stage >> stage(config.stage(stage.stage), context)
        failures.append(failed)
    songs, filtered = songs | "filter" >> FilterSongs(config.stage("filter"), rules=("language", "quality"))
    songs = (songs
             | "split" >> AssignSplit(config.stage("split"))
             | "mark_ok" >> beam.ParDo(CountDone(paths["progress"], "ok")))
    shards = songs | "shard" >> WriteShards(config.stage("shard"), paths["parts"], context.sample_run())

    all_failed = (failures | "flatten_failures" >> beam.Flatten()
                  | "mark_failed" >> beam.ParDo(CountDone(paths["progress"], "failed")))
    all_dropped = ((duplicates, too_long_or_short, filtered) | "flatten_dropped" >> beam.Flatten()
                   | "mark_dropped" >> beam.ParDo(CountDone(paths["progress"], "dropped")))
    _write_jsonl(all_failed, "Failures", paths["failures"])
    _write_jsonl(all_dropped, "Dropped", paths["filtered"])
    return GraphOutputs(shards=shards, failures=all_failed, dropped=all_dropped)
