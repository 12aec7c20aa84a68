"""The Dataflow path: one Beam version everywhere, the worker image's GPU stack, the launcher's checks.

No Docker engine and no GPU here: the Dockerfile is checked as text against the code,
the GPU stack's decisions with injected versions and loaders (plus the real check on
this machine's CPU torch), and the launcher with injected Python / Beam versions and
imports, plus one real ``songshard run`` whose GCP clients cannot be imported.
"""

from __future__ import annotations

import fnmatch
import os
import re
import runpy
import subprocess
import sys
from typing import Dict, List

import apache_beam
import pytest
import setuptools
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import launcher
from pipeline.versions import BEAM_VERSION, WORKER_PYTHON
from transforms.core import gpu_stack as gs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")


def read(rel: str) -> str:
    with open(os.path.join(ROOT, rel)) as handle:
        return handle.read()


def instructions(text: str) -> List[str]:
    """The Dockerfile's instructions, continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [line.strip() for line in joined.splitlines() if line.strip()]


def build_args(text: str) -> Dict[str, str]:
    """{name: default} of every ``ARG name=default``."""
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)$", text, re.M))


def setup_kwargs(monkeypatch) -> dict:
    """The keyword arguments setup.py passes to setuptools.setup, as it runs (it reads versions.py)."""
    seen = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: seen.update(kwargs))
    monkeypatch.chdir(ROOT)
    runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="__main__")
    return seen


# ---- one Beam version ------------------------------------------------------------------------


def test_beam_version_is_one_everywhere(monkeypatch):
    docker_pin = build_args(read("docker/Dockerfile"))["BEAM_VERSION"]
    kwargs = setup_kwargs(monkeypatch)
    assert docker_pin == BEAM_VERSION
    assert f"apache-beam=={BEAM_VERSION}" in kwargs["install_requires"]
    assert kwargs["extras_require"]["dataflow"] == [f"apache-beam[gcp]=={BEAM_VERSION}"]
    assert kwargs["extras_require"]["s3"] == [f"apache-beam[aws]=={BEAM_VERSION}"]
    assert apache_beam.__version__ == BEAM_VERSION, "the venv's apache-beam is not pipeline/versions.py's pin"


def test_setup_py_reads_the_pin_without_importing_the_package():
    text = read("setup.py")
    assert not re.search(r"^\s*(from|import)\s+(pipeline|transforms|schemas)\b", text, re.M)
    assert "pipeline" in text and "versions.py" in text
    assert not re.search(r'BEAM_VERSION\s*=\s*"\d', text), "setup.py must not hold a second copy of the pin"


def test_dockerfile_builds_from_the_pinned_python311_beam_image():
    steps = instructions(read("docker/Dockerfile"))
    froms = [i for i, s in enumerate(steps) if s.startswith("FROM ")]
    assert len(froms) == 1
    assert steps[froms[0]] == "FROM apache/beam_python%d.%d_sdk:${BEAM_VERSION}" % WORKER_PYTHON
    assert "ARG BEAM_VERSION=" + BEAM_VERSION in steps[:froms[0]]
    # an ARG declared before FROM is empty after it unless declared again
    later = steps[froms[0] + 1:]
    assert any("${BEAM_VERSION}" in s for s in later)
    assert "ARG BEAM_VERSION" in later[:later.index(next(s for s in later if "${BEAM_VERSION}" in s))]


def constraints(steps: List[str]) -> Dict[str, str]:
    """{package: build arg} of the step that writes pip's constraints file with printf."""
    step = next(s for s in steps if "printf" in s and "constraints" in s)
    fmt, args = re.match(r"RUN printf '([^']*)' (.*) > ", step).groups()
    return dict(zip(re.findall(r"([\w-]+)==%s", fmt.replace("\\n", " ")), re.findall(r'"\$\{(\w+)\}"', args)))


