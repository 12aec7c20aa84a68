"""Split stage: train / valid / test by a stable hash of the artist.

One artist never straddles splits; songs with no known artist are split by
their own id. Fractions come from ``--split_valid_fraction`` and
``--split_test_fraction``.
"""

from __future__ import annotations



import apache_beam as beam

from schemas.records import Song, hash_fraction
from transforms.core.facts import SPLIT_TEST_FRACTION, SPLIT_VALID_FRACTION
from transforms.core.config import StageConfig
from transforms.core.stage import Configurable


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


def fractions(config: StageConfig) -> dict:
    """{"train", "valid", "test"}: the share of songs each split gets."""
    valid = float(config.get("valid_fraction", SPLIT_VALID_FRACTION))
    test = float(config.get("test_fraction", SPLIT_TEST_FRACTION))
    return {"train": max(0.0, 1.0 - valid - test), "valid": valid, "test": test}


class AssignSplit(Configurable, beam.PTransform):
    """Songs in; the same songs with ``song.split`` set out. Flags: ``--split_*``."""

    stage = "split"

    def __init__(self, config: StageConfig):
        super().__init__()
        shares = fractions(config)
        self.valid, self.test = shares["valid"], shares["test"]

    @classmethod
    def add_options(cls, group) -> None:
        group.add_argument("--split_valid_fraction", type=float, default=SPLIT_VALID_FRACTION)
        group.add_argument("--split_test_fraction", type=float, default=SPLIT_TEST_FRACTION)

    @classmethod
    def configure(cls, values) -> StageConfig:
        config = super().configure(values)
        shares = fractions(config)
        split_for("", "check", shares["valid"], shares["test"])  # ValueError on bad fractions, in the driver
        return config

    def expand(self, pcoll):
        valid, test = self.valid, self.test

        def assign(song: Song) -> Song:
            song.split = split_for(song.artist, song.song_id, valid, test)
            return song

        return pcoll | beam.Map(assign)
