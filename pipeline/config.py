"""Configuration, resolved once in the driver into frozen objects.

:func:`resolve` parses the command line (songshard's flags and Beam's), asks each
stage to resolve and validate its own flags (``Stage.configure``), and returns a
:class:`RunConfig`. Nothing writes into the parsed options afterwards, and no
stage reads them: each gets its StageConfig and the RunContext explicitly.

The config hash covers what changes labels (every stage's configuration) and
nothing about where a run lives (input, OUT, work dir, run id), so two runs
with the same flags carry the same ``config_sha256``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from apache_beam.options.pipeline_options import DebugOptions, GoogleCloudOptions, PipelineOptions

from pipeline.graph import MODEL_STAGES, configurable_stages
from pipeline.launcher import check_launcher, is_dataflow
from pipeline.options import SongshardOptions
from transforms.core import claims, workdir
from transforms.core.config import StageConfig, config_sha256


@dataclass(frozen=True)
class RunConfig:
    """Run-level settings plus every stage's StageConfig, in graph order."""

    input: str
    output: str
    work_root: str
    overwrite: bool
    retry_failed: bool
    keep_work: bool
    work_audio: str
    progress_interval: float
    song_time_limit: float
    dedupe: str
    local_workers: int  # worker processes of a local multi-process run (0: another runner or layout)
    worker_threads: int  # CPU threads per worker process (thread_budget; 0: the libraries' defaults)
    live_metrics: bool  # the runner reports metrics while the job runs (Dataflow): progress reads them
    template_location: str  # Dataflow: write the job as a template there instead of submitting it
    stages: Tuple[StageConfig, ...]
    model_stages: Tuple[type, ...]

    def stage(self, name: str) -> StageConfig:
        for config in self.stages:
            if config.stage == name:
                return config
        return StageConfig(name)

    def to_dict(self) -> dict:
        """What the labels depend on: {stage: {backend, backend_params, params}}."""
        return {c.stage: c.to_dict() for c in self.stages}

    @property
    def sha256(self) -> str:
        return config_sha256(self.to_dict())


def stage_values(argv: Optional[List[str]], stages: Sequence[type]) -> dict:
    """{flag: value} of every stage's flags, typed and defaulted by the stages' own declarations."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for stage in stages:
        stage.add_options(parser.add_argument_group(stage.stage))
    known, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    return vars(known)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: ``taskset``, a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def local_defaults(argv: List[str], cores: Optional[int] = None) -> List[str]:
    """``argv`` plus, for a local run that names no runner layout of its own, one worker process per
    core (DirectRunner's multi_processing mode): a local run uses every core by default."""
    names = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    runner = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--runner"),
                  next((a.split("=", 1)[1] for a in argv if a.startswith("--runner=")), "DirectRunner"))
    if runner not in ("DirectRunner", "direct") or names & {"--direct_running_mode", "--direct_num_workers"}:
        return list(argv)
    return list(argv) + ["--direct_running_mode", "multi_processing",
                         "--direct_num_workers", str(cores or available_cores())]


def work_audio_format(choice: str, work_root: str) -> str:
    """``--work_audio``: ``auto`` is bit-exact npz where the work dir is a local disk and 24-bit FLAC
    where every byte crosses a network (a bucket): a third of the bytes there. FLAC is not the local
    default because its quantisation (112 dB below the signal) is not nothing to the ASR: on the
    real-music set it changed which segments of 2 borderline sung songs passed the ASR guards."""
    if choice != "auto":
        return choice
    return "npz" if workdir.is_local(work_root) else "flac24"


def local_workers(pipeline_options: PipelineOptions) -> int:
    """Worker processes of a local multi-process DirectRunner run (0 for any other runner or mode)."""
    direct = pipeline_options.get_all_options()
    runner = str(direct.get("runner") or "DirectRunner")
    if runner not in ("DirectRunner", "direct") or direct.get("direct_running_mode") != "multi_processing":
        return 0
    return int(direct.get("direct_num_workers") or 0)


def on_dataflow(pipeline_options: PipelineOptions) -> bool:
    return is_dataflow(pipeline_options.get_all_options().get("runner"))


def thread_budget(pipeline_options: PipelineOptions, cores: Optional[int] = None) -> int:
    """Threads per worker process (0: leave the libraries' defaults).

    ``--worker_threads`` when given; else, for a local multi-process run, cores / workers; for
    Dataflow, one: it runs one SDK process per vCPU, each of which would otherwise start a thread
    per core (8 processes x 8 threads on an 8-vCPU machine), unless the job asks for one SDK process
    per machine (``--experiments no_use_multiple_sdk_containers``), which then has every core.
    """
    explicit = int(pipeline_options.get_all_options().get("worker_threads") or 0)
    if explicit:
        return explicit
    workers = local_workers(pipeline_options)
    if workers:
        return max(1, (cores or available_cores()) // workers)
    if on_dataflow(pipeline_options):
        experiments = pipeline_options.view_as(DebugOptions).experiments or []
        return 0 if "no_use_multiple_sdk_containers" in experiments else 1
    return 0


def resolve(argv: Optional[List[str]] = None,
            model_stages: Optional[Sequence[type]] = None) -> Tuple[PipelineOptions, RunConfig]:
    """(Beam's PipelineOptions, the RunConfig) for a command line.

    A local run gets one worker process per core unless the command line says otherwise
    (:func:`local_defaults`). Raises ValueError for missing or bad flags and
    BackendUnavailable for an unknown backend, before anything is read or written.
    """
    argv = local_defaults(list(sys.argv[1:] if argv is None else argv))
    pipeline_options = PipelineOptions(argv)
    check_launcher(pipeline_options)  # the launcher can build a job its workers accept, and reach gs://
    opts = pipeline_options.view_as(SongshardOptions)
    if not opts.input or not opts.output:
        raise ValueError("both --input and --output are required")
    stages = list(MODEL_STAGES if model_stages is None else model_stages)
    values = stage_values(argv, configurable_stages(stages))
    configs = tuple(stage.configure(values) for stage in configurable_stages(stages))
    output = opts.output.rstrip("/")
    work_root = (opts.work_dir or output + "/_work").rstrip("/")
    if opts.dedupe == "claims":
        claims.check_supported(work_root)
    if opts.overwrite and pipeline_options.view_as(GoogleCloudOptions).template_location:
        raise ValueError("--overwrite with --template_location would empty OUT now, when the job is built, "
                         "not when it runs: empty OUT yourself before launching the template")
    config = RunConfig(input=opts.input, output=output, work_root=work_root,
                       overwrite=bool(opts.overwrite), retry_failed=bool(opts.retry_failed),
                       keep_work=bool(opts.keep_work),
                       work_audio=work_audio_format(opts.work_audio, work_root),
                       progress_interval=float(opts.progress_interval),
                       song_time_limit=float(opts.song_time_limit or 0.0),
                       dedupe=opts.dedupe, local_workers=local_workers(pipeline_options),
                       worker_threads=thread_budget(pipeline_options), live_metrics=on_dataflow(pipeline_options),
                       template_location=pipeline_options.view_as(GoogleCloudOptions).template_location or "",
                       stages=configs, model_stages=tuple(stages))
    return pipeline_options, config