def test_dockerfile_keeps_beam_at_the_pin_in_every_install():
    steps = instructions(read("docker/Dockerfile"))
    assert constraints(steps) == {"apache-beam": "BEAM_VERSION", "torch": "TORCH_VERSION",
                                  "ctranslate2": "CTRANSLATE2_VERSION"}
    env = next(s for s in steps if s.startswith("ENV PIP_CONSTRAINT="))
    first_pip = next(i for i, s in enumerate(steps) if "pip install" in s)
    assert steps.index(env) < first_pip
    assert any("apache_beam.__version__" in s and "${BEAM_VERSION}" in s for s in steps)
    assert any('"/opt/songshard[dataflow]"' in s for s in steps)


def test_dockerfile_keeps_the_worker_steps():
    text = read("docker/Dockerfile")
    for needle in ("ffmpeg", '--no-deps "musicnn==0.1.0" "BeatNet==1.1.3" "tempocnn==0.0.8"',
                   "locate_checkpoints()", "weights_path()", "checkpoint_folder('MTT_musicnn')",
                   "model_path('deeptemp_k8')", "python -m transforms.core.numba_cache",
                   "MALLOC_MMAP_THRESHOLD_=", "MALLOC_TRIM_THRESHOLD_="):
        assert needle in text, needle


def test_dockerfile_checks_the_gpu_stack_at_build():
    text = read("docker/Dockerfile")
    steps = instructions(text)
    run = next(s for s in steps if s.startswith("RUN ") and "gpu_stack --require-gpu-stack" in s)
    assert '--cuda-major "${CUDA_MAJOR}"' in run
    # the pip packages' lib folders are on the loader path before the check (CTranslate2 dlopens by name)
    assert run.index("--print-lib-dirs > /etc/ld.so.conf.d/") < run.index("ldconfig") < run.index("--require-gpu-stack")
    assert steps.index(run) > max(i for i, s in enumerate(steps) if "pip install" in s)
    args = build_args(text)
    ct2 = gs.ctranslate2_needs(args["CTRANSLATE2_VERSION"])
    assert ct2 is not None and ct2.cuda_major == int(args["CUDA_MAJOR"]), "CTRANSLATE2_VERSION is not for CUDA_MAJOR"


