"""Section shaping: an analyser's sections cleaned into the section line a LeVo-style trainer learns from.

In: the analyser's sections ``[{"start", "end", "label"}]`` (intro, outro, verse, chorus, bridge,
inst, solo, break, start, end, silence, a synonym from ``sections.LABEL_FAMILY`` or a training tag
such as ``intro-short``), the beat grid (beats, downbeats in seconds, bpm), the vocal-activity
timeline (``[[start, end], ...]`` seconds; ``[]`` for an instrumental, ``None`` when unknown),
optional per-section features and the song's duration.
Out: sections ``[{"start", "end", "label"}]`` tiling [0, duration], labelled intro / outro / verse /
chorus / bridge / inst / silence (``sections.with_tags`` adds the training tags), such that

* there is at most one intro, first, and at most one outro, last (a leading or trailing silence of
  at least ``silence_keep_s`` may stand outside them; shorter silences are absorbed);
* no two adjacent sections share a wordless family (intro, outro, inst, silence);
* inner boundaries sit on downbeats (where one lies within a bar), 4- and 8-bar phrases preferred;
  no section is shorter than 2 bars (it joins its more similar neighbour);
* with a vocal timeline, sung stretches are verse / chorus / bridge and vocal-free stretches of at
  least a phrase (4 bars, and 6 s) are wordless: intro before the first sung one, outro after the
  last, inst between; shorter pauses are breaths inside a sung section. Less than ``vocal_song_s``
  of singing in all makes the song instrumental: its sung-labelled sections become intro (first),
  outro (last) or inst, then the rules above leave a few long sections;
* there are at most 14 sections, and while there are more than one per 20 s of song (4 at least)
  neighbours with the same label (a verse cut in pieces) merge; the most similar, then shortest,
  adjacent pairs go first.

Shaping is idempotent: shaping its own output (features omitted) returns it unchanged.
``check_shape`` / ``shape_ok`` state the same rules on finished tag lines, for tests and evaluation.
Pure functions on numbers: no audio, no models, no Beam.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.core import sections as sec
from transforms.core.shape_rules import (LYRIC, MAX_SECTIONS, WORDLESS, canonical_label,  # noqa: F401
                                              check_shape, lyric_problems, parse_gt_lyric, position_labels,
                                              settle_tags, shape_ok, tag_family, window_sections)

MAX_ROUNDS = 6  # re-shaping rounds until the output is a fixed point (real inputs settle in 1-2)


@dataclass(frozen=True)
class ShapeConfig:
    """Knobs of the shaping; the defaults are the training-side rules (module docstring)."""

    min_bars: float = 2.0  # no section shorter than this
    phrase_bars: float = 4.0  # a vocal-free stretch this long between sung ones is its own section
    phrase_min_s: float = 6.0  # ... and at least this long (double-tempo grids make bars short)
    silence_keep_s: float = 4.0  # shorter silences join a neighbour
    vocal_song_s: float = 8.0  # less singing than this in all: an instrumental (VAD slips, a shout)
    seconds_per_section: float = 20.0  # soft cap, one section per this many seconds: over it,
    # same-label neighbours (a verse cut in pieces) merge; verse / chorus alternation stays
    min_limit: int = 4
    max_sections: int = MAX_SECTIONS
    phrase_weight: float = 0.4  # bars of snapping distance a 4/8-bar phrase is worth; < 1 so a
    # boundary already on a downbeat never moves (shaping stays idempotent)
    nominal_bar_s: float = 2.0  # bar length without any grid (4/4 at 120 bpm)


@dataclass
class _Seg:
    start: float
    end: float
    label: str
    feat: Dict = field(default_factory=dict)

    @property
    def length(self) -> float:
        """Seconds."""
        return self.end - self.start


def section_limit(duration: float, config: Optional[ShapeConfig] = None) -> int:
    """Soft cap on sections for a song of ``duration`` s: one per ``seconds_per_section``, clamped
    to [min_limit, max_sections]. Over it only same-label neighbours merge; over max_sections any."""
    cfg = config or ShapeConfig()
    per = int(duration // cfg.seconds_per_section) if cfg.seconds_per_section > 0 else cfg.max_sections
    return max(1, min(cfg.max_sections, max(cfg.min_limit, per)))


def _times(values, duration: float) -> np.ndarray:
    """Finite times within [0, duration], sorted, unique at millisecond precision."""
    arr = np.asarray([] if values is None else list(values), dtype=float).reshape(-1)
    arr = arr[np.isfinite(arr) & (arr >= 0.0) & (arr <= duration)]
    return np.unique(np.round(arr, 3))


def bar_grid(beats: Sequence[float], downbeats: Sequence[float], bpm: float, duration: float,
             nominal_bar_s: float = 2.0) -> Tuple[np.ndarray, float]:
    """(downbeats strictly inside (0, duration), bar length in seconds) from whatever grid there is.

    Downbeats win; else every 4th beat (4/4 assumed); else a bpm grid anchored on the first beat
    or downbeat; else no grid (empty array) and ``nominal_bar_s``. Never fails on empty input.
    """
    db, bt = _times(downbeats, duration), _times(beats, duration)
    if len(db) < 2 and len(bt) >= 8:
        db = bt[::4]
    if len(db) >= 2:
        bar = float(np.median(np.diff(db)))
    elif bpm and bpm > 0:
        bar = 240.0 / float(bpm)
        anchor = float(db[0]) if len(db) else (float(bt[0]) if len(bt) else 0.0)
        db = np.round(np.arange(anchor % bar, duration, bar), 3)
    else:
        return np.array([]), float(nominal_bar_s)
    if not bar > 0:
        return np.array([]), float(nominal_bar_s)
    return db[(db > 1e-3) & (db < duration - 1e-3)], bar


def _snap_points(t: float, grid: np.ndarray, bar: float) -> List[float]:
    """The downbeats on either side of ``t`` within a bar; ``[t]`` when there is none."""
    if not len(grid):
        return [t]
    i = int(np.searchsorted(grid, t))
    near = [float(grid[j]) for j in (i - 1, i, i + 1) if 0 <= j < len(grid) and abs(grid[j] - t) <= bar + 1e-6]
    return near or [t]


def _phrase_penalty(bars: float) -> float:
    """0 for a section of 8k bars, 0.1 for 4k, 0.5 for 2k, 1 otherwise (or empty)."""
    n = int(round(bars))
    if n <= 0:
        return 1.0
    return 0.0 if n % 8 == 0 else 0.1 if n % 4 == 0 else 0.5 if n % 2 == 0 else 1.0


def vocal_spans(regions: Sequence[Sequence[float]], grid: np.ndarray, bar: float, duration: float,
                config: Optional[ShapeConfig] = None) -> List[Tuple[float, float]]:
    """Sung stretches: regions joined across pauses shorter than a phrase, edges on the nearest downbeat."""
    cfg = config or ShapeConfig()
    gap = max(cfg.phrase_bars * bar, cfg.phrase_min_s)
    merged: List[List[float]] = []
    for a, b in sorted((max(0.0, float(a)), min(duration, float(b))) for a, b in regions):
        if b <= a:
            continue
        if merged and a - merged[-1][1] < gap:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out: List[List[float]] = []
    for a, b in merged:
        a = min(_snap_points(a, grid, bar), key=lambda c: abs(c - a)) if a > 0 else 0.0
        b = min(_snap_points(b, grid, bar), key=lambda c: abs(c - b)) if b < duration else duration
        if b > a and out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        elif b > a:
            out.append([a, b])
    return [(round(a, 3), round(b, 3)) for a, b in out]


def _normalise(sections: Sequence[dict], duration: float, features: Optional[Sequence[dict]]) -> List[_Seg]:
    """Sections sorted, tiled over [0, duration] (gaps of 1 s or more are silence), families as labels."""
    items = []
    for k, s in enumerate(sections):
        feat = dict(features[k]) if features is not None and k < len(features) and features[k] else {}
        feat["src"] = k
        items.append({"start": float(s["start"]), "end": float(s["end"]),
                      "label": canonical_label(s.get("label", s.get("tag", ""))), "_feat": feat})
    # no analyser sections: one wordless section (tile would call the whole song silence)
    tiled = sec.tile(items, duration) if items else [{"start": 0.0, "end": duration, "label": "inst"}]
    return [_Seg(float(s["start"]), float(s["end"]), s["label"], dict(s.get("_feat", {}))) for s in tiled]


def _apply_vocals(segs: List[_Seg], spans: List[Tuple[float, float]], vocal_song: bool) -> List[_Seg]:
    """Sections split at sung-stretch edges; sung pieces get a lyric label, the others a wordless one.

    In an instrumental, sections the analyser thought sung become intro (the first non-silence
    one), outro (the last) or inst, as ``build_gt_lyric`` retags sections nobody sings in.
    """
    if not vocal_song:
        body = [k for k, s in enumerate(segs) if s.label != "silence"] or [0]
        wordless = {body[0]: "intro", body[-1]: "outro"}
        return [_Seg(s.start, s.end, wordless.get(k, "inst") if s.label in LYRIC else s.label, s.feat)
                for k, s in enumerate(segs)]
    cuts = sorted({t for span in spans for t in span})
    out = []
    for s in segs:
        points = [s.start] + [c for c in cuts if s.start < c < s.end] + [s.end]
        for a, b in zip(points[:-1], points[1:]):
            sung = any(x <= 0.5 * (a + b) < y for x, y in spans)
            label = s.label
            if sung and label not in LYRIC:
                label = "verse"
            elif not sung and label in LYRIC:
                label = "inst"
            out.append(_Seg(a, b, label, dict(s.feat)))
    return out


def _choose_chorus(segs: List[_Seg]) -> None:
    """Relabel sung sections from features: the most repeated (then loudest) material is the chorus.

    Features (per input section): ``group`` (same id = same material), ``repetition`` (how often
    the material occurs), ``energy`` (loudness, dB). Without a telling feature, labels stay.
    """
    sung = [s for s in segs if s.label in LYRIC]
    if not sung or not any(s.feat.keys() - {"src"} for s in sung):
        return
    energy = [s.feat.get("energy") for s in sung]
    has_energy = all(e is not None for e in energy)
    if all(s.feat.get("group") is not None for s in sung):
        groups: Dict = {}
        for s in sung:
            groups.setdefault(s.feat["group"], []).append(s)
        size = {g: len({s.feat["src"] for s in members}) for g, members in groups.items()}
        best = max(groups, key=lambda g: (size[g], float(np.mean([s.feat.get("energy") or 0.0 for s in groups[g]]))))
        if size[best] < 2:  # nothing sung repeats: the features cannot tell a chorus
            return
        chorus = groups[best]
    else:
        chorus = sung
        reps = [s.feat.get("repetition") for s in sung]
        if all(r is not None for r in reps) and max(reps) >= 2:
            chorus = [s for s, r in zip(sung, reps) if r >= max(reps) - 1e-9]
        if len(chorus) == len(sung) and has_energy and max(energy) - min(energy) >= 3.0:
            mid = 0.5 * (max(energy) + min(energy))
            chorus = [s for s, e in zip(sung, energy) if e >= mid]
        if len(chorus) == len(sung):
            return
    for s in sung:
        s.label = "chorus" if any(s is c for c in chorus) else ("bridge" if s.label == "bridge" else "verse")


def _snap(segs: List[_Seg], grid: np.ndarray, bar: float, cfg: ShapeConfig) -> List[_Seg]:
    """Inner boundaries moved to a downbeat within a bar, the one giving a 4/8-bar phrase if close."""
    if not len(grid) or len(segs) < 2:
        return segs
    bounds = [segs[0].start]
    for s in segs[:-1]:
        b, prev = s.end, bounds[-1]
        best = min(_snap_points(b, grid, bar),
                   key=lambda c: abs(c - b) / bar + cfg.phrase_weight * _phrase_penalty((c - prev) / bar))
        bounds.append(max(best, prev))
    bounds.append(segs[-1].end)
    return [_Seg(a, b, s.label, s.feat) for s, a, b in zip(segs, bounds[:-1], bounds[1:]) if b > a + 1e-6]


def _merge(a: _Seg, b: _Seg, label: str) -> _Seg:
    """One section spanning ``a`` and ``b``; features of the longer, energy length-weighted."""
    feat = dict((a if a.length >= b.length else b).feat)
    if a.feat.get("energy") is not None and b.feat.get("energy") is not None:
        w = a.length + b.length or 1.0
        feat["energy"] = (a.feat["energy"] * a.length + b.feat["energy"] * b.length) / w
    return _Seg(min(a.start, b.start), max(a.end, b.end), label, feat)


def _settle(segs: List[_Seg]) -> List[_Seg]:
    """Position rules, then adjacent sections of one wordless family merged, until both hold."""
    for _ in range(4):  # a merge can leave a lone section or a new run: settle again
        out: List[_Seg] = []
        for s, lab in zip(segs, position_labels([s.label for s in segs])):
            if out and lab in WORDLESS and out[-1].label == lab:
                out[-1] = _merge(out[-1], s, lab)
            else:
                out.append(_Seg(s.start, s.end, lab, s.feat))
        if [(s.start, s.label) for s in out] == [(s.start, s.label) for s in segs]:
            break
        segs = out
    return out


def _similarity(a: _Seg, b: _Seg) -> float:
    """Higher for sections more alike: same label, both sung or both wordless, same material, loudness."""
    score = (4.0 if a.label == b.label else 0.0) + (2.0 if (a.label in LYRIC) == (b.label in LYRIC) else 0.0)
    if a.feat.get("group") is not None and a.feat.get("group") == b.feat.get("group"):
        score += 1.0
    if a.feat.get("energy") is not None and b.feat.get("energy") is not None:
        score -= min(1.0, abs(a.feat["energy"] - b.feat["energy"]) / 6.0)
    return score


def _absorb_short(segs: List[_Seg], min_len: float, cfg: ShapeConfig) -> List[_Seg]:
    """The shortest section under its minimum joins its more similar neighbour, until none is left."""
    segs = list(segs)
    while len(segs) > 1:
        floor = [max(min_len, cfg.silence_keep_s) if s.label == "silence" else min_len for s in segs]
        short = [i for i, s in enumerate(segs) if s.length < floor[i] - 1e-6]
        if not short:
            break
        i = min(short, key=lambda k: (segs[k].length, k))
        j = max((k for k in (i - 1, i + 1) if 0 <= k < len(segs)),
                key=lambda k: (_similarity(segs[i], segs[k]), -segs[k].length, -k))
        segs[min(i, j)] = _merge(segs[i], segs[j], segs[j].label)
        del segs[max(i, j)]
    return segs


def _merge_rank(s: _Seg) -> tuple:
    """Which label a capped pair keeps: sung beats wordless (words must not be dropped), wordless
    beats silence, then the longer one."""
    return (s.label in LYRIC, s.label != "silence", s.length)


def _cap(segs: List[_Seg], soft: int, hard: int) -> List[_Seg]:
    """Adjacent pairs merged, the most similar (then shortest) first: same-label pairs (one verse
    cut in pieces) while over ``soft`` sections, any pair while over ``hard``."""
    while len(segs) > soft:
        pairs = [k for k in range(len(segs) - 1) if segs[k].label == segs[k + 1].label or len(segs) > hard]
        if not pairs:
            break
        k = max(pairs, key=lambda k: (_similarity(segs[k], segs[k + 1]), -(segs[k].length + segs[k + 1].length), -k))
        label = max(segs[k:k + 2], key=_merge_rank).label
        segs = _settle(segs[:k] + [_merge(segs[k], segs[k + 1], label)] + segs[k + 2:])
    return segs


def _shape_once(segs: List[_Seg], ctx: dict, use_features: bool) -> List[_Seg]:
    """One pass of every rule, in order: vocals, chorus, downbeats, positions and runs, 2 bars, caps."""
    if ctx["spans"] is not None:
        segs = _apply_vocals(segs, ctx["spans"], ctx["vocal_song"])
    if use_features:
        _choose_chorus(segs)
    segs = _settle(_snap(segs, ctx["grid"], ctx["bar"], ctx["cfg"]))
    segs = _settle(_absorb_short(segs, ctx["min_len"], ctx["cfg"]))
    return _cap(segs, ctx["limit"], ctx["cfg"].max_sections)


def _dicts(segs: List[_Seg], duration: float) -> List[dict]:
    """The public form: millisecond times, the ends pinned to 0 and ``duration``."""
    out = [{"start": round(s.start, 3), "end": round(s.end, 3), "label": s.label} for s in segs]
    if out:
        out[0]["start"], out[-1]["end"] = 0.0, round(duration, 3)
    return out


def shape_sections(sections: Sequence[dict], duration: float, beats: Sequence[float] = (),
                   downbeats: Sequence[float] = (), bpm: float = 0.0,
                   vocals: Optional[Sequence[Sequence[float]]] = None,
                   features: Optional[Sequence[dict]] = None,
                   config: Optional[ShapeConfig] = None) -> List[dict]:
    """The analyser's sections cleaned to the training-side shape (rules: module docstring).

    ``sections``: ``[{"start", "end", "label"}]`` in any order, gaps allowed; ``vocals``: sung
    regions ``[[start, end], ...]`` (``[]``: instrumental; ``None``: unknown, the analyser's sung
    labels stand); ``features``: one dict per input section (keys ``group``, ``repetition``,
    ``energy``, all optional) or None. Returns ``[{"start", "end", "label"}]`` tiling
    [0, duration] with millisecond times; ``[]`` when ``duration <= 0``. Labels: intro, outro,
    verse, chorus, bridge, inst, silence. Raises KeyError on a section without start / end.
    """
    cfg = config or ShapeConfig()
    duration = float(duration)
    if not duration > 0:
        return []
    grid, bar = bar_grid(beats, downbeats, bpm, duration, cfg.nominal_bar_s)
    ctx = {"cfg": cfg, "grid": grid, "bar": bar, "min_len": min(cfg.min_bars * bar, duration),
           "limit": section_limit(duration, cfg), "spans": None, "vocal_song": False}
    if vocals is not None:
        regions = [(float(a), float(b)) for a, b in vocals]
        ctx["spans"] = vocal_spans(regions, grid, bar, duration, cfg)
        sung = sum(b - a for a, b in vocal_spans(regions, np.array([]), 0.0, duration,
                                                  ShapeConfig(phrase_bars=0.0, phrase_min_s=0.0)))
        ctx["vocal_song"] = bool(ctx["spans"]) and sung >= cfg.vocal_song_s
    out = _dicts(_shape_once(_normalise(sections, duration, features), ctx, True), duration)
    for _ in range(MAX_ROUNDS):  # the same steps on their own output, to a fixed point
        again = _dicts(_shape_once(_normalise(out, duration, None), ctx, False), duration)
        if again == out:
            break
        out = again
    return out
