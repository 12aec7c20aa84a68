"""The songshard graph: discover -> decode -> separate -> structure -> lyrics -> tags &
quality -> codec tokens -> filter -> split -> shard, composed from ``transforms/``.

Adding a stage is one entry in :func:`label_stages` (plus its file, its options
group and its test file). Every stage's failures are flattened into one
dead-letter collection; every drop into one filtered collection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Sequence

import apache_beam as beam

from pipeline.progress import MarkDone
from schemas.records import Song
from transforms.base import check_backend
from transforms.decode import DecodeAudio
from transforms.dedupe import DropDuplicates
from transforms.filter_songs import FilterSongs
from transforms.shard import WriteShards
from transforms.split import AssignSplit


def label_stages() -> List[tuple]:
    """(label, PTransform class) of the model stages, in graph order."""
    from transforms.analyze_structure import AnalyzeStructure
    from transforms.encode_tokens import EncodeTokens
    from transforms.separate import SeparateStems
    from transforms.tag_songs import TagSongs
    from transforms.transcribe import TranscribeLyrics

    return [
        ("Separate", SeparateStems),
        ("Structure", AnalyzeStructure),
        ("Lyrics", TranscribeLyrics),
        ("TagsAndQuality", TagSongs),
        ("CodecTokens", EncodeTokens),
    ]


def check_backends(options: Any, stages: Sequence[tuple]) -> dict:
    """Start-up check of every stage's backend in the driver; {stage: provenance dict}.

    Raises BackendUnavailable (with the backend's own message) before any song is read.
    """
    from transforms.base import backend_choice

    found = {}
    for _, transform in stages:
        name, opts = backend_choice(options, transform.backend_option)
        if name:
            found[transform.fn_class.stage] = check_backend(transform.fn_class.stage, name, opts).to_dict()
    return found


@dataclass
class GraphOutputs:
    shards: Any
    failures: Any
    dropped: Any


def _json_line(record) -> str:
    return json.dumps(record.to_dict(), sort_keys=True, default=str)


def build(p: beam.Pipeline, options: Any, uris: Sequence[str], run: dict, paths: dict,
          stages: Sequence[tuple] | None = None, skip_uris=(), skip_ids=()) -> GraphOutputs:
    """Compose the graph on ``p`` for ``uris``; returns the shard-info, failure and drop collections.

    ``paths`` holds ``tmp`` (temporary shards and index parts), ``failures``,
    ``filtered`` (file prefixes for JSONL) and ``progress`` (marker folder).
    """
    stages = label_stages() if stages is None else stages
    songs = (p
             | "ListSongs" >> beam.Create([Song(uri=u) for u in uris])
             | "Spread" >> beam.Reshuffle())
    songs, decode_failed = songs | "Decode" >> DecodeAudio(
        options, skip_uris=frozenset(skip_uris), skip_ids=frozenset(skip_ids))
    songs, duplicates = songs | "Dedupe" >> DropDuplicates()
    songs, too_long_or_short = songs | "FilterDuration" >> FilterSongs(options, rules=("duration",))
    failures = [decode_failed]
    for label, transform in stages:
        songs, failed = songs | label >> transform(options)
        failures.append(failed)
    songs, filtered = songs | "Filter" >> FilterSongs(options, rules=("language", "quality"))
    songs = (songs
             | "Split" >> AssignSplit(options)
             | "MarkOk" >> beam.ParDo(MarkDone(paths["progress"], "ok")))
    shards = songs | "Shard" >> WriteShards(paths["tmp"], run, options, expected_songs=len(uris))

    all_failed = (failures | "FlattenFailures" >> beam.Flatten()
                  | "MarkFailed" >> beam.ParDo(MarkDone(paths["progress"], "failed")))
    all_dropped = ((duplicates, too_long_or_short, filtered) | "FlattenDropped" >> beam.Flatten()
                   | "MarkDropped" >> beam.ParDo(MarkDone(paths["progress"], "dropped")))
    _ = (all_failed | "FailureJson" >> beam.Map(_json_line)
         | "WriteFailures" >> beam.io.WriteToText(paths["failures"], file_name_suffix=".jsonl",
                                                  skip_if_empty=True))
    _ = (all_dropped | "DroppedJson" >> beam.Map(_json_line)
         | "WriteDropped" >> beam.io.WriteToText(paths["filtered"], file_name_suffix=".jsonl",
                                                 skip_if_empty=True))
    _ = (shards | "ShardJson" >> beam.Map(lambda s: json.dumps(s.__dict__, sort_keys=True))
         | "WriteManifest" >> beam.io.WriteToText(paths["manifest"], file_name_suffix=".jsonl",
                                                  skip_if_empty=True))
    return GraphOutputs(shards=shards, failures=all_failed, dropped=all_dropped)
