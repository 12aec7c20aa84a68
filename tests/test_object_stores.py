"""Input, work dir and OUT in a bucket: the folder operations and whole runs against real store APIs.

Cloud Storage is gcp-storage-emulator and S3 is moto's server, both on 127.0.0.1 and started per
test (``tests/emulators.py``). The graph runs with the fake model stage of ``test_graph.py`` so that
each run takes seconds; what is checked is the plumbing that assumed a local disk: listing (a prefix
with nothing under it is empty, an error from the store raises), deleting a folder (every object
under a prefix), claims (create-if-absent), the FLAC work dir, packing, resume, ``--overwrite``,
``--retry_failed`` and the clean-up of the work dir.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading

import pytest
import soundfile as sf
import webdataset as wds
from apache_beam.io.filesystem import BeamIOError
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline

from conftest import synth_mix
from emulators import gcs, object_names, put_object, read_object, s3  # noqa: F401 - fixtures
from pipeline import run as run_module
from pipeline.run import run
from test_graph import STAGES
from transforms.core import claims, workdir


def _wav(seconds: float, seed: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth_mix(seconds, 100 + 7 * seed, seed=seed)[0].T, 48000, format="WAV")
    return buf.getvalue()


SONGS = {"songs/a.wav": (3.0, 0), "songs/b.wav": (3.5, 1), "songs/sub/c.wav": (4.0, 2)}


def _corpus(store, extra: dict = None) -> str:
    """Three good songs, a copy of one, a file that is not audio and one that explodes in the fake stage."""
    for name, (seconds, seed) in SONGS.items():
        put_object(store, name, _wav(seconds, seed))
    put_object(store, "songs/copy_of_a.wav", _wav(3.0, 0))
    put_object(store, "songs/notes.mp3", b"just text, not audio\n" * 40)
    put_object(store, "songs/explode.wav", _wav(3.0, 5))
    for name, data in (extra or {}).items():
        put_object(store, name, data)
    return store.uri("songs")


def _argv(songs: str, out: str, *extra: str):
    return ["--input", songs, "--output", out, "--fake", "fake", "--filter_min_duration", "2.5",
            "--split_valid_fraction", "0", "--split_test_fraction", "0", "--progress_interval", "0",
            "--shard_max_samples", "2", *extra]


def _run(songs: str, out: str, *extra: str) -> dict:
    return run(_argv(songs, out, *extra), test_pipeline=BeamPipeline(), stages=STAGES)


def _shard_samples(store, out_prefix: str) -> list:
    """Every sample of every shard in OUT, from the bucket's bytes, read back with webdataset."""
    samples = []
    with tempfile.TemporaryDirectory() as local:
        for name in object_names(store, out_prefix + "/"):
            if name.count("/") == out_prefix.count("/") + 1 and name.endswith(".tar"):
                path = os.path.join(local, os.path.basename(name))
                with open(path, "wb") as f:
                    f.write(read_object(store, name))
                samples += list(wds.WebDataset(path, shardshuffle=False, empty_check=False).decode())
    return samples


def _records(store, prefix: str) -> list:
    lines = [ln for n in object_names(store, prefix) for ln in read_object(store, n).decode().splitlines()]
    return [json.loads(ln) for ln in lines if ln.strip()]


def _basenames(records) -> list:
    return sorted(os.path.basename(r["uri"] if isinstance(r, dict) else r) for r in records)


# --- the folder operations, on both stores -------------------------------------------------------

@pytest.fixture(params=["gcs", "s3"])
def store(request):
    return request.getfixturevalue(request.param)


def test_listing_a_prefix_with_nothing_under_it_is_empty_and_a_store_error_raises(store):
    put_object(store, "out/index/a.parquet", b"x")
    assert workdir.list_uris(store.uri("out/index/*.parquet")) == [store.uri("out/index/a.parquet")]
    assert workdir.list_uris(store.uri("out/failures/*.jsonl")) == []
    assert workdir.list_uris(store.uri("nothing/here/*.tar")) == []
    missing = f"{store.scheme}://no-such-bucket-here/out/*.tar"
    with pytest.raises(BeamIOError, match="no-such-bucket-here"):
        workdir.list_uris(missing)


def test_reading_out_on_workers_raises_on_a_store_error_rather_than_redoing_everything(store):
    import apache_beam as beam

    from transforms.discover.read import DoneRecords

    with pytest.raises(BeamIOError, match="no-such-bucket-here"):
        beam.Pipeline() | DoneRecords(f"{store.scheme}://no-such-bucket-here/out")


def test_an_input_folder_is_found_by_what_is_under_it_at_any_depth(store):
    from transforms.discover import discover

    put_object(store, "songs/deep/er/a.wav", b"x")
    put_object(store, "songs/_hidden/b.wav", b"x")
    assert discover(store.uri("songs")) == [store.uri("songs/deep/er/a.wav")]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover(store.uri("nothing"))


