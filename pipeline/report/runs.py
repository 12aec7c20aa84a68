"""The overview's run blocks: the last run's config and backends, and every run side by side. Pure.

In: ``stats.json`` and ``runs/*.json`` as ``finalize.write_stats`` writes them
(``run_id``, figures, ``backends`` {stage: provenance}, ``config`` {stage: configuration}).
Out: HTML. Runs that predate a field show a dash, never an error.
"""

from __future__ import annotations

import json
from typing import Dict, List, Sequence

from pipeline.report import layout
from pipeline.report.layout import esc

RUN_FIGURES = (("songs_in", "songs in"), ("songs_skipped_already_done", "already done"),
               ("records_out", "records out"), ("records_by_split", "records by split"),
               ("failures", "failures"), ("filtered", "filtered"), ("hours_of_audio", "hours of audio"),
               ("wall_time_s", "wall time s"), ("realtime_factor", "s per s of audio"))


def flat_config(config: dict) -> Dict[str, object]:
    """A run's config ({stage: {backend, backend_params, params}}) as {"stage.key": value}."""
    flat: Dict[str, object] = {}
    for stage, entry in sorted((config or {}).items()):
        if not isinstance(entry, dict):
            flat[stage] = entry
            continue
        if entry.get("backend"):
            flat[f"{stage}.backend"] = entry["backend"]
        for group in ("params", "backend_params"):
            for key, value in sorted((entry.get(group) or {}).items()):
                flat[f"{stage}.{key}"] = value
    return flat


def _value(v) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return "–" if v is None else str(v)


def backends_table(backends: dict) -> str:
    """Stage, backend, version, weights, full sha256, licence and note of each stage's backend."""
    rows = [(f"<b>{esc(stage)}</b>", esc(p.get("backend")), esc(p.get("version")), esc(p.get("weights")),
             f'<code>{esc(p.get("weights_sha256") or "–")}</code>', esc(p.get("licence")),
             f'<span class="muted">{esc(p.get("note"))}</span>')
            for stage, p in sorted((backends or {}).items())]
    return layout.table(("stage", "backend", "version", "weights", "weights sha256", "licence", "note"), rows, raw=True)


def config_block(config: dict) -> str:
    """Every stage's configuration as one table ("stage.key": value)."""
    return f"<h3>configuration</h3>{layout.kv_table([(k, _value(v)) for k, v in flat_config(config).items()])}"


def last_run_section(stats: dict) -> str:
    """The run stats.json describes: its figures, backends with weights hashes, and config."""
    if not stats:
        return layout.section("Run config and backends", '<p class="muted">no stats.json in this folder</p>')
    figures = layout.kv_table([(label, _value(stats.get(k))) for k, label in RUN_FIGURES])
    stages = [(s, f"{m.get('succeeded', 0)} ok, {m.get('failed', 0)} failed, "
                  f"{m.get('mean_latency_s', 0):.2f} s/song") for s, m in sorted(stats.get("stages", {}).items())]
    body = (f'<div class="two"><div>{figures}</div><div>{layout.kv_table(stages)}</div></div>'
            f"<h3>backends</h3>{backends_table(stats.get('backends', {}))}{config_block(stats.get('config', {}))}")
    return layout.section("Run config and backends", body, anchor="config",
                          note=f"the last run: {esc(stats.get('run_id', '?'))} (stats.json)")


def _backend_cell(p: dict) -> str:
    sha = (p.get("weights_sha256") or "")[:12]
    return " ".join(x for x in (p.get("backend", ""), p.get("version", ""), f"sha {sha}" if sha else "") if x)


def comparison_rows(runs: Sequence[dict]) -> List[tuple]:
    """[(label, [value per run], differs)] over figures, backends and the config keys that differ."""
    rows = [(label, [_value(r.get(k)) for r in runs]) for k, label in RUN_FIGURES]
    rows.append(("shards", [str(len(r.get("shards", []))) for r in runs]))
    stages = sorted({s for r in runs for s in r.get("backends", {})})
    rows += [(f"backend: {s}", [_backend_cell(r.get("backends", {}).get(s, {})) or "–" for r in runs])
             for s in stages]
    flats = [flat_config(r.get("config", {})) for r in runs]
    keys = sorted({k for f in flats for k in f})
    differing = [k for k in keys if len({_value(f.get(k)) for f in flats}) > 1]
    rows += [(f"config: {k}", [_value(f.get(k)) for f in flats]) for k in differing]
    return [(label, values, len(set(values)) > 1) for label, values in rows]


def runs_section(runs: Sequence[dict]) -> str:
    """Every run into this OUT side by side, one column a run; rows that differ are highlighted."""
    if not runs:
        return layout.section("Runs", '<p class="muted">no runs/*.json in this folder</p>', anchor="runs")
    head = "<th></th>" + "".join(f'<th class="mono">{esc(r.get("run_id", "?"))}</th>' for r in runs)
    body = "".join(f'<tr{" class=diff" if diff and len(runs) > 1 else ""}><td>{esc(label)}</td>'
                   + "".join(f"<td>{esc(v)}</td>" for v in values) + "</tr>"
                   for label, values, diff in comparison_rows(runs))
    note = (f"{len(runs)} run(s) into this folder, oldest first; highlighted rows differ between runs; "
            "config rows list only the options that differ")
    return layout.section("Runs", f'<div style="overflow-x:auto"><table class="grid"><thead><tr>{head}</tr></thead>'
                                  f"<tbody>{body}</tbody></table></div>", anchor="runs", note=note)
