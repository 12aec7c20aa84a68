"""The composed graph with a fake model stage: shards, index, dead letters, resume, overwrite.

The fake stage stands in for the model stages only here, to test the graph's
plumbing quickly; every real stage has its own tests and the end-to-end test
runs them all.
"""

import glob
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.run import run
from transforms.core import workdir
from schemas.records import Provenance
from transforms.core.stage import Backend, StageFn, StageTransform

from conftest import synth_mix


class FakeTokenizer(Backend):
    stage = "fake"
    name = "fake"

    def provenance(self):
        return Provenance(backend="fake", note="graph test stand-in")


class FakeFn(StageFn):
    stage = "fake"

    def apply(self, song):
        if "explode" in song.uri:
            raise RuntimeError("fake stage refuses this song")
        mix, sr = workdir.load_audio(song.audio["mix"])
        frames = int(mix.shape[1] / sr * 25) + 1
        song.tokens["tokens"] = np.zeros((3, frames), dtype=np.uint16)
        song.set_label("tokens", {"num_frames": frames}, self.backend.provenance())
        return song


class FakeStage(StageTransform):
    """A stage defined only here: its package would hold exactly this, plus its options."""

    stage = "fake"
    fn_class = FakeFn
    backends = {"fake": f"{__name__}:FakeTokenizer"}
    default_backend = "fake"


STAGES = [FakeStage]


class LoudnessFn(StageFn):
    stage = "loudness"

    def apply(self, song):
        mix, _ = workdir.load_audio(song.audio["mix"])
        song.set_label(self.stage, {"peak": round(float(abs(mix).max()), 4),
                                    "scale": float(self.config.get("scale", 1.0))})
        return song


class LoudnessStage(StageTransform):
    """A stage defined only in this test: a class, its flags, and one entry in the stage list."""

    stage = "loudness"
    fn_class = LoudnessFn

    @classmethod
    def add_options(cls, group):
        group.add_argument("--loudness_scale", type=float, default=1.0)


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "songs"
    (d / "sub").mkdir(parents=True)
    (d / "_hidden").mkdir()
    for i, name in enumerate(["a.wav", "b.flac", "sub/c.wav", "explode.wav"]):
        mix, _, _ = synth_mix(3.0 + i, 100 + 7 * i, seed=i)
        sf.write(d / name, mix.T, 48000)
    (d / "a.json").write_text(json.dumps({"artist": "Same Artist"}))
    (d / "b.json").write_text(json.dumps({"artist": "Same Artist"}))
    sf.write(d / "copy_of_a.wav", sf.read(d / "a.wav")[0], 48000)  # same audio, other name
    sf.write(d / "_hidden" / "stem.wav", synth_mix(2.0, 90, seed=9)[0].T, 48000)
    sf.write(d / "tiny.wav", synth_mix(1.0, 90, seed=8)[0].T, 48000)
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.mp3").write_bytes(b"just text, not audio\n" * 40)
    return d


def _argv(corpus, out, *extra):
    return ["--input", str(corpus), "--output", str(out), "--fake", "fake", "--filter_min_duration", "2.5",
            "--split_valid_fraction", "0", "--split_test_fraction", "0", "--progress_interval", "0",
            "--shard_max_samples", "2", *extra]


def _read_shards(out):
    samples = []
    for shard in sorted(glob.glob(f"{out}/*.tar")):
        samples.extend(wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode())
    return samples


