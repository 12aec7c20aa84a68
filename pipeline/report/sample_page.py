"""``samples/KEY.html``: one sample in full. Pure (returns HTML).

In: a decoded sample (``json`` dict, token arrays, audio bytes), its index row,
what :func:`extract.write_media` wrote for it and the neighbouring keys. Out: the
page: players for the mix and stems, the timeline, the lyric line, descriptions,
tier and quality figures, the token streams as images, provenance and the full
label JSON in a ``<details>``.
"""

from __future__ import annotations

import json
import re
from typing import Optional, Sequence

from pipeline.report import layout
from pipeline.report.layout import esc, num
from pipeline.report.timeline import fmt_time, timeline_html

TRACK_NAMES = {"mix.flac": "mix", "vocals.flac": "vocals", "accompaniment.flac": "accompaniment"}
TAG_RE = re.compile(r"(\[[a-z-]+\](?:\[[0-9.:]+\])?)")


def lyric_html(line: str) -> str:
    """The gt_lyric line with its section tags highlighted (escaped)."""
    return "".join(f'<span class="tag">{esc(part)}</span>' if TAG_RE.fullmatch(part) else esc(part)
                   for part in TAG_RE.split(line or ""))


def _header(rec: dict, row: dict) -> str:
    lyr = rec.get("labels", {}).get("lyrics", {}) or {}
    tags = rec.get("labels", {}).get("tags", {}) or {}
    pills = [rec.get("split"), f"{rec.get('duration', 0):.1f} s" + (" (cut)" if rec.get("truncated") else ""),
             f"{lyr.get('language') or '?'} p={num(lyr.get('language_probability'), 2)}",
             f"bpm {num(rec.get('labels', {}).get('structure', {}).get('bpm'), 3)}",
             tags.get("genre"), tags.get("emotion"), tags.get("gender"), "pure music" if rec.get("pure_music") else ""]
    title = " – ".join(x for x in (rec.get("artist"), rec.get("title")) if x) or rec.get("key")
    return (f'<h1>{esc(title)} <small class="mono">{esc(rec.get("key"))}</small></h1>'
            f'<p>{layout.tier_badge(rec.get("musicality", ""))} '
            + "".join(f'<span class="pill">{esc(p)}</span>' for p in pills if p)
            + f'</p><p class="muted mono">{esc(rec.get("uri"))} &middot; {esc(row.get("shard"))}</p>')


def _players(audio: dict, media_url: str) -> str:
    if not audio:
        return layout.section("Audio", '<p class="muted">This shard holds no audio (the run was made without '
                              '<code>--shard_write_audio</code>); the timeline still shows the labels.</p>')
    figs = "".join(f'<figure><figcaption>{esc(TRACK_NAMES[m])}</figcaption><audio controls preload="metadata" '
                   f'data-track="{esc(TRACK_NAMES[m])}" src="{esc(media_url + name)}"></audio></figure>'
                   for m, name in audio.items())
    return layout.section("Audio", f'<div class="players">{figs}</div>',
                          note="FLAC as stored in the shard (Chromium and Firefox play it; Safari may not). "
                               "Playing one player pauses the others; the timeline follows the one playing.")


def _lyrics(rec: dict) -> str:
    lyr = rec.get("labels", {}).get("lyrics", {}) or {}
    words = lyr.get("words", [])
    transcript = " ".join(f'<span class="tword" id="tw{i}" data-seek="{float(w["start"]):.3f}" '
                          f'title="{fmt_time(w["start"])}">{esc(w.get("text"))}</span>' for i, w in enumerate(words))
    ref = lyr.get("reference", {}) or {}
    align = lyr.get("alignment", {}) or {}
    parts = [f'<h3>gt_lyric</h3><div class="lyric">{lyric_html(rec.get("gt_lyric", ""))}</div>',
             f'<h3>descriptions</h3><div class="lyric">{esc(rec.get("descriptions", ""))}</div>']
    if words:
        parts.append(f'<h3>words <small class="muted">({len(words)}, click one to seek)</small></h3>'
                     f'<div class="transcript">{transcript}</div>')
    if rec.get("gt_lyric_timed"):
        parts.append(f'<details><summary>gt_lyric_timed</summary><div class="lyric">'
                     f'{lyric_html(rec["gt_lyric_timed"])}</div></details>')
    if ref.get("text"):
        wer = f" (WER {align['wer']:.3f})" if isinstance(align.get("wer"), (int, float)) else ""
        parts.append(f'<details><summary>reference lyrics{wer}</summary><pre>{esc(ref["text"])}</pre></details>')
    return layout.section("Lyrics and descriptions", "".join(parts))


