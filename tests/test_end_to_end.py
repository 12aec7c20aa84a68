"""End to end: the sample corpus through every default stage into real shards, read back.

This is the README's main job on a smaller corpus: the real embedded backends of
every stage, the shards read with ``webdataset`` and the index with pyarrow,
each good song there exactly once, each bad file a dead letter with its reason.
"""

import glob
import json
import os
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from pipeline.run import run
from transforms.core.shape_rules import shape_ok
from pipeline.sample_corpus import make_sample_corpus

SECTION_TAGS = {"verse", "chorus", "bridge", "intro-short", "intro-medium", "intro-long", "outro-short",
                "outro-medium", "outro-long", "inst-short", "inst-medium", "inst-long", "silence"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    truth = make_sample_corpus(str(d), n_songs=3, seed=1, song_seconds=62.0)
    return d, truth


@pytest.fixture(scope="module")
def output(corpus, tmp_path_factory):
    d, _ = corpus
    out = tmp_path_factory.mktemp("out")
    stats = run(["--input", str(d), "--output", str(out), "--shard_write_audio", "--progress_interval", "0",
                 "--split_valid_fraction", "0", "--split_test_fraction", "0"])
    return out, stats


def test_every_good_song_is_in_the_shards_exactly_once(corpus, output):
    d, truth = corpus
    out, stats = output
    samples = []
    for shard in sorted(glob.glob(f"{out}/train-*.tar")):
        samples.extend(wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode())
    files = sorted(os.path.basename(s["json"]["uri"]) for s in samples)
    expected = sorted(song["file"] for song in truth["songs"].values())
    # claims keep whichever copy of a duplicated song was decoded first
    copies = [(e["of"], name) for name, e in truth["expected"].items() if e["outcome"] == "duplicate"]
    swapped = [sorted(copy if f == original else f for f in expected) for original, copy in copies]
    assert files == expected or files in swapped, files
    assert len({s["__key__"] for s in samples}) == len(samples) == stats["records_out"]
    index = pq.read_table(str(out / "index"))
    assert sorted(index.column("key").to_pylist()) == sorted(s["__key__"] for s in samples)
    tags = stats["stages"]["tags"]  # the tagger's own time is a metric of its own, within the stage's
    assert 0.0 < tags["model_total_s"] <= tags["total_s"] and tags["audio_s"] > 0

    for s in samples:
        rec = s["json"]
        t = s["tokens.npy"]
        assert t.shape == (3, int(rec["duration"] * 25) + 1) and t.dtype == np.uint16
        assert int(t.max()) < 16384
        assert s["prompt.npy"].shape[0] == 3
        assert {"mix.flac", "vocals.flac", "accompaniment.flac"} <= set(s)
        assert "\n" not in rec["gt_lyric"] and rec["gt_lyric"].startswith("[")
        tags = [re.match(r"^\[([a-z-]+)\]", part).group(1) for part in rec["gt_lyric"].split(" ; ")]
        assert set(tags) <= SECTION_TAGS, rec["gt_lyric"]
        assert rec["musicality"].startswith("[") and rec["descriptions"] == rec["descriptions"].lower()
        for stage in ("separate", "structure", "lyrics", "tags", "quality", "tokens"):
            assert rec["provenance"][stage]["backend"], stage
        # the defaults are the real models wherever a package ships weights
        assert rec["provenance"]["separate"]["backend"] == "spleeter"
        assert rec["provenance"]["tags"]["backend"] == "musicnn"
        assert rec["provenance"]["lyrics"]["backend"] == "faster-whisper"
        assert shape_ok(rec["gt_lyric"]) and shape_ok(rec["gt_lyric_timed"]), rec["gt_lyric"]
        lyrics = rec["labels"]["lyrics"]
        assert lyrics["vocal_activity"]["source"] == "vad" and lyrics["vocal_activity"]["regions"]
        assert lyrics["vocal_activity"]["model"]["backend"] == "silero-vad"
        # every corpus song is sung: words in its line, a vocal decision, never [Pure-Music]
        assert lyrics["words"] and not rec["pure_music"] and rec["labels"]["tags"]["vocals"]["present"]


def test_every_bad_file_is_a_dead_letter_or_a_recorded_drop(corpus, output):
    d, truth = corpus
    out, stats = output
    failures = {os.path.basename(f["uri"]): f for p in glob.glob(f"{out}/failures/*.jsonl")
                for f in map(json.loads, open(p))}
    dropped = {os.path.basename(f["uri"]): f for p in glob.glob(f"{out}/filtered/*.jsonl")
               for f in map(json.loads, open(p))}
    for name, expected in truth["expected"].items():
        if expected["outcome"] == "dead_letter":
            assert name in failures, name
            assert failures[name]["stage"] == "decode" and failures[name]["message"]
        elif expected["outcome"] == "duplicate":  # this copy, or the one it copies, was dropped
            loser, kept = (name, expected["of"]) if name in dropped else (expected["of"], name)
            reason, owner = dropped[loser]["reasons"][0].split(": ", 1)
            assert reason == "duplicate_of" and os.path.basename(owner) == kept
        elif expected["outcome"] == "filtered_too_short":
            assert dropped[name]["reasons"][0].startswith("too_short")
    assert stats["failures"] == sum(e["outcome"] == "dead_letter" for e in truth["expected"].values())
    saved = json.loads((out / "stats.json").read_text())
    assert saved["records_out"] == len(truth["songs"]) and saved["hours_of_audio"] > 0