def test_run_writes_shards_index_failures_and_resumes(corpus, tmp_path):
    out = tmp_path / "out"
    stats = run(_argv(corpus, out, "--shard_write_audio"), test_pipeline=TestPipeline(), stages=STAGES)
    assert stats["records_out"] == 3 and stats["songs_in"] == 8

    samples = _read_shards(out)
    keys = [s["__key__"] for s in samples]
    assert len(keys) == len(set(keys)) == 3
    uris = sorted(os.path.basename(s["json"]["uri"]) for s in samples)
    kept = "a.wav" if "a.wav" in uris else "copy_of_a.wav"  # claims: whichever copy was decoded first
    assert uris == sorted([kept, "b.flac", "c.wav"])
    for s in samples:
        dur = s["json"]["duration"]
        assert s["tokens.npy"].shape == (3, int(dur * 25) + 1)
        assert {"mix.flac", "json", "tokens.npy"} <= set(s)
        assert s["json"]["provenance"]["tokens"]["note"] == "graph test stand-in"
        assert s["json"]["run"]["run_id"] == stats["run_id"]
    assert sorted(os.path.basename(p) for p in glob.glob(f"{out}/*.tar")) == ["train-000000.tar",
                                                                              "train-000001.tar"]

    index = pq.read_table(out / "index").to_pylist()
    assert sorted(r["key"] for r in index) == sorted(keys)
    assert all(os.path.exists(out / r["shard"]) for r in index)

    failures = [json.loads(ln) for f in glob.glob(f"{out}/failures/*.jsonl") for ln in open(f)]
    assert sorted((os.path.basename(f["uri"]), f["stage"]) for f in failures) == [
        ("empty.wav", "decode"), ("explode.wav", "fake"), ("notes.mp3", "decode")]
    dropped = [json.loads(ln) for f in glob.glob(f"{out}/filtered/*.jsonl") for ln in open(f)]
    reasons = {os.path.basename(d["uri"]): d["reasons"][0] for d in dropped}
    copy = ({"a.wav", "copy_of_a.wav"} - {kept}).pop()
    assert set(reasons) == {copy, "tiny.wav"} and reasons["tiny.wav"].startswith("too_short")
    assert reasons[copy] == f"duplicate_of: {corpus / kept}"
    assert not os.path.exists(out / "_work" / stats["run_id"])  # work dir cleaned

    # a rerun into the same OUT does nothing twice ...
    again = run(_argv(corpus, out), test_pipeline=TestPipeline(), stages=STAGES)
    assert again["records_out"] == 0 and again["songs_skipped_already_done"] == 8
    assert len(_read_shards(out)) == 3
    # ... picks up a new song only ...
    sf.write(corpus / "d.wav", synth_mix(4.5, 131, seed=7)[0].T, 48000)
    third = run(_argv(corpus, out), test_pipeline=TestPipeline(), stages=STAGES)
    assert third["records_out"] == 1
    assert sorted(os.path.basename(p) for p in glob.glob(f"{out}/*.tar"))[-1] == "train-000002.tar"
    keys = [s["__key__"] for s in _read_shards(out)]
    assert len(keys) == len(set(keys)) == 4
    assert pq.read_table(out / "index").num_rows == 4
    # ... and --overwrite starts over.
    fresh = run(_argv(corpus, out, "--overwrite"), test_pipeline=TestPipeline(), stages=STAGES)
    assert fresh["records_out"] == 4 and pq.read_table(out / "index").num_rows == 4
    stats_file = json.loads((out / "stats.json").read_text())
    assert stats_file["run_id"] == fresh["run_id"] and stats_file["config"]["filter"]["params"]["min_duration"] == 2.5


def test_unknown_backend_stops_before_any_song(corpus, tmp_path):
    from transforms.core.stage import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="unknown fake backend"):
        run(["--input", str(corpus), "--output", str(tmp_path / "out"), "--fake", "nope"], stages=STAGES)
    assert not glob.glob(f"{tmp_path}/out/*.tar")


