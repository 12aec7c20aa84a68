"""Handing songs to a local run's worker processes so that they finish together.

Beam's DirectRunner in ``multi_processing`` mode does not balance work as it goes: the songs
after a shuffle are dealt to its worker processes once, round robin by key, and each process
works through its share alone. With random keys (``beam.Reshuffle``) two workers get about
the same number of songs but not the same number of minutes, and the run lasts as long as the
larger share: on the 18-song real-music set, one worker could be idle for a minute at the end.

:class:`BalancedSpread` balances by length instead. Each song's length is read from its file's
header (no decoding) on workers, capped at the decode cut, and the songs are ordered longest first.
Then, where the run's work dir can hold claims (:mod:`transforms.core.claims`: a local disk or
``gs://``), every worker process gets the whole ordered list under a key of its own and *pulls*:
it claims the next song no one has claimed yet, processes it through every stage, and comes back
for the next, so a worker that drew quick songs simply takes more of them (longest-processing-time
first, as the work really goes). A retried bundle finds its own claims and redoes those songs;
no song is taken twice. Without claims the songs are *dealt* once by the same rule on their
estimated lengths (:func:`deal`), which leaves the shares as uneven as lengths are poor estimates
of compute.

Only a local multi-process run uses it: on Dataflow, Flink or Spark, ``beam.Reshuffle`` keeps
the runner free to split and rebalance work itself, and one key per worker would undo that.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Iterable, List, Sequence, Tuple

import apache_beam as beam
import soundfile as sf
from apache_beam.io.filesystems import FileSystems

from schemas.records import Song
from transforms.core import claims, workdir

PER_SONG_SECONDS = 10.0  # fixed cost per song (open, write, load stems), counted as audio seconds
BYTES_PER_SECOND = {".mp3": 16000.0, ".m4a": 16000.0, ".aac": 16000.0, ".wma": 16000.0,
                    ".ogg": 20000.0, ".opus": 16000.0}  # 128-160 kbit/s, for files soundfile cannot open
DEFAULT_BYTES_PER_SECOND = 176400.0  # 16-bit stereo 44.1 kHz


def estimate_seconds(uri: str, max_seconds: float = 0.0) -> float:
    """A song's length in seconds from its header, capped at ``max_seconds`` (0: no cap).

    Files soundfile cannot open are estimated from their size and a typical bit rate; a file that
    cannot be read at all counts as 0 (decode will turn it into a dead letter quickly).
    """
    try:
        with workdir.open_read(uri) as stream:
            seconds = float(sf.info(stream).duration)
    except Exception:  # noqa: BLE001 - not a soundfile format, or not readable: estimate by size
        try:
            size = FileSystems.match([uri])[0].metadata_list[0].size_in_bytes
        except Exception:  # noqa: BLE001 - unreadable: decode reports it
            return 0.0
        ext = posixpath.splitext(uri)[1].lower()
        seconds = size / BYTES_PER_SECOND.get(ext, DEFAULT_BYTES_PER_SECOND)
    return min(seconds, max_seconds) if max_seconds else seconds


def longest_first(costs: Sequence[Tuple[float, str]]) -> List[int]:
    """Indices of ``costs`` ((seconds, tie-break name) per song), longest first, ties by name."""
    return sorted(range(len(costs)), key=lambda k: (-costs[k][0], costs[k][1]))


def deal(costs: Sequence[Tuple[float, str]], workers: int) -> List[List[int]]:
    """Indices of ``costs`` ((seconds, tie-break name) per song) dealt into ``workers`` shares.

    Longest first, each to the share with the least total so far (ties: the lower share), counting
    :data:`PER_SONG_SECONDS` per song. Deterministic for the same input.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    shares: List[List[int]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for i in longest_first(costs):
        w = min(range(workers), key=lambda k: (loads[k], k))
        shares[w].append(i)
        loads[w] += costs[i][0] + PER_SONG_SECONDS
    return shares


def _deal_songs(item, workers: int) -> Iterable[Tuple[int, object]]:
    _, pairs = item
    pairs = list(pairs)
    shares = deal([(seconds, song.uri) for seconds, song in pairs], workers)
    for w, share in enumerate(shares):
        for i in share:
            yield w, pairs[i][1]


def _offer_to_all(item, workers: int) -> Iterable[Tuple[int, object]]:
    _, pairs = item
    pairs = list(pairs)
    ordered = [pairs[i][1] for i in longest_first([(seconds, song.uri) for seconds, song in pairs])]
    for w in range(workers):
        yield w, ordered


class PullFn(beam.DoFn):
    """``(worker, [songs longest first])`` in (a group of one list); each song that this worker is first
    to claim out, one at a time: the next claim is made only when the stages after it have finished
    the last song."""

    def __init__(self, work_dir: str):
        self.work_dir = work_dir

    def process(self, item):
        worker, offers = item
        me = f"worker-{worker}"
        for song in (song for offer in offers for song in offer):
            key = "pull-" + hashlib.sha1(song.uri.encode("utf-8")).hexdigest()
            if claims.claim(self.work_dir, key, me) == me:
                yield song


class BalancedSpread(beam.PTransform):
    """Songs in, the same songs out, in one share per local worker process of about equal minutes.

    ``workers``: the run's ``--direct_num_workers``; ``max_seconds``: decode's cut; ``work_dir``: the
    run's work dir, where workers claim the songs they pull (without one, or on a filesystem with no
    atomic create, songs are dealt once). Reads every song's header once and holds the (small) Song
    records of the whole input in one place, and each worker gets the whole list: that suits a local
    run, not a cluster.
    """

    def __init__(self, workers: int, max_seconds: float = 0.0, work_dir: str = ""):
        super().__init__()
        if workers < 2:
            raise ValueError("BalancedSpread is for two or more worker processes; use beam.Reshuffle")
        self.workers, self.max_seconds = int(workers), float(max_seconds)
        self.work_dir = work_dir if work_dir and claims.supported(work_dir) else ""

    def expand(self, songs):
        workers, cap = self.workers, self.max_seconds
        together = (songs
                    | "Length" >> beam.Map(lambda s: (None, (estimate_seconds(s.uri, cap), s)))
                    | "Together" >> beam.GroupByKey())
        if self.work_dir:
            return (together | "OfferToAll" >> beam.FlatMap(_offer_to_all, workers)
                    | "ByWorker" >> beam.GroupByKey() | "Pull" >> beam.ParDo(PullFn(self.work_dir)))
        return (together | "Deal" >> beam.FlatMap(_deal_songs, workers)
                | "ByWorker" >> beam.GroupByKey()
                | "Unpack" >> beam.FlatMap(lambda item: item[1]).with_output_types(Song))


__all__ = ["BalancedSpread", "PullFn", "deal", "estimate_seconds", "PER_SONG_SECONDS"]
