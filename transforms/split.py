"""Split stage: train / valid / test by a stable hash of the artist.

One artist never straddles splits; songs with no known artist are split by
their own id. Fractions come from ``--split_valid_fraction`` and
``--split_test_fraction``.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from schemas.records import Song, hash_fraction
from transforms.base import option_values


def normalise_artist(artist: str) -> str:
    return " ".join(artist.lower().split())


def split_for(artist: str, song_id: str, valid_fraction: float, test_fraction: float) -> str:
    """'valid' | 'test' | 'train' for a song, stable across runs and machines."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction > 1:
        raise ValueError("split fractions must be >= 0 and sum to at most 1")
    key = ("artist:" + normalise_artist(artist)) if artist.strip() else ("song:" + song_id)
    x = hash_fraction(key)
    if x < valid_fraction:
        return "valid"
    if x < valid_fraction + test_fraction:
        return "test"
    return "train"


class AssignSplit(beam.PTransform):
    """Songs in; the same songs with ``song.split`` set out."""

    def __init__(self, options: Any = None):
        super().__init__()
        values = option_values(options)
        self.valid = float(values.get("split_valid_fraction", 0.05))
        self.test = float(values.get("split_test_fraction", 0.05))
        split_for("", "check", self.valid, self.test)  # fail at graph build on bad fractions

    def expand(self, pcoll):
        valid, test = self.valid, self.test

        def assign(song: Song) -> Song:
            song.split = split_for(song.artist, song.song_id, valid, test)
            return song

        return pcoll | beam.Map(assign)