def test_inspect_lists_shows_exports_and_plots(corpus, tmp_path, capsys):
    from pipeline.cli import main

    out = tmp_path / "out"
    run(_argv(corpus, out, "--shard_write_audio"), test_pipeline=TestPipeline(), stages=STAGES)
    capsys.readouterr()
    assert main(["inspect", str(out), "--plot", str(tmp_path / "summary.png")]) == 0
    listing = capsys.readouterr().out
    assert "3 samples in 2 shards" in listing and "explode.wav: [fake] RuntimeError" in listing
    assert "too_short" in listing
    key = pq.read_table(out / "index").column("key")[0].as_py()
    assert main(["inspect", str(out), key, "--export", str(tmp_path / "exp"),
                 "--plot", str(tmp_path / "rec.png")]) == 0
    shown = capsys.readouterr().out
    assert f"key:          {key}" in shown and "tokens.npy    uint16 [3," in shown
    exported = sorted(os.listdir(tmp_path / "exp"))
    assert exported == [f"{key}.json", f"{key}.mix.flac", f"{key}.tokens.npy"]
    assert sf.info(str(tmp_path / "exp" / f"{key}.mix.flac")).samplerate == 48000
    for png in ("summary.png", "rec.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["inspect", str(out), "0000000000000000"]) == 1


def test_adding_a_stage_is_one_class_and_one_list_entry(corpus, tmp_path):
    out = tmp_path / "out"
    first = run(_argv(corpus, out, "--loudness_scale", "2"), test_pipeline=TestPipeline(),
                stages=[*STAGES, LoudnessStage])
    samples = _read_shards(out)
    assert len(samples) == 3 and first["stages"]["loudness"]["succeeded"] == 3
    for s in samples:
        label = s["json"]["labels"]["loudness"]
        assert 0.0 < label["peak"] <= 1.0 and label["scale"] == 2.0
    assert first["config"]["loudness"]["params"] == {"scale": 2.0}
    # the same flags into a fresh OUT carry the same config hash; the sample records it
    second = run(_argv(corpus, tmp_path / "out2", "--loudness_scale", "2"), test_pipeline=TestPipeline(),
                 stages=[*STAGES, LoudnessStage])
    assert second["config_sha256"] == first["config_sha256"] == samples[0]["json"]["run"]["config_sha256"]


def test_group_dedupe_keeps_the_smallest_uri_and_claims_keep_exactly_one_copy(corpus, tmp_path):
    for mode in ("group", "claims"):
        out = tmp_path / mode
        stats = run(_argv(corpus, out, "--dedupe", mode), test_pipeline=TestPipeline(), stages=STAGES)
        uris = sorted(os.path.basename(s["json"]["uri"]) for s in _read_shards(out))
        dropped = [json.loads(ln) for f in glob.glob(f"{out}/filtered/*.jsonl") for ln in open(f)]
        dups = [os.path.basename(d["uri"]) for d in dropped if d["reasons"][0].startswith("duplicate_of")]
        assert stats["records_out"] == 3 and len(dups) == 1
        assert sorted(uris + dups) == ["a.wav", "b.flac", "c.wav", "copy_of_a.wav"]
        if mode == "group":
            assert dups == ["copy_of_a.wav"]


def test_claims_need_a_work_dir_with_atomic_create(corpus, tmp_path):
    from pipeline.config import resolve

    with pytest.raises(ValueError, match="--dedupe group"):
        resolve(_argv(corpus, tmp_path / "out", "--work_dir", "s3://bucket/work"), model_stages=STAGES)
    _, config = resolve(_argv(corpus, tmp_path / "out", "--work_dir", "s3://bucket/work", "--dedupe", "group"),
                        model_stages=STAGES)
    assert config.dedupe == "group"


def test_a_local_run_deals_songs_by_length_and_other_runners_reshuffle(corpus, tmp_path):
    import apache_beam as beam

    from pipeline.config import resolve
    from pipeline.graph import spread
    from transforms.discover.spread import BalancedSpread

    _, local = resolve(_argv(corpus, tmp_path / "out", "--direct_num_workers", "2",
                             "--direct_running_mode", "multi_processing"), model_stages=STAGES)
    assert local.local_workers == 2 and isinstance(spread(local), BalancedSpread)
    _, single = resolve(_argv(corpus, tmp_path / "out", "--direct_num_workers", "1",
                              "--direct_running_mode", "multi_processing"), model_stages=STAGES)
    _, portable = resolve(_argv(corpus, tmp_path / "out", "--runner", "PortableRunner"), model_stages=STAGES)
    for config in (single, portable):
        assert isinstance(spread(config), beam.Reshuffle)


def test_the_job_graph_does_not_grow_with_the_number_of_songs(tmp_path):
    import apache_beam as beam

    from pipeline.config import resolve
    from pipeline.graph import build
    from transforms.core.config import RunContext

    sizes = {}
    for n in (10, 100_000):
        manifest = tmp_path / f"songs{n}.txt"
        manifest.write_text("".join(f"gs://bucket/songs/{i:07d}.flac\n" for i in range(n)))
        _, config = resolve(["--input", str(manifest), "--output", str(tmp_path / "out")], model_stages=STAGES)
        p = beam.Pipeline()
        paths = {k: str(tmp_path / k) for k in ("parts", "failures", "filtered", "progress")}
        build(p, config, RunContext(output=str(tmp_path / "out"), work_dir=str(tmp_path / "w")), paths)
        sizes[n] = len(p.to_runner_api().SerializeToString())
    assert sizes[100_000] - sizes[10] < 2_000, sizes  # 100,000 URIs would be ~3.7 MB if pickled in
    assert sizes[100_000] < 1_000_000


def test_a_song_past_the_time_limit_is_a_dead_letter_and_the_run_goes_on(corpus, tmp_path):
    out = tmp_path / "out"
    stats = run(_argv(corpus, out, "--song_time_limit", "0.000001"), test_pipeline=TestPipeline(), stages=STAGES)
    assert stats["records_out"] == 0
    failures = [json.loads(ln) for f in glob.glob(f"{out}/failures/*.jsonl") for ln in open(f)]
    limited = [f for f in failures if f["error_type"] == "SongTimeLimit"]
    assert len(limited) == 4 and all("--song_time_limit" in f["message"] and f["stage"] == "fake" for f in limited)


def test_the_real_pipeline_runs_under_the_portable_runner(corpus, tmp_path):
    """Dataflow, Flink and Spark take the portable path: everything the workers get is serialised."""
    out = tmp_path / "out"
    argv = _argv(corpus, out, "--runner", "PortableRunner", "--job_endpoint", "embed",
                 "--environment_type", "LOOPBACK")
    stats = run(argv, stages=STAGES)
    assert stats["records_out"] == 3 and stats["failures"] == 3
    keys = [s["__key__"] for s in _read_shards(out)]
    assert len(keys) == len(set(keys)) == 3
