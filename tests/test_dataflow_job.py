"""The Dataflow job as Dataflow would receive it, built against a local Cloud Storage emulator.

``--template_location`` makes Beam's DataflowRunner build the whole job, stage its files in the
bucket and write the job description there instead of submitting it: everything short of a cloud
account. The tests read back what was written (the job JSON, the staged pipeline proto) and check
the graph, the options and the worker image; the README's cluster recipe is run as a user would
copy it, in a fresh process.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from emulators import gcs, object_names, put_object, read_object  # noqa: F401 - fixtures
from pipeline.graph import MODEL_STAGES
from pipeline.run import run
from pipeline.versions import BEAM_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "us-central1-docker.pkg.dev/my-project/songshard/worker:1"


def _wav(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal((int(seconds * 48000), 2))).astype(np.float32), 48000, format="WAV")
    return buf.getvalue()


def _songs(store) -> str:
    for i in range(3):
        put_object(store, f"songs/s{i}.wav", _wav(1.0, i))
    return store.uri("songs")


def _dataflow_argv(store, songs: str, *extra: str) -> list:
    return ["--input", songs, "--output", store.uri("shards"), "--runner", "DataflowRunner",
            "--project", "my-project", "--region", "us-central1", "--temp_location", store.uri("tmp"),
            "--sdk_container_image", IMAGE, "--experiments", "use_runner_v2", "--machine_type", "g2-standard-8",
            "--dataflow_service_options", "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver",
            "--template_location", store.uri("templates", "songshard.json"), "--no_auth", *extra]


def test_the_job_dataflow_would_receive_holds_the_graph_the_image_and_the_options(gcs, capsys):
    result = run(_dataflow_argv(gcs, _songs(gcs), "--separate_device", "cuda"))
    assert result["template"] == gcs.uri("templates", "songshard.json") and result["songs_to_do"] == 3
    assert "job built, not submitted" in capsys.readouterr().out
    assert not object_names(gcs, "shards/")  # nothing ran: no stats, no shards, no parts

    job = json.loads(read_object(gcs, "templates/songshard.json"))
    env = job["environment"]
    pool = env["workerPools"][0]
    assert pool["workerHarnessContainerImage"] == IMAGE and pool["machineType"] == "g2-standard-8"
    containers = pool["sdkHarnessContainerImages"]
    assert [c["containerImage"] for c in containers] == [IMAGE]
    assert containers[0]["useSingleCorePerContainer"]  # one SDK process per vCPU: the thread budget's premise
    assert env["serviceOptions"] == ["worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]
    assert "use_runner_v2" in env["experiments"]
    assert env["userAgent"]["version"] == BEAM_VERSION  # what the image's Beam must equal
    options = {d["key"]: d["value"] for d in env["sdkPipelineOptions"]["display_data"]}
    assert options["input"] == gcs.uri("songs") and options["output"] == gcs.uri("shards")
    assert options["separate_device"] == "cuda" and options["sdk_container_image"] == IMAGE

    staged = {p["name"]: p["location"] for p in pool["packages"]}
    names = set(object_names(gcs, "tmp/"))
    for name, location in staged.items():  # every file the workers will fetch is in the bucket
        assert re.sub(r"^storage\.googleapis\.com/[^/]+/", "", location) in names, name
    proto_name = next(n for n in names if n.endswith("/pipeline.pb"))

    from apache_beam.portability.api import beam_runner_api_pb2

    pipeline = beam_runner_api_pb2.Pipeline.FromString(read_object(gcs, proto_name))
    transforms = " ".join(t.unique_name for t in pipeline.components.transforms.values())
    for stage in MODEL_STAGES:
        assert stage.stage in transforms, stage.stage
    images = {beam_runner_api_pb2.DockerPayload.FromString(e.payload).container_image
              for e in pipeline.components.environments.values() if e.urn == "beam:env:docker:v1"}
    assert images == {IMAGE}
    assert "s0.wav" not in read_object(gcs, proto_name).decode("latin-1")  # songs are read on workers


def _readme_command(name: str) -> list:
    """The README's cluster command ``.venv/bin/songshard NAME ... --template_location ...`` as a list of
    arguments (the job built without submitting it)."""
    import shlex

    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    for command in block.replace("\\\n", " ").splitlines():
        words = shlex.split(command, comments=True)
        if words[:2] == [".venv/bin/songshard", name] and "--template_location" in words:
            return words
    raise AssertionError(f"no `songshard {name} ... --template_location` in the README's cluster recipe")


def test_the_readme_cluster_recipe_builds_its_job_in_a_fresh_launcher(gcs):
    songs = _songs(gcs)
    argv = _readme_command("run")
    assert "DataflowRunner" in argv
    argv = [a.replace("gs://bucket", gcs.root).replace("PROJECT", "my-project").replace("REGION", "us-central1")
            for a in argv]
    env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs.url}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *argv[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    # No crash. (Without a cloud account Beam logs its search for credentials, retries and all,
    # before going anonymous, which the emulator takes; with an account it finds them at once.)
    crashed = re.search(r"^Traceback \(most recent call last\)", proc.stderr, re.M)
    assert proc.returncode == 0 and not crashed and "songshard:" not in proc.stderr, proc.stderr[-3000:]
    assert "job built, not submitted" in proc.stdout
    assert "templates/songshard.json" in object_names(gcs, "templates/")[0] and songs


def test_a_template_with_overwrite_is_refused_before_anything_is_touched(tmp_path):
    from pipeline.config import resolve

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train-000000.tar").write_bytes(b"kept")
    with pytest.raises(ValueError, match="--overwrite with --template_location"):
        run(["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--overwrite",
             "--runner", "DataflowRunner", "--template_location", str(tmp_path / "t.json")])
    assert (tmp_path / "out" / "train-000000.tar").read_bytes() == b"kept"
    assert resolve(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--overwrite"])[1].overwrite
