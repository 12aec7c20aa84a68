"""Entry point of a songshard run: ``run(argv=None, test_pipeline=None)``.

Order of work: parse options; prepare OUT (``--overwrite`` empties it, otherwise
songs already in its index, failed or filtered before are skipped); discover
the songs; check every backend in the driver (a backend that was asked for but
cannot run stops the run here, before any song is read); build and run the
graph with a progress reporter; publish the shards and the index; write
``stats.json``; print the summary; remove the work dir.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from typing import List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import finalize
from pipeline.graph import build, check_backends, label_stages
from pipeline.options import SongshardOptions
from pipeline.progress import ProgressReporter
from transforms import workdir
from transforms.discover import discover

log = logging.getLogger("songshard")

OUTPUT_PARTS = ("index", "failures", "filtered", "runs", "codec", "stats.json", "_work")


def _clear_output(output: str) -> None:
    for uri in finalize._list(FileSystems.join(output, "*.tar")):
        FileSystems.delete([uri])
    for part in OUTPUT_PARTS:
        workdir.delete_tree(FileSystems.join(output, part))


def resume_state(output: str, retry_failed: bool) -> dict:
    """What OUT already holds: done song ids and URIs, and URIs that failed or were filtered."""
    table = finalize.read_index(output)
    done_ids = set(table.column("key").to_pylist()) if table.num_rows else set()
    done_uris = set(table.column("uri").to_pylist()) if table.num_rows else set()
    earlier = (finalize.read_jsonl(FileSystems.join(output, "failures", "*.jsonl"))
               + finalize.read_jsonl(FileSystems.join(output, "filtered", "*.jsonl")))
    if retry_failed:
        for part in ("failures", "filtered"):
            workdir.delete_tree(FileSystems.join(output, part))
        earlier = []
    return {"ids": done_ids, "uris": done_uris | {r["uri"] for r in earlier}}


def _stage_metrics(result) -> dict:
    """{stage: {succeeded, failed, mean_latency_s, audio_s}} from the runner's metrics."""
    stages: dict = {}
    try:
        metrics = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners report no metrics
        return stages
    for c in metrics.get("counters", []):
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
    return stages


def _config(opts: SongshardOptions) -> dict:
    values = opts.get_all_options(drop_default=False, retain_unknown_options=True)
    return {k: v for k, v in sorted(values.items()) if isinstance(v, (str, int, float, bool, type(None), list))}


def run(argv: Optional[List[str]] = None, test_pipeline: Optional[beam.Pipeline] = None, stages=None) -> dict:
    """Run songshard; returns the run's stats dict (also written to OUT/stats.json).

    ``test_pipeline`` replaces the pipeline (tests); ``stages`` replaces the
    list of model stages (graph tests). Raises ValueError / FileNotFoundError for
    bad input options and BackendUnavailable when a backend cannot run.
    """
    started = time.time()
    pipeline_options = PipelineOptions(argv)
    opts = pipeline_options.view_as(SongshardOptions)
    if not opts.input or not opts.output:
        raise ValueError("both --input and --output are required")
    output = opts.output.rstrip("/")
    if opts.overwrite:
        _clear_output(output)
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    work_root = (opts.work_dir or FileSystems.join(output, "_work")).rstrip("/")
    opts.work_dir = FileSystems.join(work_root, run_id)
    if getattr(opts, "codec", "") == "kmeans" and not getattr(opts, "codec_weights", None):
        opts.codec_weights = FileSystems.join(output, "codec", "codebook.npz")

    uris = discover(opts.input)
    state = resume_state(output, opts.retry_failed)
    todo = [u for u in uris if u not in state["uris"]]
    stages = label_stages() if stages is None else stages
    backends = check_backends(opts, stages)
    config = _config(opts)
    run_info = {"run_id": run_id, "config_sha256": hashlib.sha256(
        json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16],
        "backends": backends, "config": config}
    sample_run = {k: run_info[k] for k in ("run_id", "config_sha256")}
    opts.progress_dir = opts.progress_dir or FileSystems.join(opts.work_dir, "progress")
    paths = {"tmp": FileSystems.join(opts.work_dir, "shards"),
             "progress": opts.progress_dir,
             "manifest": FileSystems.join(opts.work_dir, "manifest", "shards"),
             "failures": FileSystems.join(output, "failures", run_id),
             "filtered": FileSystems.join(output, "filtered", run_id)}
    log.info("songshard %s: %d songs found, %d to do, backends %s", run_id, len(uris), len(todo),
             {k: v["backend"] for k, v in backends.items()})
    print(f"[songshard] run {run_id}: {len(uris)} songs found, {len(todo)} to do "
          f"({len(uris) - len(todo)} already in {output})", flush=True)

    published: List[dict] = []
    stage_metrics: dict = {}
    if todo:
        p = test_pipeline or beam.Pipeline(options=pipeline_options)
        build(p, opts, todo, sample_run, paths, stages=stages, skip_ids=state["ids"])
        order = ["decode"] + [t.fn_class.stage for _, t in stages]
        with ProgressReporter(paths["progress"], len(todo), opts.progress_interval, stage_order=order):
            result = p.run()
            result.wait_until_finish()
        stage_metrics = _stage_metrics(result)
        published = publish(output, paths, run_id)
    failures = finalize.read_jsonl(paths["failures"] + "*.jsonl")
    dropped = finalize.read_jsonl(paths["filtered"] + "*.jsonl")
    stats = finalize.summarise(run_info, len(uris), len(uris) - len(todo), published, failures, dropped,
                               time.time() - started, stage_metrics)
    finalize.write_stats(output, stats)
    if not opts.keep_work:
        workdir.delete_tree(opts.work_dir)
    print(finalize.format_summary(stats), flush=True)
    return stats


def publish(output: str, paths: dict, run_id: str) -> List[dict]:
    return finalize.publish_shards(output, paths["manifest"] + "*.jsonl", run_id)
