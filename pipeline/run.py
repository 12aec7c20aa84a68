"""Entry point of a songshard run: ``run(argv=None, test_pipeline=None)``.

Order of work: resolve the configuration (every stage checks its own flags);
prepare OUT (``--overwrite`` empties it, otherwise songs already in its index,
failed or filtered before are skipped); discover the songs; check every
backend in the driver (a backend that was asked for but cannot run stops the
run here, before any song is read); build and run the graph with a progress
reporter; publish the shards and the index; write ``stats.json``; print the
summary; remove the work dir.
"""

from __future__ import annotations

import contextlib
import functools
import datetime as dt
import logging
import os
import time
import uuid
from typing import Iterator, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import finalize
from pipeline.config import RunConfig, resolve
from pipeline.graph import build
from pipeline.progress import NAMESPACE as PROGRESS_NAMESPACE
from pipeline.progress import ProgressReporter, count_done, metric_counts
from transforms.core import workdir
from transforms.core.config import WORKER_THREADS_ENV, RunContext
from transforms.discover import discover
from transforms.shard import PARTS

log = logging.getLogger("songshard")

OUTPUT_PARTS = ("index", "failures", "filtered", "runs", "codec", "stats.json", "_work", "_parts")


def _clear_output(output: str) -> None:
    """``--overwrite``: delete OUT's shards, half-written ones, and every file and folder a run writes
    there (:data:`OUTPUT_PARTS`), locally or in a bucket. Raises BeamIOError when the store refuses."""
    shards = (finalize.list_uris(FileSystems.join(output, "*.tar"))
              + finalize.list_uris(FileSystems.join(output, "*.tar.tmp-*")))
    if shards:
        FileSystems.delete(shards)
    for part in OUTPUT_PARTS:
        workdir.delete_tree(FileSystems.join(output, part))


def resume_state(output: str, retry_failed: bool) -> dict:
    """What OUT already holds: done song ids and URIs, and URIs that failed or were filtered.

    ``retry_failed``: the failure and drop records are deleted (local or in a bucket) and their
    songs are not skipped. Raises BeamIOError when OUT cannot be listed (never read as empty)."""
    table = finalize.read_index(output)
    done_ids = set(table.column("key").to_pylist()) if table.num_rows else set()
    done_uris = set(table.column("uri").to_pylist()) if table.num_rows else set()
    parts = finalize.read_parts(output)  # finished by a run that was killed before it packed them
    done_ids |= {r["key"] for r in parts}
    done_uris |= {r["uri"] for r in parts}
    earlier = (finalize.read_jsonl(FileSystems.join(output, "failures", "*.jsonl"))
               + finalize.read_jsonl(FileSystems.join(output, "filtered", "*.jsonl")))
    if retry_failed:
        for part in ("failures", "filtered"):
            workdir.delete_tree(FileSystems.join(output, part))
        earlier = []
    return {"ids": done_ids, "uris": done_uris | {r["uri"] for r in earlier}}


def _stage_metrics(result) -> dict:
    """{stage: {succeeded, failed, mean_latency_s, total_s, audio_s, peak_rss_mb[, model_total_s]}} from the
    runner's metrics (peak_rss_mb: the highest peak RSS of a worker process while the stage ran one song;
    model_total_s: the tags stage's seconds in its model alone)."""
    stages: dict = {}
    try:
        metrics = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners report no metrics
        return stages
    for c in metrics.get("counters", []):
        if c.key.metric.namespace == PROGRESS_NAMESPACE:  # the progress line's counters, not a stage
            continue
        stages.setdefault(c.key.metric.namespace, {})[c.key.metric.name] = c.committed or c.attempted or 0
    for d in metrics.get("distributions", []):
        value = d.committed or d.attempted
        if value is None or not value.count:
            continue
        entry = stages.setdefault(d.key.metric.namespace, {})
        if d.key.metric.name == "latency_ms":
            entry["mean_latency_s"] = round(value.sum / value.count / 1000.0, 3)
            entry["total_s"] = round(value.sum / 1000.0, 1)
        elif d.key.metric.name == "audio_ms":
            entry["audio_s"] = round(value.sum / 1000.0, 1)
        elif d.key.metric.name == "model_ms":  # the tags stage: its model alone
            entry["model_total_s"] = round(value.sum / 1000.0, 1)
        elif d.key.metric.name == "peak_rss_mb":
            entry["peak_rss_mb"] = value.max
    return stages


def check_backends(config: RunConfig) -> dict:
    """Start-up check of every model stage's backend, in the driver; {stage: provenance dict}.

    Raises BackendUnavailable (with the backend's own message) before any song is read.
    """
    found = {}
    for stage in config.model_stages:
        provenance = stage.check(config.stage(stage.stage))
        if provenance is not None:
            found[stage.stage] = provenance.to_dict()
    return found


