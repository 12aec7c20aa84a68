"""Launcher-side checks, run once in the driver before anything is read.

A Dataflow job is built by the launcher and run by workers from the worker image
(docker/Dockerfile). Beam's workers refuse descriptors from another SDK version,
and the launcher pickles functions that the workers' Python must unpickle, so the
launcher must run the image's Beam (pipeline/versions.py's ``BEAM_VERSION``) on
the image's Python (3.11). Remote paths need Beam's filesystem clients, which are
extras: without them Beam fails deep inside its first read with a traceback.

:func:`check_launcher` turns each of these into one ValueError line that says
what to do. Everything it looks at can be injected, so tests run it with any
Python version, Beam version or set of importable modules.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from pipeline.options import SongshardOptions
from pipeline.versions import BEAM_VERSION, WORKER_PYTHON

DATAFLOW_RUNNERS = ("dataflowrunner", "dataflow", "testdataflowrunner")

# What each remote scheme needs importable, and the extra that installs it (setup.py's EXTRAS).
# gcsio imports the GCS client inside a try and fails only when a GcsIO is made, so the client
# itself is checked too; the same holds for s3io and boto3.
SCHEME_MODULES = {
    "gs://": ("dataflow", ("apache_beam.io.gcp.gcsio", "google.cloud.storage")),
    "s3://": ("s3", ("apache_beam.io.aws.s3io", "boto3")),
}
# DataflowRunner also needs Beam's Dataflow API client (google-cloud-dataflow-client, in the same extra).
DATAFLOW_MODULES = SCHEME_MODULES["gs://"][1] + ("apache_beam.runners.dataflow.internal.apiclient",)
SCHEME_NAMES = {"dataflow": "Google Cloud (gs://, DataflowRunner)", "s3": "AWS (s3://)"}

Importer = Callable[[str], object]


def is_dataflow(runner: Optional[str]) -> bool:
    """Whether ``--runner`` names Dataflow (``DataflowRunner``, ``dataflow`` or a dotted path to it)."""
    return bool(runner) and str(runner).rsplit(".", 1)[-1].lower() in DATAFLOW_RUNNERS


def install_hint(extra: str) -> str:
    return f'pip install "songshard[{extra}]" (or ".[{extra}]" from a checkout)'


def missing_modules(modules: Iterable[str], import_module: Importer) -> List[str]:
    """The modules of ``modules`` that ``import_module`` cannot import (ImportError), in order."""
    missing = []
    for name in modules:
        try:
            import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def extra_problem(extra: str, modules: Sequence[str], import_module: Importer) -> Optional[str]:
    """One line naming ``extra`` when any of ``modules`` is missing, else None."""
    missing = missing_modules(modules, import_module)
    if not missing:
        return None
    return (f"{SCHEME_NAMES[extra]} support is not installed ({', '.join(missing)} cannot be imported): "
            f"{install_hint(extra)}")


def remote_paths(pipeline_options: PipelineOptions) -> List[str]:
    """Every location the run reads or writes: input, output, work dir, Beam's temp and staging."""
    opts = pipeline_options.view_as(SongshardOptions)
    gcp = pipeline_options.view_as(GoogleCloudOptions)
    return [p for p in (opts.input, opts.output, opts.work_dir, gcp.temp_location, gcp.staging_location) if p]


def dataflow_problem(python_version: Tuple[int, ...], beam_version: str) -> Optional[str]:
    """Why this launcher cannot build a job for the worker image, or None."""
    if tuple(python_version[:2]) != tuple(WORKER_PYTHON):
        have = ".".join(str(v) for v in python_version[:2])
        want = ".".join(str(v) for v in WORKER_PYTHON)
        return (f"DataflowRunner: this launcher runs Python {have}, the worker image runs Python {want} "
                f"(apache/beam_python{want}_sdk): launch from a Python {want} environment")
    if beam_version != BEAM_VERSION:
        return (f"DataflowRunner: this launcher has apache-beam {beam_version}, the worker image has "
                f"{BEAM_VERSION} (pipeline/versions.py) and refuses jobs from another SDK: "
                f"{install_hint('dataflow')}")
    return None


def launcher_problem(runner: Optional[str], paths: Sequence[str], python_version: Tuple[int, ...],
                     beam_version: str, import_module: Importer) -> Optional[str]:
    """The first reason the run cannot start from this launcher, as one line, or None.

    Pure apart from ``import_module``: the runner name, the run's paths, the Python
    version and the installed Beam version are plain values.
    """
    if is_dataflow(runner):
        problem = (dataflow_problem(python_version, beam_version)
                   or extra_problem("dataflow", DATAFLOW_MODULES, import_module))
        if problem:
            return problem
    for scheme, (extra, modules) in SCHEME_MODULES.items():
        if any(str(p).startswith(scheme) for p in paths):
            problem = extra_problem(extra, modules, import_module)
            if problem:
                return problem
    return None


def installed_beam_version() -> str:
    import apache_beam

    return apache_beam.__version__


def check_launcher(pipeline_options: PipelineOptions, *, python_version: Optional[Tuple[int, ...]] = None,
                   beam_version: Optional[str] = None,
                   import_module: Importer = importlib.import_module) -> None:
    """Raise ValueError (one line, no ``songshard:`` prefix) when this launcher cannot start the run.

    For ``--runner DataflowRunner``: Python must be the worker image's (3.11), the
    installed apache-beam must be pipeline/versions.py's BEAM_VERSION, and Beam's
    GCP clients must import. For any runner: a gs:// or s3:// input, output, work dir
    or temp location needs the ``dataflow`` or ``s3`` extra. ``python_version``,
    ``beam_version`` and ``import_module`` default to this process's; tests inject them.
    """
    problem = launcher_problem(
        pipeline_options.view_as(StandardOptions).runner,
        remote_paths(pipeline_options),
        tuple(sys.version_info[:2]) if python_version is None else tuple(python_version),
        installed_beam_version() if beam_version is None else beam_version,
        import_module)
    if problem:
        raise ValueError(problem)
