"""Dedupe stage: one song per content id, however many names it was found under.

Two ways (``--dedupe``):

- ``claims`` (default): decode has already claimed each song's content id in the work dir
  (:mod:`transforms.core.claims`), first come first served, and labelled the copies that came
  later ``duplicate_of``. This stage only routes them: nothing is grouped, so no song waits for
  another. Which copy is kept depends on which was decoded first.
- ``group``: songs are grouped by content id and the smallest URI is kept, whatever the worker
  order. The grouping is a shuffle: no song goes on before every song is decoded.

Either way a song whose audio OUT already holds (decode's ``already_in_output``) is dropped.
"""

from __future__ import annotations

import apache_beam as beam

from schemas.records import Dropped

DUPLICATE = "duplicate"
MODES = ("claims", "group")


def _dropped(song, reason: str) -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(DUPLICATE, Dropped(
        uri=song.uri, song_id=song.song_id, reasons=[f"duplicate_of: {reason}"],
        duration=song.duration, stage="dedupe"))


def _route_claimed(song):
    if song.label("decode", "already_in_output"):
        yield _dropped(song, "a record already in the output")
        return
    owner = song.label("decode", "duplicate_of")
    if owner:
        yield _dropped(song, owner)
        return
    yield song


def _keep_first(item):
    song_id, songs = item
    songs = sorted(songs, key=lambda s: s.uri)
    if any(s.label("decode", "already_in_output") for s in songs):
        for dup in songs:
            yield _dropped(dup, "a record already in the output")
        return
    yield songs[0]
    for dup in songs[1:]:
        yield _dropped(dup, songs[0].uri)


class DropDuplicates(beam.PTransform):
    """Decoded songs in; ``(unique songs, Dropped duplicates)`` out (``mode``: one of :data:`MODES`).

    In ``group`` mode, of songs sharing a ``song_id`` the one with the smallest URI is kept; only
    small Song records are grouped, their audio stays in the work dir.
    """

    def __init__(self, mode: str = "claims"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown dedupe mode {mode!r}; choose one of {MODES}")
        self.mode = mode

    def expand(self, pcoll):
        if self.mode == "claims":
            out = pcoll | "RouteClaimed" >> beam.FlatMap(_route_claimed).with_outputs(DUPLICATE, main="unique")
        else:
            out = (pcoll
                   | "KeyById" >> beam.Map(lambda s: (s.song_id, s))
                   | "GroupById" >> beam.GroupByKey()
                   | "KeepFirst" >> beam.FlatMap(_keep_first).with_outputs(DUPLICATE, main="unique"))
        return out.unique, out[DUPLICATE]
