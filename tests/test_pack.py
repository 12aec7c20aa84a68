"""Packing as a command of its own (``songshard pack OUT``) and its concurrent I/O.

Parts are made here the way the shard stage makes them; the packer must publish each exactly once,
in shards numbered after OUT's, from a second call, a crash half way, and many shards at once.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from pipeline.cli import main
from transforms.core import bulk, workdir
from transforms.shard import PARTS, part_bytes, write_atomically
from transforms.shard.pack import pack_parts

ROW = {"key": "", "shard": "", "split": "train", "uri": "", "artist": "", "title": "", "duration": 1.0,
       "truncated": False, "num_frames": 26, "language": "", "language_probability": 0.0,
       "language_coverage": 0.0, "bpm": 0.0, "num_sections": 0, "num_words": 0, "descriptions": "",
       "tags": [], "gender": "", "genre": "", "musicality": "", "pure_music": True, "loudness_lufs": 0.0,
       "true_peak_dbfs": 0.0, "clipping_ratio": 0.0, "bandwidth_hz": 0.0, "silence_ratio": 0.0,
       "source_sample_rate": 48000, "source_codec": "", "separator": "", "structure": "", "asr": "",
       "tagger": "", "codec": "", "run_id": "r"}


def make_parts(out: str, n: int, split: str = "train", prefix: str = "k") -> list:
    """``n`` complete parts in OUT/_parts, as the shard stage writes them; their keys."""
    keys = []
    for i in range(n):
        key = f"{prefix}{i:04d}"
        data = part_bytes(key, {"json": json.dumps({"i": i}).encode(), "tokens.npy": b"\x93NUMPY" + bytes(i)})
        write_atomically(workdir.join(out, PARTS, f"{key}.tar"), data)
        rec = {"key": key, "uri": f"/s/{key}.wav", "split": split, "bytes": len(data),
               "row": {**ROW, "key": key, "uri": f"/s/{key}.wav", "split": split}}
        write_atomically(workdir.join(out, PARTS, f"{key}.json"), json.dumps(rec).encode())
        keys.append(key)
    return keys


def shard_keys(out) -> dict:
    """{shard name: [keys in order]} of every shard in OUT, read with webdataset."""
    found = {}
    for name in sorted(f for f in os.listdir(out) if f.endswith(".tar")):
        found[name] = [s["__key__"] for s in wds.WebDataset(os.path.join(out, name), shardshuffle=False,
                                                             empty_check=False)]
    return found


def test_ordered_map_keeps_order_and_bounds_what_is_in_flight():
    from concurrent.futures import ThreadPoolExecutor

    live, peak, lock = [0], [0], threading.Lock()

    def slow(x):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.01 * (x % 3))
        with lock:
            live[0] -= 1
        return x * x

    with ThreadPoolExecutor(8) as pool:
        assert list(bulk.ordered_map(slow, range(40), pool, ahead=3)) == [x * x for x in range(40)]
    assert 2 <= peak[0] <= 3  # concurrent, and never more than ``ahead`` at once


def test_ordered_map_raises_the_failure_in_turn():
    from concurrent.futures import ThreadPoolExecutor

    def boom(x):
        if x == 5:
            raise OSError("part 5 unreadable")
        return x

    with ThreadPoolExecutor(4) as pool, pytest.raises(OSError, match="part 5"):
        list(bulk.ordered_map(boom, range(10), pool, ahead=4))


def test_delete_many_tolerates_what_is_gone_and_names_what_failed(tmp_path):
    files = [tmp_path / f"f{i}" for i in range(3)]
    for f in files:
        f.write_bytes(b"x")
    assert bulk.delete_many([str(f) for f in files] + [str(tmp_path / "never-there")]) == 4
    assert not any(f.exists() for f in files)
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(Exception, match="could not delete 1 of 1"):
        bulk.delete_many([str(tmp_path / "a-folder")])


def test_the_pack_command_publishes_every_part_once_and_a_second_call_nothing(tmp_path, capsys):
    out = str(tmp_path)
    keys = make_parts(out, 23)
    assert main(["pack", out, "--shard_max_samples", "5", "--io_threads", "6"]) == 0
    assert "23 samples into 5 shards (train-000000.tar .. train-000004.tar)" in capsys.readouterr().out
    shards = shard_keys(out)
    assert list(shards) == [f"train-{n:06d}.tar" for n in range(5)]
    assert [k for name in shards for k in shards[name]] == keys  # contiguous, in key order, once each
    index = pq.read_table(os.path.join(out, "index")).to_pylist()
    assert sorted((r["key"], r["shard"]) for r in index) == sorted((k, n) for n, ks in shards.items() for k in ks)
    assert not os.listdir(os.path.join(out, PARTS))
    assert main(["pack", out]) == 0 and "0 samples into 0 shards" in capsys.readouterr().out
    make_parts(out, 3, prefix="z")  # a later batch continues the numbering
    assert main(["pack", out, "--shard_max_samples", "5"]) == 0
    assert list(shard_keys(out))[-1] == "train-000005.tar"


def test_a_pack_that_fails_half_way_is_finished_by_the_next(tmp_path, monkeypatch):
    out = str(tmp_path)
    keys = make_parts(out, 20, split="train") + make_parts(out, 4, split="valid", prefix="v")
    real = workdir.read_bytes

    def flaky(uri):
        if uri.endswith("k0013.tar"):
            raise OSError(f"transient failure reading {uri}")
        return real(uri)

    monkeypatch.setattr(workdir, "read_bytes", flaky)
    with pytest.raises(OSError, match="k0013"):
        pack_parts(out, "r1", max_samples=4, max_bytes=1e9, threads=4)
    monkeypatch.setattr(workdir, "read_bytes", real)
    published = pack_parts(out, "r2", max_samples=4, max_bytes=1e9, threads=4)
    assert published  # the shard that failed, at least, is published now
    shards = shard_keys(out)
    names = sorted(shards)
    assert [n for n in names if n.startswith("train")] == [f"train-{i:06d}.tar" for i in range(5)]  # no gap
    packed = [k for ks in shards.values() for k in ks]
    assert sorted(packed) == sorted(keys) and len(packed) == len(set(packed))
    index = pq.read_table(os.path.join(out, "index")).to_pylist()
    assert sorted(r["key"] for r in index) == sorted(keys)
    assert {r["shard"] for r in index} == set(shards)
    assert not [f for f in os.listdir(out) if ".tmp-" in f] and not os.listdir(os.path.join(out, PARTS))


def test_a_part_that_does_not_parse_is_named(tmp_path, capsys):
    out = str(tmp_path)
    make_parts(out, 2)
    with open(os.path.join(out, PARTS, "k0001.json"), "w") as f:
        f.write('{"key": "k00')
    assert main(["pack", out]) == 2
    err = capsys.readouterr().err
    assert "k0001.json" in err and err.count("\n") == 1
