"""Fitting the kmeans codec's codebook: its own job (``songshard fit-codec``), never the main one's.

``songs | FitCodebook(uri, max_size)`` takes separated songs (their mix and stems in
the work dir), draws at most ``per_song`` log-mel frames from each song's three
streams, pools at most ``FIT_MAX_FRAMES`` of them and writes a codebook of
``min(max_size, frames / 8)`` centroids to ``uri`` (an existing file is kept).
"""

from __future__ import annotations

import logging

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from schemas.records import Song, stable_hash
from transforms.core import workdir
from transforms.tokens import frames
from transforms.tokens.stage import STAGE, STREAMS, load_streams

log = logging.getLogger("songshard")

FIT_FRAMES_PER_SONG = 500
FIT_MAX_FRAMES = 64 * frames.CODEBOOK_SIZE  # frames kept for fitting, at most (about 336 MB of float32)


class SampleFramesFn(beam.DoFn):
    """A song -> at most ``per_song`` log-mel frames [n, 80] float32 drawn from its three streams.

    A song whose audio cannot be read gives no frames (counted as ``fit_skipped``
    and logged): one bad file does not stop the fit.
    """

    def __init__(self, per_song: int = FIT_FRAMES_PER_SONG):
        self.per_song = per_song

    def setup(self):
        self.skipped = Metrics.counter(STAGE, "fit_skipped")

    def process(self, song: Song):
        from transforms.tokens import kmeans

        names = [n for n in STREAMS if STREAMS[n] in song.audio]
        try:
            streams = load_streams(song, names)
        except Exception as exc:  # noqa: BLE001 - counted and logged; the fit goes on without it
            self.skipped.inc()
            log.warning("tokens: no codebook frames from %s: %s", song.uri, exc)
            return
        per_stream = max(1, self.per_song // max(1, len(streams)))
        seed = int(stable_hash(song.song_id or song.uri, 8), 16)
        parts = []
        for i, audio in enumerate(streams.values()):
            normalised, _ = frames.peak_normalise(audio)
            parts.append(kmeans.sample_frames(kmeans.logmel(normalised), per_stream, seed + i))
        if parts:
            yield np.concatenate(parts).astype(np.float32)


class PoolFrames(beam.CombineFn):
    """Concatenate frame arrays, keeping at most ``cap`` rows (a seeded random subset beyond that)."""

    def __init__(self, cap: int = FIT_MAX_FRAMES, seed: int = 0):
        self.cap = cap
        self.seed = seed

    def _shrink(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] <= self.cap:
            return rows
        rng = np.random.default_rng(self.seed + rows.shape[0])
        return rows[np.sort(rng.choice(rows.shape[0], self.cap, replace=False))]

    def create_accumulator(self):
        return np.zeros((0, 0), dtype=np.float32)

    def add_input(self, acc, rows):
        return self.merge_accumulators([acc, np.asarray(rows, dtype=np.float32)])

    def merge_accumulators(self, accs):
        parts = [a for a in accs if a.size]
        return self._shrink(np.concatenate(parts)) if parts else self.create_accumulator()

    def extract_output(self, acc):
        return acc


def fit_and_save(pooled: np.ndarray, uri: str, max_size: int, seed: int = 0) -> str:
    """Fit the codebook on ``pooled`` frames and write it to ``uri``; returns ``uri``.

    An existing file at ``uri`` is kept (returned unchanged); "" when there are no frames.
    """
    from transforms.tokens import kmeans

    if workdir.exists(uri):
        return uri
    if pooled.size == 0:
        return ""
    size = kmeans.codebook_size_for(pooled.shape[0], max_size)
    centroids = kmeans.fit_codebook(pooled, size, seed)
    sha = kmeans.save_codebook(uri, centroids, pooled.shape[0])
    log.info("tokens: fitted a %d-code codebook on %d frames -> %s (sha256 %s)", size, pooled.shape[0], uri, sha)
    return uri


class FitCodebook(beam.PTransform):
    """Songs (with their audio in the work dir) -> one element: the URI of the kmeans codebook.

    Each song contributes at most ``per_song`` log-mel frames drawn from its mix
    and stems; the pooled frames (at most FIT_MAX_FRAMES) are fitted with
    ``min(max_size, frames / 8)`` centroids and written to ``uri``. A codebook
    already at that URI is reused, not refitted. An empty corpus gives "".
    """

    def __init__(self, uri: str, max_size: int = frames.CODEBOOK_SIZE, per_song: int = FIT_FRAMES_PER_SONG,
                 seed: int = 0):
        super().__init__()
        self.uri = uri
        self.max_size = int(max_size)
        self.per_song = per_song
        self.seed = seed

    def expand(self, songs):
        return (songs
                | "SampleFrames" >> beam.ParDo(SampleFramesFn(self.per_song))
                | "PoolFrames" >> beam.CombineGlobally(PoolFrames(seed=self.seed))
                | "FitAndSave" >> beam.Map(fit_and_save, self.uri, self.max_size, self.seed))