# glibc hands arrays over 32 MB straight back to the kernel when they are freed, and every new one is
# then faulted in and zeroed page by page. The stages allocate and free such arrays for every block
# of every song; with two worker processes doing so at once, that page churn cost about a tenth of
# the run (18 real songs, 2 workers: 197.6 s, 44 s of system time; with these: 178.4 s, 29 s) for
# 190 MB more peak RSS. The worker image sets the same (docker/Dockerfile).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(512 << 20)}


@contextlib.contextmanager
def worker_environment(threads: int) -> Iterator[None]:
    """While the pipeline runs, worker processes inherit a thread budget of ``threads`` each and
    :data:`MALLOC_ENV` (0: leave the environment alone). Values the user set win; the driver's
    environment is restored."""
    names = (WORKER_THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", *MALLOC_ENV)
    saved = {name: os.environ.get(name) for name in names}
    if threads:
        for name in names:
            os.environ.setdefault(name, MALLOC_ENV.get(name, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _write_template(p: beam.Pipeline, config: RunConfig, run_id: str, songs_in: int, todo: int) -> dict:
    """Build the Dataflow job and write it as a template (``--template_location``) without submitting it:
    the graph, options and staged files go where Dataflow would read them; nothing runs, nothing is
    packed, no stats are written. Returns {run_id, template, songs_in, songs_to_do}."""
    p.run()
    print(f"[songshard] run {run_id}: job built, not submitted: template at {config.template_location} "
          f"(launch it with `gcloud dataflow jobs run`; when it is done, `songshard pack {config.output}`)",
          flush=True)
    return {"run_id": run_id, "template": config.template_location, "songs_in": songs_in, "songs_to_do": todo}


def run(argv: Optional[List[str]] = None, test_pipeline: Optional[beam.Pipeline] = None,
        stages: Optional[Sequence[type]] = None) -> dict:
    """Run songshard; returns the run's stats dict (also written to OUT/stats.json).

    ``test_pipeline`` replaces the pipeline (tests); ``stages`` replaces the
    list of model stages (graph tests). Raises ValueError / FileNotFoundError for
    bad input options and BackendUnavailable when a backend cannot run.
    """
    started = time.time()
    pipeline_options, config = resolve(argv, stages)
    FileSystems.set_options(pipeline_options)  # the driver's own reads and writes use the run's --s3_* / GCS options
    if config.overwrite:
        _clear_output(config.output)
    run_id = new_run_id()
    context = RunContext(run_id=run_id, output=config.output, work_dir=FileSystems.join(config.work_root, run_id),
                         config_sha256=config.sha256, song_time_limit=config.song_time_limit,
                         work_audio=config.work_audio, dedupe=config.dedupe,
                         worker_threads=config.worker_threads)
    uris = discover(config.input)
    state = resume_state(config.output, config.retry_failed)
    todo = [u for u in uris if u not in state["uris"]]
    backends = check_backends(config)
    run_info = {**context.sample_run(), "backends": backends, "config": config.to_dict()}
    paths = {"parts": FileSystems.join(config.output, PARTS),  # progress files only where metrics come late
             "progress": "" if config.live_metrics else FileSystems.join(context.work_dir, "progress"),
             "failures": FileSystems.join(config.output, "failures", run_id),
             "filtered": FileSystems.join(config.output, "filtered", run_id)}
    log.info("songshard %s: %d songs found, %d to do, backends %s", run_id, len(uris), len(todo),
             {k: v["backend"] for k, v in backends.items()})
    print(f"[songshard] run {run_id}: {len(uris)} songs found, {len(todo)} to do "
          f"({len(uris) - len(todo)} already in {config.output})", flush=True)

    published: List[dict] = []
    stage_metrics: dict = {}
    if todo:
        p = test_pipeline or beam.Pipeline(options=pipeline_options)
        build(p, config, context, paths)
        if config.template_location:
            return _write_template(p, config, run_id, len(uris), len(todo))
        job: dict = {}  # the running job, once the runner hands it back (Dataflow: at once)
        counts = (lambda: metric_counts(job.get("result"))) if config.live_metrics \
            else functools.partial(count_done, paths["progress"])
        with worker_environment(config.worker_threads if config.local_workers else 0), \
                ProgressReporter(counts, len(todo), config.progress_interval):
            job["result"] = result = p.run()
            result.wait_until_finish()
        stage_metrics = _stage_metrics(result)
    shard = config.stage("shard")  # parts this run or a killed earlier one finished become shards
    published = finalize.pack_parts(config.output, run_id, int(shard.get("max_samples", 1000)),
                                    float(shard.get("max_bytes", 1e9)))
    failures = finalize.read_jsonl(paths["failures"] + "*.jsonl")
    dropped = finalize.read_jsonl(paths["filtered"] + "*.jsonl")
    stats = finalize.summarise(run_info, len(uris), len(uris) - len(todo), published, failures, dropped,
                               time.time() - started, stage_metrics)
    finalize.write_stats(config.output, stats)
    if not config.keep_work:
        workdir.delete_tree(context.work_dir)
    print(finalize.format_summary(stats), flush=True)
    return stats