def _scalars(d: dict) -> list:
    return [(k, num(v, 4) if not isinstance(v, str) else v) for k, v in d.items()
            if not isinstance(v, (dict, list))]


def _quality(rec: dict) -> str:
    q = rec.get("labels", {}).get("quality", {}) or {}
    sub = q.get("subscores", {}) or {}
    left = layout.kv_table(_scalars(q))
    right = layout.kv_table(_scalars(sub)) if sub else '<p class="muted">no sub-scores</p>'
    head = (f'<p>{layout.tier_badge(q.get("musicality", rec.get("musicality", "")))} score '
            f'<b>{num(q.get("musicality_score"), 3)}</b> (technical {num(q.get("technical_score"), 3)}); '
            f'conditioning {esc(" ".join(q.get("conditioning", [])))}</p>')
    return layout.section("Musicality tier and quality", head + f'<div class="two"><div>{left}</div>'
                          f'<div><h3>sub-scores</h3>{right}</div></div>')


def _tokens(rec: dict, sample: dict, images: dict, media_url: str) -> str:
    tok = rec.get("tokens", {}) or {}
    layout_names = tok.get("layout", ["mixed", "vocal", "accompaniment"])
    blocks = []
    for member, name in images.items():
        arr = sample.get(member)
        shape = f"{arr.dtype} {list(arr.shape)}" if arr is not None else ""
        rows = "".join(f"<span>{esc(n)}</span>" for n in layout_names)
        blocks.append(f'<h3>{esc(member)} <small class="muted mono">{esc(shape)}</small></h3>'
                      f'<div class="wrap"><div class="rows">{rows}</div><img src="{esc(media_url + name)}" '
                      f'alt="{esc(member)}" title="one pixel column per frame"></div>')
    info = ", ".join(f"{k} {v}" for k, v in tok.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool))
    body = "".join(blocks) or '<p class="muted">no token arrays in this sample</p>'
    return layout.section("Codec tokens", f'<div class="tokens">{body}</div>', note=esc(info) +
                          " &middot; one pixel column per 40 ms frame, colour = token id")


def _provenance(rec: dict) -> str:
    rows = [(stage, p.get("backend", ""), p.get("version", ""), p.get("weights", ""),
             (p.get("weights_sha256") or "")[:16], p.get("licence", ""))
            for stage, p in (rec.get("provenance", {}) or {}).items()]
    run = rec.get("run", {}) or {}
    note = f"run {esc(run.get('run_id', '?'))}, config sha256 {esc(run.get('config_sha256', '?'))}"
    return layout.section("Provenance", layout.table(("stage", "backend", "version", "weights", "sha256", "licence"),
                                                     rows), note=note)


def render_sample_page(sample: dict, row: dict, written: dict, media_url: str, prev_key: Optional[str] = None,
                       next_key: Optional[str] = None) -> str:
    """The page of one decoded sample; ``media_url`` is the relative URL of its media folder ("../media/KEY/")."""
    rec = sample["json"]
    duration = float(rec.get("duration") or row.get("duration") or 0.0)
    spec = media_url + written["spectrogram"] if written.get("spectrogram") else None
    pager = ('<p class="pager"><a href="../table.html#q=has:page">&larr; samples</a>'
             + (f'<a href="{esc(prev_key)}.html">previous</a>' if prev_key else "")
             + (f'<a href="{esc(next_key)}.html">next</a>' if next_key else "") + "</p>")
    body = "".join([
        pager, _header(rec, row), _players(written.get("audio", {}), media_url),
        layout.section("Timeline", timeline_html(rec.get("labels", {}), duration, spec,
                                                 written.get("waveform_svg", ""))),
        _lyrics(rec), _quality(rec), _tokens(rec, sample, written.get("tokens", {}), media_url), _provenance(rec),
        layout.section("Full label JSON", f'<details><summary>json ({len(json.dumps(rec)):,} characters)</summary>'
                                          f'<pre>{esc(json.dumps(rec, indent=2, ensure_ascii=False))}</pre></details>'),
    ])
    return layout.page(f"{rec.get('title') or rec.get('key')} – songshard", body, depth=1,
                       scripts=("assets/sample.js",))


def neighbours(keys: Sequence[str], i: int) -> tuple:
    """(previous key, next key) around position ``i`` (None at the ends)."""
    return (keys[i - 1] if i > 0 else None, keys[i + 1] if i + 1 < len(keys) else None)
