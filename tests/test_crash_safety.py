"""Crash safety: every finished song is kept as a part, a killed run's rerun completes the output.

A real run is killed with SIGKILL part-way (the whole process group, workers included) and rerun
with the same command: only the songs in flight are redone, the final shards hold every good song
exactly once, every tar reads to its end, and nothing temporary is left.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import soundfile as sf
import webdataset as wds

from conftest import synth_mix
from test_pack import ROW
from transforms.shard import PARTS, part_bytes, write_atomically
from transforms.shard.pack import pack_parts, tidy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SONGS = 10


def _argv(songs, out):
    return [sys.executable, "-m", "pipeline.cli", "run", "--input", str(songs), "--output", str(out),
            "--progress_interval", "0", "--separate", "dsp", "--structure", "dsp", "--structure_vad", "none",
            "--lyrics", "none", "--lyrics_vad", "none", "--tags", "dsp", "--filter_min_duration", "1",
            "--split_valid_fraction", "0", "--split_test_fraction", "0", "--shard_max_samples", "4",
            "--work_audio", "flac24",  # the format of a remote work dir, through every stage
            "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]


def _finished(out):
    return len(glob.glob(str(out / PARTS / "*.json")))


def test_a_killed_run_keeps_finished_songs_and_the_rerun_completes_the_output(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(SONGS):
        sf.write(songs / f"s{i:02d}.wav", synth_mix(6.0, 90 + 7 * i, seed=i)[0].T, 48000)
    out = tmp_path / "out"
    proc = subprocess.Popen(_argv(songs, out), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while _finished(out) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed part-way"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = _finished(out)
    assert 3 <= kept < SONGS and not glob.glob(str(out / "*.tar"))  # persisted while running, not yet packed

    rerun = subprocess.run(_argv(songs, out), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    first = next(line for line in rerun.stdout.splitlines() if line.startswith("[songshard] run"))
    found, todo, already = map(int, re.search(r"(\d+) songs found, (\d+) to do \((\d+) already", first).groups())
    assert (found, already) == (SONGS, kept) and todo == SONGS - kept  # only the songs in flight are redone

    keys = []
    for shard in sorted(glob.glob(str(out / "train-*.tar"))):
        keys += [s["__key__"] for s in wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode()]
    assert len(keys) == len(set(keys)) == SONGS
    index = pq.read_table(str(out / "index")).to_pylist()
    assert sorted(r["key"] for r in index) == sorted(keys)
    assert all(os.path.basename(r["shard"]) in os.listdir(out) for r in index)
    assert not os.listdir(out / PARTS) and not glob.glob(str(out / "**" / "*.tmp-*"), recursive=True)


def test_packing_is_idempotent_and_tidies_what_a_crash_left(tmp_path):
    out = tmp_path
    (out / PARTS).mkdir()
    row = ROW  # an index row as the shard stage writes it (tests/test_pack.py)
    for i in range(5):
        key = f"k{i}"
        data = part_bytes(key, {"json": json.dumps({"i": i}).encode()})
        write_atomically(str(out / PARTS / f"{key}.tar"), data)
        rec = {"key": key, "uri": f"/s/{key}.wav", "split": "train", "bytes": len(data),
               "row": {**row, "key": key, "uri": f"/s/{key}.wav"}}
        write_atomically(str(out / PARTS / f"{key}.json"), json.dumps(rec).encode())
    (out / "train-000000.tar.tmp-dead").write_bytes(b"half a shard")  # a crash while writing
    (out / "train-000007.tar").write_bytes(b"renamed, but its index never was")  # a crash between renames
    published = pack_parts(str(out), "r", max_samples=2, max_bytes=1e9)
    assert [p["samples"] for p in published] == [2, 2, 1]
    assert sorted(os.listdir(out)) == ["_parts", "index", "train-000000.tar", "train-000001.tar",
                                       "train-000002.tar"]
    assert not os.listdir(out / PARTS) and pack_parts(str(out), "r", 2, 1e9) == []  # nothing twice
    # parts left behind after their shard was published (a crash before the deletes) are dropped
    write_atomically(str(out / PARTS / "k0.json"), b"{}")
    tidy(str(out))
    assert not os.listdir(out / PARTS)