def test_delete_tree_deletes_every_object_under_a_prefix_and_nothing_beside_it(store):
    for name in ("out/_work/run1/song/mix.flac", "out/_work/run1/claims/abc", "out/_work/run1/progress/ok-1.json",
                 "out/_work_other/keep", "out/_workfile", "out/stats.json", "out/stats.json.keep"):
        put_object(store, name, b"x")
    workdir.delete_tree(store.uri("out/_work/run1"))
    workdir.delete_tree(store.uri("out/stats.json"))  # one object is a tree of one
    workdir.delete_tree(store.uri("out/never/was"))  # nothing there: no error
    assert object_names(store, "out/") == ["out/_work_other/keep", "out/_workfile", "out/stats.json.keep"]


def test_delete_tree_still_deletes_a_local_folder_and_file(tmp_path):
    (tmp_path / "w" / "song").mkdir(parents=True)
    (tmp_path / "w" / "song" / "mix.npz").write_bytes(b"x")
    (tmp_path / "stats.json").write_text("{}")
    workdir.delete_tree(str(tmp_path / "w"))
    workdir.delete_tree(str(tmp_path / "stats.json"))
    workdir.delete_tree(str(tmp_path / "never"))
    assert os.listdir(tmp_path) == []
    assert workdir.list_uris(str(tmp_path / "never" / "*.json")) == []