def dockerignore_patterns() -> List[str]:
    return [line.strip() for line in read(".dockerignore").splitlines() if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: List[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (its patterns, without ``!``)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", ""))
               for pat in patterns for p in prefixes)


def test_dockerignore_keeps_the_venv_and_git_out_and_the_sources_in():
    patterns = dockerignore_patterns()
    assert not any(p.startswith("!") for p in patterns)
    for path in (".venv/lib/python3.11/site-packages/torch/__init__.py", ".git/HEAD", "out/index.parquet",
                 "data/song.flac", "transforms/core/__pycache__/audio.cpython-311.pyc"):
        assert ignored(path, patterns), path
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", read("docker/Dockerfile"), re.M)
    sources = [s for line in copied for s in line.split()]
    assert sources and set(sources) >= {"setup.py", "pipeline", "transforms", "schemas"}
    for source in sources:
        assert os.path.exists(os.path.join(ROOT, source)), source
        assert not ignored(source, patterns), f"{source} is copied by the Dockerfile but .dockerignore drops it"
    assert not ignored("pipeline/versions.py", patterns)
    assert not ignored("transforms/tokens/default_codebook.npz", patterns)


# ---- the GPU stack, with injected versions and loaders -------------------------------------

CU12_REQUIRES = ["nvidia-cublas-cu12==12.8.4.1; platform_system == \"Linux\"",
                 "nvidia-cudnn-cu12==9.10.2.21; platform_system == \"Linux\""]
CU13_REQUIRES = ["cuda-toolkit[cublas,cudart]==13.0.3; platform_system == \"Linux\"",
                 "nvidia-cudnn-cu13==9.20.0.48; platform_system == \"Linux\""]
PIP_DIRS = ["/site/nvidia/cublas/lib", "/site/nvidia/cudnn/lib", "/site/nvidia/cuda_runtime/lib"]


class FakeLoader:
    """The dynamic loader of one process: bare sonames from ``on_path``, full paths from ``files``;
    once a library is loaded (either way) its bare soname loads too, as with the real dlopen."""

    def __init__(self, on_path=(), files=()):
        self.on_path = set(on_path)
        self.files = set(files)
        self.loaded = set()

    def __call__(self, name: str) -> bool:
        soname = os.path.basename(name)
        if "/" in name:
            ok = name in self.files
        else:
            ok = name in self.on_path or name in self.loaded
        if ok:
            self.loaded.add(soname)
        return ok


ALL_CU12 = ("libcudart.so.12", "libcublas.so.12", "libcudnn.so.9")


def test_cuda13_torch_with_ctranslate2_4_8_is_a_mismatch():
    load = FakeLoader(on_path=("libcudart.so.13", "libcublas.so.13", "libcudnn.so.9"))
    report = gs.evaluate("2.13.0", "13.0", CU13_REQUIRES, "4.8.5", load, [], require_gpu_stack=True)
    assert not report.ok
    assert "CUDA 13.0" in report.line and "ctranslate2 4.8.5 needs CUDA 12" in report.line
    assert "libcublas.so.12" in report.line and "\n" not in report.line


def test_cuda12_torch_with_ctranslate2_4_is_ok():
    for ct2 in ("4.0.0", "4.5.0", "4.6.3", "4.8.5"):
        needs = gs.ctranslate2_needs(ct2)
        load = FakeLoader(on_path=ALL_CU12 + needs.sonames)
        report = gs.evaluate("2.10.0+cu128", "12.8", CU12_REQUIRES, ct2, load, PIP_DIRS,
                             require_gpu_stack=True, want_major=12)
        assert report.ok, report.line
        assert "libcublas.so.12" in report.line


def test_missing_cublas_is_reported():
    load = FakeLoader(on_path=("libcudart.so.12", "libcudnn.so.9"))
    report = gs.evaluate("2.10.0", "12.8", CU12_REQUIRES, "4.8.5", load, PIP_DIRS, require_gpu_stack=True)
    assert not report.ok
    assert "libcublas.so.12 (torch 2.10.0) cannot be loaded" in report.line
    assert "libcublas.so.12 (ctranslate2 4.8.5) cannot be loaded" in report.line
    assert "libcudnn" not in report.line


def test_cublas_only_in_the_pip_folder_serves_torch_but_not_ctranslate2():
    files = [os.path.join(d, s) for d, s in zip(PIP_DIRS, ("libcublas.so.12", "libcudnn.so.9", "libcudart.so.12"))]
    report = gs.evaluate("2.10.0", "12.8", CU12_REQUIRES, "4.8.5", FakeLoader(files=files), PIP_DIRS)
    assert not report.ok
    # torch finds its libraries through its RPATH; CTranslate2 dlopens the bare name. The loader is
    # process-wide: torch's libcublas, once loaded from its folder, must not pass CTranslate2's check.
    assert report.line == ("libcublas.so.12 (ctranslate2 4.8.5) is in /site/nvidia/cublas/lib but not on the "
                           "loader path (add the folder to LD_LIBRARY_PATH or /etc/ld.so.conf.d and run ldconfig)")
    on_path = FakeLoader(on_path=["libcublas.so.12"], files=files)
    assert gs.evaluate("2.10.0", "12.8", CU12_REQUIRES, "4.8.5", on_path, PIP_DIRS).ok


def test_cpu_torch_passes_unless_the_gpu_stack_is_required():
    relaxed = gs.evaluate("2.13.0+cpu", None, [], "4.8.5", FakeLoader(), [])
    strict = gs.evaluate("2.13.0+cpu", None, [], "4.8.5", FakeLoader(), [], require_gpu_stack=True)
    assert relaxed.ok and "CPU build" in relaxed.line
    assert not strict.ok and "CPU build" in strict.line and "needs a CUDA build of torch" in strict.line


def test_other_cuda_major_and_unknown_ctranslate2_are_reported():
    load = FakeLoader(on_path=ALL_CU12)
    report = gs.evaluate("2.10.0", "12.8", CU12_REQUIRES, "4.8.5", load, [], want_major=13)
    assert not report.ok and "this image targets CUDA 13" in report.line
    unknown = gs.evaluate("2.10.0", "12.8", CU12_REQUIRES, "5.0.0", load, [])
    assert not unknown.ok and "ctranslate2 5.0.0 has no known CUDA requirement" in unknown.line
    absent = gs.evaluate("2.10.0", "12.8", CU12_REQUIRES, None, load, [])
    assert not absent.ok and "ctranslate2 is not installed" in absent.line


def test_ctranslate2_release_table():
    assert gs.ctranslate2_needs("3.24.0").sonames == ("libcublas.so.11", "libcudnn.so.8")
    assert gs.ctranslate2_needs("4.4.0").sonames == ("libcublas.so.12", "libcudnn.so.8")
    assert gs.ctranslate2_needs("4.5.0").sonames == ("libcublas.so.12", "libcudnn.so.9")
    assert gs.ctranslate2_needs("4.6.2").sonames == ("libcublas.so.12", "libcudnn.so.9")
    assert gs.ctranslate2_needs("4.6.3").sonames == ("libcublas.so.12",)
    assert gs.ctranslate2_needs("4.8.5").cuda_major == 12 and gs.ctranslate2_needs("4.8.5").by_name
    assert gs.ctranslate2_needs("2.24.0") is None and gs.ctranslate2_needs("5.0.0") is None


def test_torch_needs_follow_its_build():
    assert gs.torch_needs("2.13.0+cpu", None, []) is None
    cu13 = gs.torch_needs("2.13.0", "13.0", CU13_REQUIRES)
    assert cu13.cuda_major == 13 and cu13.sonames == ("libcudart.so.13", "libcublas.so.13", "libcudnn.so.9")
    old = gs.torch_needs("2.1.0", "12.1", ["nvidia-cudnn-cu12==8.9.2.26; platform_system == \"Linux\""])
    assert old.sonames[-1] == "libcudnn.so.8" and not old.by_name
    assert gs.version_tuple("2.10.0+cu128") == (2, 10, 0) and gs.version_tuple("4.0.0rc1") == (4, 0, 0)


def test_torch_version_file_is_read_without_importing_torch():
    text = ("from typing import Optional\n__all__ = ['__version__']\n__version__ = '2.10.0+cu128'\n"
            "debug = False\ncuda: Optional[str] = '12.8'\nhip: Optional[str] = None\n")
    values = gs.version_file_values(text)
    assert values["__version__"] == "2.10.0+cu128" and values["cuda"] == "12.8" and values["hip"] is None


def test_nvidia_lib_dirs_are_found_on_the_search_path(tmp_path):
    for package in ("cublas", "cudnn"):
        (tmp_path / "nvidia" / package / "lib").mkdir(parents=True)
    (tmp_path / "nvidia" / "cudnn" / "include").mkdir()
    found = gs.nvidia_lib_dirs([str(tmp_path), str(tmp_path), str(tmp_path / "absent")])
    assert found == [str(tmp_path / "nvidia" / "cublas" / "lib"), str(tmp_path / "nvidia" / "cudnn" / "lib")]


def real_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transforms.core.gpu_stack", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_real_check_on_this_machine_reports_the_cpu_build():
    version, cuda, _ = gs.torch_build()
    if cuda is not None:
        pytest.skip(f"torch {version} here is a CUDA {cuda} build; this test is for CPU machines")
    relaxed = real_check()
    assert relaxed.returncode == 0, relaxed.stderr
    assert "CPU build" in relaxed.stdout and version in relaxed.stdout
    strict = real_check("--require-gpu-stack")
    assert strict.returncode == 1
    assert strict.stdout == "" and len(strict.stderr.strip().splitlines()) == 1
    assert "FAILED" in strict.stderr and "CPU build" in strict.stderr and "Traceback" not in strict.stderr


# ---- the launcher ----------------------------------------------------------------------------

DATAFLOW_ARGS = ["--input", "gs://b/in", "--output", "gs://b/out", "--runner", "DataflowRunner",
                 "--project", "p", "--region", "r", "--temp_location", "gs://b/tmp"]


def importer(missing=()):
    """An import function for which the modules in ``missing`` (and their submodules) do not exist."""
    def import_module(name: str):
        if any(name == m or name.startswith(m + ".") for m in missing):
            raise ImportError(f"No module named {name!r}")
        return object()
    return import_module


def check(argv, python=(3, 11), beam=BEAM_VERSION, missing=()):
    launcher.check_launcher(PipelineOptions(argv), python_version=python, beam_version=beam,
                            import_module=importer(missing))


def one_line_error(argv, **kwargs) -> str:
    with pytest.raises(ValueError) as caught:
        check(argv, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and not message.startswith("songshard:")
    return message


def test_dataflow_launcher_on_another_python_is_refused():
    message = one_line_error(DATAFLOW_ARGS, python=(3, 12, 1))
    assert "Python 3.12" in message and "Python 3.11" in message and "beam_python3.11_sdk" in message


def test_dataflow_launcher_with_another_beam_is_refused():
    message = one_line_error(DATAFLOW_ARGS, beam="2.77.0")
    assert "apache-beam 2.77.0" in message and BEAM_VERSION in message
    assert 'pip install "songshard[dataflow]"' in message


def test_dataflow_launcher_without_gcp_clients_names_the_extra():
    for missing in (["google.cloud.storage"], ["apache_beam.io.gcp.gcsio"], ["google.cloud.dataflow",
                                                                            "apache_beam.runners.dataflow"]):
        message = one_line_error(DATAFLOW_ARGS, missing=missing)
        assert 'pip install "songshard[dataflow]" (or ".[dataflow]" from a checkout)' in message
        assert missing[-1] in message


def test_dataflow_launcher_with_everything_passes():
    check(DATAFLOW_ARGS)
    check(["--runner", "dataflow", "--input", "gs://b/in", "--output", "gs://b/out"])


def test_remote_paths_need_their_extra_on_any_runner():
    message = one_line_error(["--input", "gs://b/in", "--output", "/tmp/out"], python=(3, 12),
                             missing=["google.cloud.storage"])
    assert "songshard[dataflow]" in message
    message = one_line_error(["--input", "/tmp/in", "--output", "/tmp/out", "--work_dir", "s3://b/work"],
                             missing=["boto3"])
    assert 'pip install "songshard[s3]"' in message and "boto3" in message
    # local paths on a local runner need neither extra, nor the worker image's Python or Beam
    check(["--input", "/tmp/in", "--output", "/tmp/out"], python=(3, 12), beam="2.77.0",
          missing=["google.cloud.storage", "boto3"])


def test_runner_names():
    assert launcher.is_dataflow("DataflowRunner") and launcher.is_dataflow("dataflow")
    assert launcher.is_dataflow("apache_beam.runners.dataflow.dataflow_runner.DataflowRunner")
    assert not launcher.is_dataflow("DirectRunner") and not launcher.is_dataflow(None)


def test_this_launcher_passes_with_its_own_versions():
    # The venv has Beam at the pin with its GCP clients (the test extra), on Python 3.11.
    launcher.check_launcher(PipelineOptions(DATAFLOW_ARGS))


def test_songshard_run_without_gcp_clients_says_one_line(tmp_path):
    # sitecustomize runs at interpreter start: google.cloud.storage then fails to import, as in a
    # venv without the [dataflow] extra.
    (tmp_path / "sitecustomize.py").write_text('import sys\nsys.modules["google.cloud.storage"] = None\n')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path)
    songshard = os.path.join(os.path.dirname(sys.executable), "songshard")
    done = subprocess.run([songshard, "run", *DATAFLOW_ARGS], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert lines == [lines[0]] and lines[0].startswith("songshard: ")
    assert 'pip install "songshard[dataflow]"' in lines[0] and "google.cloud.storage" in lines[0]
