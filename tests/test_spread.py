"""Dealing a local run's songs to its worker processes by length."""

import numpy as np
import pytest
import soundfile as sf
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Song
from transforms.discover.spread import PER_SONG_SECONDS, BalancedSpread, deal, estimate_seconds


def _loads(costs, shares):
    return [sum(costs[i][0] + PER_SONG_SECONDS for i in share) for share in shares]


def test_deal_gives_every_song_once_and_balances_minutes():
    rng = np.random.default_rng(0)
    costs = [(float(s), f"song{i}") for i, s in enumerate(rng.uniform(60, 360, size=18))]
    shares = deal(costs, 2)
    assert sorted(i for share in shares for i in share) == list(range(18))
    loads = _loads(costs, shares)
    assert max(loads) - min(loads) <= max(c for c, _ in costs) + PER_SONG_SECONDS
    assert max(loads) / (sum(loads) / 2) < 1.03  # within 3 % of a perfect split on this draw
    # dealt in equal numbers instead, longest first alternating, the split is worse
    alternating = sorted(range(18), key=lambda k: -costs[k][0])
    naive = _loads(costs, [alternating[0::2], alternating[1::2]])
    assert max(loads) < max(naive)
    assert deal(costs, 2) == shares  # deterministic


def test_deal_edge_cases():
    assert deal([], 3) == [[], [], []]
    assert deal([(100.0, "a")], 2) == [[0], []]
    assert deal([(300.0, "a"), (100.0, "b"), (100.0, "c"), (100.0, "d")], 2) == [[0], [1, 2, 3]]
    with pytest.raises(ValueError):
        deal([(1.0, "a")], 0)


def test_lengths_come_from_headers_capped_with_a_size_guess_for_other_formats(tmp_path):
    sf.write(tmp_path / "a.flac", np.zeros((48000 * 7, 2), dtype=np.float32), 48000)
    assert estimate_seconds(str(tmp_path / "a.flac")) == pytest.approx(7.0)
    assert estimate_seconds(str(tmp_path / "a.flac"), max_seconds=5.0) == 5.0
    (tmp_path / "b.m4a").write_bytes(b"\0" * 160000)  # not a soundfile format: 128 kbit/s guess
    assert estimate_seconds(str(tmp_path / "b.m4a")) == pytest.approx(10.0)
    assert estimate_seconds(str(tmp_path / "missing.wav")) == 0.0


@pytest.fixture
def uris(tmp_path):
    """Six silent songs of 1-9 s."""
    paths = []
    for i, seconds in enumerate([3, 9, 1, 4, 4, 2]):
        path = tmp_path / f"s{i}.wav"
        sf.write(path, np.zeros((16000 * seconds, 1), dtype=np.float32), 16000)
        paths.append(str(path))
    return paths


def test_balanced_spread_passes_every_song_through(uris):
    with TestPipeline() as p:
        out = (p | beam.Create([Song(uri=u) for u in uris]) | BalancedSpread(2)
               | beam.Map(lambda s: s.uri))
        assert_that(out, equal_to(uris))
    with pytest.raises(ValueError):
        BalancedSpread(1)


def test_workers_pull_each_song_once_and_a_retried_share_redoes_its_own(tmp_path):
    from transforms.discover.spread import PullFn

    songs = [Song(uri=f"/songs/{i}.wav") for i in range(6)]
    work = str(tmp_path / "work")
    first, second = PullFn(work), PullFn(work)
    pulled0 = iter(first.process((0, [songs])))
    got0 = [next(pulled0).uri, next(pulled0).uri]  # worker 0 has taken two songs ...
    got1 = [s.uri for s in second.process((1, [songs]))]  # ... worker 1 takes every song left
    got0 += [s.uri for s in pulled0]
    assert got0 == ["/songs/0.wav", "/songs/1.wav"] and got1 == [f"/songs/{i}.wav" for i in range(2, 6)]
    retried = [s.uri for s in PullFn(work).process((0, [songs]))]  # worker 0's bundle, run again
    assert retried == got0


def test_balanced_spread_with_a_work_dir_passes_every_song_through_once(uris, tmp_path):
    with TestPipeline() as p:
        out = (p | beam.Create([Song(uri=u) for u in uris]) | BalancedSpread(3, work_dir=str(tmp_path / "w"))
               | beam.Map(lambda s: s.uri))
        assert_that(out, equal_to(uris))
    assert len(list((tmp_path / "w" / "claims").iterdir())) == 6