def test_gcs_claims_get_one_winner_from_the_store(gcs):
    work = gcs.uri("out/_work/run1")
    assert claims.claim(work, "abc", "gs://b/one.wav") == "gs://b/one.wav"
    assert claims.claim(work, "abc", "gs://b/two.wav") == "gs://b/one.wav"
    assert claims.claim(work, "abc", "gs://b/one.wav") == "gs://b/one.wav"  # a retried bundle goes on
    owners = [f"gs://b/{i:02d}.wav" for i in range(8)]
    seen = [None] * len(owners)

    def race(i):
        seen[i] = claims.claim(work, "same-id", owners[i])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(owners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and sum(s == o for s, o in zip(seen, owners)) == 1
    assert read_object(gcs, "out/_work/run1/claims/same-id").decode() == seen[0]


# --- whole runs in Cloud Storage ------------------------------------------------------------------

def test_a_run_in_gcs_claims_duplicates_works_in_flac_and_packs_readable_shards(gcs):
    songs, out = _corpus(gcs), gcs.uri("out")
    stats = _run(songs, out, "--keep_work", "--shard_write_audio")
    assert stats["songs_in"] == 6 and stats["records_out"] == 3 and stats["failures"] == 2

    samples = _shard_samples(gcs, "out")
    kept = "a.wav" if "a.wav" in _basenames([s["json"] for s in samples]) else "copy_of_a.wav"
    assert _basenames([s["json"] for s in samples]) == sorted([kept, "b.wav", "c.wav"])
    assert all(s["tokens.npy"].shape[0] == 3 and "mix.flac" in s for s in samples)
    assert sorted(n for n in object_names(gcs, "out/") if n.count("/") == 1 and n.endswith(".tar")) == [
        "out/train-000000.tar", "out/train-000001.tar"]
    dropped = _records(gcs, "out/filtered/")
    copy = ({"a.wav", "copy_of_a.wav"} - {kept}).pop()
    assert [(os.path.basename(d["uri"]), d["reasons"][0]) for d in dropped] == [
        (copy, f"duplicate_of: {songs}/{kept}")]
    assert _basenames(_records(gcs, "out/failures/")) == ["explode.wav", "notes.mp3"]

    work = f"out/_work/{stats['run_id']}/"
    kept_work = object_names(gcs, work)
    assert {n.rsplit(".", 1)[-1] for n in kept_work if "/claims/" not in n and "/progress/" not in n} == {"flac"}
    assert any("/claims/" in n for n in kept_work)  # the duplicate check's claims, in the bucket


def test_a_rerun_in_gcs_packs_what_a_killed_run_left_and_cleans_its_work_dir(gcs, monkeypatch):
    songs, out = _corpus(gcs), gcs.uri("out")
    with monkeypatch.context() as m:  # killed after every song was persisted, before packing
        m.setattr(run_module.finalize, "pack_parts", lambda *a, **k: [])
        m.setattr(run_module.workdir, "delete_tree", lambda uri: None)
        first = _run(songs, out)
    parts = [n for n in object_names(gcs, "out/_parts/") if n.endswith(".json")]
    assert len(parts) == 3 and not _shard_samples(gcs, "out")
    put_object(gcs, "out/train-000000.tar.tmp-dead", b"half a shard")
    put_object(gcs, "songs/d.wav", _wav(4.5, 7))

    again = _run(songs, out)
    assert again["songs_skipped_already_done"] == 6  # 3 parts, 1 duplicate, 2 failures
    assert again["records_out"] == 4  # the killed run's three parts and the new song
    keys = [s["__key__"] for s in _shard_samples(gcs, "out")]
    assert len(keys) == len(set(keys)) == 4
    assert object_names(gcs, "out/_parts/") == [] and not [n for n in object_names(gcs, "out/") if ".tmp-" in n]
    assert object_names(gcs, f"out/_work/{again['run_id']}/") == []  # nothing left behind
    assert object_names(gcs, f"out/_work/{first['run_id']}/") != []  # the killed run's, untouched


def test_overwrite_in_gcs_removes_everything_old_and_redoes_every_song(gcs):
    songs, out = _corpus(gcs), gcs.uri("out")
    first = _run(songs, out)
    # what a killed run would have left: a part not yet packed, half a shard
    put_object(gcs, "out/_parts/deadbeef.json", json.dumps({"key": "deadbeef", "uri": songs + "/a.wav"}).encode())
    put_object(gcs, "out/train-000000.tar.tmp-dead", b"half a shard")
    old = set(object_names(gcs, "out/"))

    fresh = _run(songs, out, "--overwrite")
    assert fresh["songs_skipped_already_done"] == 0 and fresh["records_out"] == 3 and fresh["failures"] == 2
    left = set(object_names(gcs, "out/"))
    assert not {n for n in old & left if not n.startswith("out/train-") and n != "out/stats.json"}
    assert json.loads(read_object(gcs, "out/stats.json"))["run_id"] == fresh["run_id"]
    assert not [n for n in left if first["run_id"] in n or ".tmp-" in n or "/_parts/" in n or "/_work/" in n]
    assert len(_shard_samples(gcs, "out")) == 3
    assert len(_records(gcs, "out/failures/")) == 2 and len(_records(gcs, "out/filtered/")) == 1


def test_retry_failed_in_gcs_removes_old_failure_records_and_retries_the_songs(gcs):
    songs = _corpus(gcs, {"songs/late.wav": b""})  # empty now: a decode failure
    out = gcs.uri("out")
    first = _run(songs, out)
    assert _basenames(_records(gcs, "out/failures/")) == ["explode.wav", "late.wav", "notes.mp3"]
    put_object(gcs, "songs/late.wav", _wav(3.2, 9))  # the file arrives whole

    again = _run(songs, out, "--retry_failed")
    assert again["records_out"] == 1  # late.wav; the duplicate is dropped again, the rest fail again
    records = _records(gcs, "out/failures/")
    assert _basenames(records) == ["explode.wav", "notes.mp3"]
    assert not [n for n in object_names(gcs, "out/failures/") + object_names(gcs, "out/filtered/")
                if first["run_id"] in n]
    assert len(_shard_samples(gcs, "out")) == 4


def test_a_run_whose_output_bucket_is_missing_stops_rather_than_starting_over(gcs):
    songs = _corpus(gcs)
    with pytest.raises(BeamIOError, match="no-such-bucket"):
        _run(songs, "gs://no-such-bucket/out")


# --- whole runs in S3 -----------------------------------------------------------------------------

# Two worker processes: a work dir with no claims deals the songs once (BalancedSpread's "Deal" path).
S3_RUN = ("--dedupe", "group", "--direct_num_workers", "2")


def test_a_run_in_s3_dedupes_by_group_packs_overwrites_and_cleans_up(s3):
    songs, out = _corpus(s3), s3.uri("out")
    with pytest.raises(ValueError, match="--dedupe group"):
        _run(songs, out)  # no claims in s3: refused before anything is read
    first = _run(songs, out, *S3_RUN, "--shard_write_audio")
    assert first["records_out"] == 3 and first["failures"] == 2
    samples = _shard_samples(s3, "out")
    assert _basenames([s["json"] for s in samples]) == ["a.wav", "b.wav", "c.wav"]
    assert all("mix.flac" in s for s in samples)
    assert [d["reasons"][0] for d in _records(s3, "out/filtered/")] == [f"duplicate_of: {songs}/a.wav"]
    assert object_names(s3, "out/_work/") == []

    again = _run(songs, out, *S3_RUN)
    assert again["records_out"] == 0 and again["songs_skipped_already_done"] == 6
    fresh = _run(songs, out, *S3_RUN, "--overwrite")
    assert fresh["records_out"] == 3 and fresh["songs_skipped_already_done"] == 0
    assert not [n for n in object_names(s3, "out/") if first["run_id"] in n or again["run_id"] in n]
    assert len(_shard_samples(s3, "out")) == 3 and object_names(s3, "out/_work/") == []


def test_a_run_whose_s3_output_bucket_is_missing_stops_rather_than_starting_over(s3):
    songs = _corpus(s3)
    with pytest.raises(BeamIOError, match="no-such-bucket"):
        _run(songs, "s3://no-such-bucket/out", *S3_RUN)
