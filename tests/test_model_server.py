"""One separator per machine, shared by worker processes, batching segments of several songs
(transforms/core/model_server.py), tested on CPU with Spleeter's real shipped weights."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from transforms.core.model_server import BatchingServer, acquire_shared, server_tag

SPLEETER = "transforms.separate.spleeter:SpleeterSeparator"


class Doubler:
    """A stand-in backend: doubles its input and remembers each pass's batch size."""

    passes = []

    def __init__(self, params):
        self.params = params

    def load(self):
        pass

    def provenance(self):
        from schemas.records import Provenance

        return Provenance(backend="doubler", note="test stand-in")

    def process(self, chunks):
        Doubler.passes.append(chunks.shape[0])
        if chunks.shape[0] and np.isnan(chunks).any():
            raise ValueError("nan in a segment")
        return chunks * 2


def test_concurrent_calls_share_one_pass_and_get_their_own_results_back():
    Doubler.passes.clear()
    server = BatchingServer(f"{__name__}:Doubler", {}, max_batch=8, max_wait_s=0.5)
    results, barrier = {}, threading.Barrier(3)

    def call(k):
        x = np.full((k, 2, 5), float(k), np.float32)
        barrier.wait()
        results[k] = server.process(x, caller=f"song{k}")

    threads = [threading.Thread(target=call, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for k in (1, 2, 3):
        assert results[k].shape == (k, 2, 5) and np.all(results[k] == 2 * k)
    stats = server.stats()
    assert Doubler.passes == [6] and stats["passes"] == 1 and stats["shared_passes"] == 1
    assert stats["segments"] == 6 and stats["callers"] == 3


def test_a_full_pass_waits_no_longer_and_other_shapes_go_in_their_own_pass():
    Doubler.passes.clear()
    server = BatchingServer(f"{__name__}:Doubler", {}, max_batch=2, max_wait_s=0.3)
    out = {}
    threads = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, server.process(np.ones((1, 2, s)), k)))
               for k, s in (("a", 5), ("b", 7), ("c", 5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(Doubler.passes) == [1, 2] and out["b"].shape == (1, 2, 7)
    with pytest.raises(ValueError, match="nan"):  # a failing pass fails its callers, not the server
        server.process(np.full((1, 2, 5), np.nan), "d")
    assert np.all(server.process(np.ones((1, 2, 5)), "e") == 2)


def run_workers(target, jobs: dict) -> tuple:
    """Spawn one process per job (``name: (path, payload)``) running ``target(path, barrier, results,
    payload)``; (the processes, after they exited cleanly, and what each put on ``results``)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=target, name=name, args=(path, barrier, results, payload))
             for name, (path, payload) in jobs.items()]
    for p in procs:
        p.start()
    got = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    return procs, got


def _worker(path, barrier, results, chunk):
    shared = acquire_shared("separate", SPLEETER, {}, max_batch=8, max_wait_s=1.0,
                            caller=str(multiprocessing.current_process().pid), path=path)
    barrier.wait()  # both workers send their song's segment at the same moment
    out = shared.process(chunk)
    results.put((multiprocessing.current_process().name, shared.server_pid, out, shared.stats()))
    barrier.wait()  # the process serving the model stays until both are answered
    _end_own_server()


def _end_own_server():
    """What Beam's exit hook does in an SDK worker: end the server process this worker started, if any.
    (A multiprocessing child such as this test's workers exits without running exit hooks, and would
    wait for its non-daemon server forever.)"""
    for child in multiprocessing.active_children():
        child.terminate()


def test_two_worker_processes_share_one_spleeter_and_batch_their_songs(tmp_path):
    from transforms.separate.spleeter import SpleeterSeparator

    local = SpleeterSeparator({})
    local.load()
    rng = np.random.default_rng(0)
    chunks = {name: (0.1 * rng.standard_normal((1, local.channels, local.chunk_length))).astype(np.float32)
              for name in ("w1", "w2")}
    procs, got = run_workers(_worker, {name: (str(tmp_path), chunks[name]) for name in chunks})
    server_pids = {pid for _, pid, _, _ in got}
    assert len(server_pids) == 1 and not server_pids & {p.pid for p in procs}  # one copy, in its own process
    last = max((s for *_, s in got), key=lambda s: s["passes"])
    assert last["shared_passes"] >= 1 and last["max_segments"] == 2  # both songs in one forward pass
    for name, _, out, _ in got:  # the same stems as the worker's own copy would give
        np.testing.assert_allclose(out, local.process(chunks[name]), atol=1e-4)
    assert (tmp_path / (server_tag("separate", SPLEETER, {}) + ".lock")).exists()


def test_a_run_with_a_shared_separator_serves_every_worker_from_one_process(tmp_path):
    import glob
    import json
    import os
    import re
    import subprocess
    import sys

    import soundfile as sf
    import webdataset as wds

    from conftest import synth_mix

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(4):
        sf.write(songs / f"s{i}.wav", synth_mix(8.0, 100 + 9 * i, seed=i)[0].T, 48000)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(songs), "--output", str(out),
            "--progress_interval", "0", "--separate_share_model", "--structure", "dsp", "--structure_vad", "none",
            "--lyrics", "none", "--lyrics_vad", "none", "--lyrics_share_model", "--tags", "dsp",
            "--filter_min_duration", "1",
            "--split_valid_fraction", "0", "--split_test_fraction", "0",
            "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the server's lock and address files live here
    run = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [s["json"] for shard in glob.glob(str(out / "train-*.tar"))
               for s in wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode()]
    assert len(records) == 4
    served_by = set()
    for rec in records:
        prov = rec["provenance"]["separate"]
        assert prov["backend"] == "spleeter" and prov["weights_sha256"]
        served_by.add(re.search(r"one copy per machine \(process (\d+)\)", prov["note"]).group(1))
        assert rec["labels"]["separate"]["vocal_rms_db"] < 0
    assert len(served_by) == 1  # every song, whichever worker took it, went through one model copy
    asr_by = {re.search(r"one copy per machine \(process (\d+)\)", rec["provenance"]["lyrics"]["note"]).group(1)
              for rec in records}
    assert len(asr_by) == 1  # the ASR likewise (here the no-op backend, through the same server path)
    assert json.load(open(out / "stats.json"))["config"]["lyrics"]["params"]["share_model"] is True
    assert json.load(open(out / "stats.json"))["config"]["separate"]["params"]["share_model"] is True


FASTER_WHISPER = "transforms.lyrics.faster_whisper_backend:FasterWhisperBackend"


def _asr_worker(path, barrier, results, audio):
    from transforms.core.model_server import acquire_shared_asr

    shared = acquire_shared_asr("lyrics", FASTER_WHISPER, {"threads": 1},
                                caller=str(multiprocessing.current_process().pid), path=path)
    barrier.wait()  # both workers call at the same moment: the server takes them one at a time
    probs = shared.language_probs(audio)
    segments = shared.transcribe(audio, [(0.0, audio.size / 16000)], "en")
    results.put((multiprocessing.current_process().name, shared.server_pid, probs, segments, shared.stats(),
                 shared.provenance().note, shared.thresholds))
    barrier.wait()  # the process serving the model stays until both are answered
    _end_own_server()


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng not installed")
def test_two_worker_processes_share_one_asr_model(tmp_path):
    from test_lyrics_backends import SENTENCE, espeak_16k
    from transforms.lyrics.faster_whisper_backend import FasterWhisperBackend

    assert FASTER_WHISPER.endswith(FasterWhisperBackend.__name__)
    speech = espeak_16k(SENTENCE, tmp_path / "s.wav")
    local = FasterWhisperBackend({"threads": 1})
    local.load()
    want = local.transcribe(speech, [(0.0, speech.size / 16000)], "en")
    assert want and "heart" in " ".join(w["text"] for s in want for w in s["words"]).lower()
    procs, got = run_workers(_asr_worker, {f"w{i}": (str(tmp_path), speech) for i in range(2)})
    server_pids = {g[1] for g in got}
    assert len(server_pids) == 1 and not server_pids & {p.pid for p in procs}  # one model copy, in its own process
    last = max((g[4] for g in got), key=lambda s: s["calls"])
    assert last["calls"] == 4 and last["callers"] == 2  # both workers' calls ran on that copy
    for _, pid, probs, segments, _, note, thresholds in got:  # what the worker's own copy would give
        assert max(probs, key=probs.get) == "en"
        assert [w["text"] for s in segments for w in s["words"]] == [w["text"] for s in want for w in s["words"]]
        assert f"one copy per machine (process {pid})" in note and thresholds == local.thresholds
    assert (tmp_path / (server_tag("lyrics", FASTER_WHISPER, {"threads": 1}) + ".lock")).exists()


def _host(path, ready, target):
    """A worker process that starts the machine's server and then idles (until the test kills it)."""
    shared = acquire_shared("separate", target, {}, max_batch=4, max_wait_s=0.0, caller="host", path=path)
    ready.put(shared.server_pid)
    import time

    time.sleep(600)


def test_when_the_server_or_its_host_dies_calls_are_retried_on_a_new_server(tmp_path):
    import os
    import signal
    import time

    target = f"{__name__}:Doubler"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    host = ctx.Process(target=_host, args=(str(tmp_path), ready, target))
    host.start()
    first = ready.get(timeout=300)
    assert first not in (host.pid, os.getpid())  # the model lives in a process of its own
    shared = acquire_shared("separate", target, {}, max_batch=4, max_wait_s=0.0, caller="me", path=str(tmp_path))
    assert shared.server_pid == first and np.all(shared.process(np.ones((1, 2, 3), np.float32)) == 2)

    os.kill(host.pid, signal.SIGKILL)  # the worker that started the server dies: the server follows it
    host.join(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.kill(first, 0)
            time.sleep(0.2)
        except ProcessLookupError:
            break
    else:
        pytest.fail("the server outlived the worker that started it")
    out = shared.process(np.full((2, 2, 3), 5.0, np.float32))  # this song is retried, not lost
    assert out.shape == (2, 2, 3) and np.all(out == 10.0)
    second = shared.server_pid
    assert second != first and "process %d" % second in shared.provenance().note

    os.kill(second, signal.SIGKILL)  # the server itself dies (out of memory, say)
    time.sleep(0.5)
    assert np.all(shared.process(np.ones((1, 2, 3), np.float32)) == 2) and shared.server_pid != second
    with pytest.raises(ValueError, match="nan"):  # the model's own errors are not retried
        shared.process(np.full((1, 2, 3), np.nan, np.float32))
    os.kill(shared.server_pid, signal.SIGKILL)
