"""Dedupe stage: one song per content id, however many names it was found under."""

from __future__ import annotations

import apache_beam as beam

from schemas.records import Dropped

DUPLICATE = "duplicate"


def _keep_first(item):
    song_id, songs = item
    songs = sorted(songs, key=lambda s: s.uri)
    if any(s.label("decode", "already_in_output") for s in songs):
        for dup in songs:
            yield beam.pvalue.TaggedOutput(DUPLICATE, Dropped(
                uri=dup.uri, song_id=song_id, reasons=["duplicate_of: a record already in the output"],
                duration=dup.duration, stage="dedupe"))
        return
    yield songs[0]
    for dup in songs[1:]:
        yield beam.pvalue.TaggedOutput(DUPLICATE, Dropped(
            uri=dup.uri, song_id=song_id, reasons=[f"duplicate_of: {songs[0].uri}"],
            duration=dup.duration, stage="dedupe"))


class DropDuplicates(beam.PTransform):
    """Decoded songs in; ``(unique songs, Dropped duplicates)`` out.

    Of songs sharing a ``song_id`` the one with the smallest URI is kept, so the
    choice does not depend on worker order. Only small Song records are grouped;
    their audio stays in the work dir.
    """

    def expand(self, pcoll):
        out = (pcoll
               | "KeyById" >> beam.Map(lambda s: (s.song_id, s))
               | "GroupById" >> beam.GroupByKey()
               | "KeepFirst" >> beam.FlatMap(_keep_first).with_outputs(DUPLICATE, main="unique"))
        return out.unique, out[DUPLICATE]
