"""Forced alignment of known lyrics on the vocal stem: every reference unit gets a time and a confidence.

In: 16 kHz mono vocal audio, the reference as a flat word list in sung (or sheet) order, the vocal
regions (seconds), and what else is known of the timing: the ASR words the stage decoded anyway
and, from an LRC sheet, line start times. Out (:func:`align_reference`): one record per unit
(a word; a character for Chinese and other languages written without spaces)::

    {"text", "word" (index in the word list), "start", "end" (s, None when not placed),
     "probability" (teacher-forced, geometric mean over the unit's tokens),
     "placed" (bool), "confident" (bool), "reason" (why not placed / not confident, or None)}

Method, in three steps (the measurements behind it are in ``benchmarks/eval_alignment.py``):

1. Coarse placement. The reference is matched to the ASR words by an in-order edit-distance
   alignment (:func:`transforms.lyrics.agreement.match_units`); runs of matches are anchors
   (unit -> time). LRC line starts are anchors too when they fall in a vocal region and agree
   in order with the ASR's anchors. Units between anchors are spread over the *vocal* time
   between them (silences between regions take no words); with no anchor at all, over the whole
   vocal time.
2. Windows. The vocal regions are grouped into windows of at most 30 s (Whisper's input), cut at
   silences where possible; each unit goes to the window holding its coarse time.
3. Per window, the backend's ``align`` teacher-forces the window's units and reads their times
   off Whisper's alignment heads (cross-attention + DTW). Those heads lead the voice by about
   0.2 s (``onset_lead_s``, measured), and a span is trimmed of silence at its edges
   (:func:`snap_to_voice`). The confidently placed units then replace the coarse times and the
   assignment is redone once; if it changed, the windows are aligned again (the backend reuses
   their encoder output) and the pass with more confident units is kept. A unit is *placed*
   when its span's middle lies in a vocal region, *confident* when placed and its probability
   is at least ``min_probability``.

Repeats: given other candidate orders (:func:`repeat_orders`: a chorus written once but sung
again), they are tried when the sheet's order leaves vocal time uncovered, and the order with the
best agreement score (:mod:`transforms.lyrics.agreement`) is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.lyrics import agreement as agr
from transforms.lyrics.backend import AlignWindow
from transforms.lyrics.format import is_char_language

Region = Tuple[float, float]
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")


@dataclass(frozen=True)
class ForcedConfig:
    """Windowing, anchoring and confidence settings (defaults chosen on the evaluation set)."""

    window_s: float = 29.0  # audio per alignment window (Whisper reads 30 s)
    pad_s: float = 0.5  # context kept around a window's regions
    # Whisper base's alignment heads lead the voice: word starts (faster-whisper's own word timestamps
    # too) come out 0.22 s early on the evaluation set, English and Mandarin alike
    onset_lead_s: float = 0.2
    min_probability: float = 0.05  # teacher-forced probability below which a placed unit is not confident
    region_tolerance: float = 0.3  # a unit's middle may lie this far outside a region and still count
    min_anchor_run: int = 2  # matched ASR units count as anchors in runs of this many
    lrc_tolerance: float = 1.0  # an LRC line start must lie within this of a vocal region
    max_units_per_window: int = 160  # Whisper's decoder holds 448 tokens
    expand_below_coverage: float = 0.8  # other orders are tried when the sheet's covers less vocal time
    expand_margin: float = 0.02  # another order must beat the sheet's score by this much


def reference_units(words: Sequence[str], language: str) -> Tuple[List[str], List[int]]:
    """(units, index of the word each unit comes from): words stripped of edge punctuation, or for
    languages written without spaces each CJK character on its own (a Latin run stays one unit)."""
    units, owner = [], []
    for k, word in enumerate(words):
        word = _EDGE_PUNCT.sub("", str(word).strip())
        if not word:
            continue
        if is_char_language(language):
            pieces = [p for p in re.split(f"({_CJK.pattern})", word) if p and not p.isspace()]
            pieces = [q for p in pieces for q in ([p] if _CJK.match(p) else p.split())]
            pieces = [_EDGE_PUNCT.sub("", p) for p in pieces]
        else:
            pieces = [word]
        for p in pieces:
            if p and agr.unit_key(p):
                units.append(p)
                owner.append(k)
    return units, owner


# ---------------------------------------------------------------- coarse placement

def to_vocal_time(t: float, regions: Sequence[Region]) -> float:
    """Seconds of vocal region before time ``t``."""
    return sum(max(0.0, min(e, t) - s) for s, e in regions)


def from_vocal_time(v: float, regions: Sequence[Region]) -> float:
    """The time at which ``v`` seconds of vocal region have passed (inverse of :func:`to_vocal_time`)."""
    for s, e in regions:
        if v <= e - s:
            return s + max(0.0, v)
        v -= e - s
    return regions[-1][1] if regions else 0.0


def text_anchors(units: Sequence[str], asr_words: Sequence[dict], language: str, regions: Sequence[Region],
                 min_run: int = 2) -> List[Tuple[int, float]]:
    """(unit index, time) anchors: reference units matched in order to ASR units, kept in runs of at
    least ``min_run`` consecutive matches (a lone "the" matched across the song is no anchor). The
    matching prefers pairs at the same place in the song (unit index against vocal time, both as
    fractions), so the ASR's words of a repeated chorus go to the right occurrence."""
    asr = agr.asr_units(asr_words, language)
    total = to_vocal_time(regions[-1][1], regions) if regions else 0.0
    positions = None
    if total > 0 and units:
        positions = ([(i + 0.5) / len(units) for i in range(len(units))],
                     [to_vocal_time(a["start"], regions) / total for a in asr])
    pairs = agr.match_units(agr.sound_keys(units, language), agr.sound_keys([a["text"] for a in asr], language),
                            positions)
    keep = [False] * len(pairs)
    k = 0
    while k < len(pairs):
        end = k + 1
        while end < len(pairs) and pairs[end][0] == pairs[end - 1][0] + 1 and pairs[end][1] == pairs[end - 1][1] + 1:
            end += 1
        if end - k >= min_run:
            keep[k:end] = [True] * (end - k)
        k = end
    return [(i, float(asr[j]["start"])) for (i, j), ok in zip(pairs, keep) if ok]


def merge_anchors(asr: Sequence[Tuple[int, float]], lrc: Sequence[Tuple[int, float]], regions: Sequence[Region],
                  tolerance: float = 1.0) -> List[Tuple[int, float]]:
    """ASR anchors plus the LRC line starts that the audio supports: inside a vocal region (widened by
    ``tolerance``) and in order with the ASR anchors around them (by unit index and time)."""
    out = sorted(asr)
    for i, t in sorted(lrc):
        if not any(s - tolerance <= t <= e + tolerance for s, e in regions):
            continue
        before = [a for a in out if a[0] < i]
        after = [a for a in out if a[0] > i]
        if (before and before[-1][1] >= t) or (after and after[0][1] <= t) or any(a[0] == i for a in out):
            continue
        out = sorted(out + [(i, t)])
    return out


def coarse_times(n: int, anchors: Sequence[Tuple[int, float]], regions: Sequence[Region]) -> np.ndarray:
    """Estimated onset of each of ``n`` units: anchors where given, units between them spread evenly
    over the vocal time between their neighbours (all units over all vocal time without anchors)."""
    if not regions or n == 0:
        return np.full(n, np.nan)
    total = to_vocal_time(regions[-1][1], regions)
    xs, ys = [-0.5], [0.0]
    for i, t in sorted(anchors):
        v = to_vocal_time(t, regions)
        if i > xs[-1] and v >= ys[-1]:
            xs.append(float(i))
            ys.append(v)
    xs.append(max(n - 0.5, xs[-1] + 0.5))
    ys.append(max(total, ys[-1]))
    vs = np.interp(np.arange(n, dtype=float), xs, ys)
    return np.array([from_vocal_time(v, regions) for v in vs])


# ---------------------------------------------------------------- windows

def plan_windows(regions: Sequence[Region], duration: float, window_s: float = 29.0,
                 pad_s: float = 0.5) -> List[Region]:
    """Windows of at most ``window_s`` s covering every region: consecutive regions share a window
    while they fit (so windows end in silences); a longer region is cut into equal pieces."""
    pieces: List[Region] = []
    limit = window_s - 2 * pad_s
    for s, e in regions:
        parts = max(1, int(np.ceil((e - s) / limit)))
        step = (e - s) / parts
        pieces.extend((s + k * step, s + (k + 1) * step) for k in range(parts))
    windows: List[List[float]] = []
    for s, e in pieces:
        if windows and e - windows[-1][0] <= limit:
            windows[-1][1] = e
        else:
            windows.append([s, e])
    return [(max(0.0, s - pad_s), min(duration, e + pad_s)) for s, e in windows]


def assign_windows(times: np.ndarray, windows: Sequence[Region]) -> np.ndarray:
    """Index of the window each time falls in (the nearest one when between windows); -1 for NaN."""
    out = np.full(len(times), -1, dtype=int)
    if not windows:
        return out
    starts = np.array([w[0] for w in windows])
    ends = np.array([w[1] for w in windows])
    for k, t in enumerate(times):
        if np.isnan(t):
            continue
        dist = np.maximum(starts - t, 0.0) + np.maximum(t - ends, 0.0)
        out[k] = int(np.argmin(dist))
    return np.maximum.accumulate(out)  # keep the sung order: a unit never goes back a window


# ---------------------------------------------------------------- alignment of one order

def _inside(start: float, end: float, regions: Sequence[Region], tolerance: float) -> bool:
    mid = 0.5 * (start + end)
    return any(s - tolerance <= mid <= e + tolerance for s, e in regions)


def _align_assigned(backend, audio: np.ndarray, units: Sequence[str], owner: Sequence[int], assigned: np.ndarray,
                    windows: Sequence[Region], language: str, regions: Sequence[Region],
                    cfg: ForcedConfig) -> List[dict]:
    """Align each window's units (the first ``max_units_per_window`` of them) and judge every unit."""
    members = [np.flatnonzero(assigned == w)[:cfg.max_units_per_window] for w in range(len(windows))]
    requests = [AlignWindow(windows[w][0], windows[w][1], tuple(units[i] for i in idx))
                for w, idx in enumerate(members) if len(idx)]
    results = iter(backend.align(audio, requests, language) if requests else [])
    timed: Dict[int, dict] = {}
    for idx in members:
        if len(idx):
            # a unit the attention path gave no frame was squeezed in: it keeps its place, not its confidence
            shifted = [dict(w, start=w["start"] + cfg.onset_lead_s, end=w["end"] + cfg.onset_lead_s,
                            collapsed=w["end"] <= w["start"]) for w in next(results)]
            timed.update(zip(idx.tolist(), snap_to_voice(shifted, audio)))
    out = []
    for i, text in enumerate(units):
        got = timed.get(i)
        rec = {"text": text, "word": int(owner[i]), "start": None, "end": None, "probability": 0.0,
               "placed": False, "confident": False, "reason": None}
        if got is None:
            rec["reason"] = "no_vocal_region" if assigned[i] < 0 else "window_full"
        else:
            rec["probability"] = float(got["probability"])
            if _inside(got["start"], got["end"], regions, cfg.region_tolerance):
                rec.update(start=float(got["start"]), end=float(got["end"]), placed=True)
                if got["collapsed"]:
                    rec["reason"] = "collapsed"
                elif rec["probability"] < cfg.min_probability:
                    rec["reason"] = "low_probability"
                rec["confident"] = rec["reason"] is None
            else:
                rec["reason"] = "outside_vocal_regions"
        out.append(rec)
    return out


def align_units(backend, audio: np.ndarray, units: Sequence[str], owner: Sequence[int], language: str,
                regions: Sequence[Region], anchors: Sequence[Tuple[int, float]] = (),
                config: Optional[ForcedConfig] = None) -> List[dict]:
    """Align ``units`` (in sung order) on ``audio`` inside ``regions``: coarse times from ``anchors``,
    windows, alignment, then one refinement with the confident units as anchors. One record per unit
    (see the module docstring)."""
    cfg = config or ForcedConfig()
    duration = len(audio) / 16000.0
    windows = plan_windows(regions, duration, cfg.window_s, cfg.pad_s)
    assigned = assign_windows(coarse_times(len(units), anchors, regions), windows)
    words = _align_assigned(backend, audio, units, owner, assigned, windows, language, regions, cfg)
    refined_anchors = [(i, w["start"]) for i, w in enumerate(words) if w["confident"]]
    if not refined_anchors:
        return words
    again = assign_windows(coarse_times(len(units), refined_anchors, regions), windows)
    if np.array_equal(again, assigned):
        return words
    redo = _align_assigned(backend, audio, units, owner, again, windows, language, regions, cfg)
    # keep the refinement only where it did not make things worse
    before = sum(w["confident"] for w in words)
    return redo if sum(w["confident"] for w in redo) >= before else words


# ---------------------------------------------------------------- orders (repeats) and the entry point

@dataclass(frozen=True)
class Block:
    """A block of the sheet: its label ("chorus", "verse", "" ...) and its words ``[first, end)``."""

    label: str
    first: int
    end: int


def is_repeatable(label: str) -> bool:
    return any(k in (label or "").lower() for k in ("chorus", "refrain", "hook", "pre-chorus"))


def repeat_orders(blocks: Sequence[Block], limit: int = 4) -> List[Tuple[str, List[int]]]:
    """Candidate sung orders of the sheet's words, as (name, word indices): the sheet as written,
    then for each chorus-like block written once: sung again after every later block, and sung twice
    in a row. Without a chorus label the last block stands in for one. At most ``limit`` orders."""
    def flat(seq: Sequence[Block]) -> List[int]:
        return [i for b in seq for i in range(b.first, b.end)]

    orders = [("sheet", flat(blocks))]
    labels = [b.label for b in blocks]
    candidates = [k for k, b in enumerate(blocks) if is_repeatable(b.label) and labels.count(b.label) == 1]
    if not candidates and len(blocks) > 1:
        candidates = [len(blocks) - 1]
    for k in candidates:
        chorus = blocks[k]
        after_each = list(blocks[:k + 1])
        for b in blocks[k + 1:]:
            after_each += [b, chorus]
        if k == len(blocks) - 1:
            after_each.append(chorus)
        twice = list(blocks[:k + 1]) + [chorus] + list(blocks[k + 1:])
        for name, seq in ((f"{chorus.label or 'block'} {k} after each later block", after_each),
                          (f"{chorus.label or 'block'} {k} twice", twice)):
            order = flat(seq)
            if all(order != o for _, o in orders):
                orders.append((name, order))
    return orders[:limit]


def align_reference(backend, audio: np.ndarray, words: Sequence[str], language: str, regions: Sequence[Region],
                    asr_words: Sequence[dict] = (), line_starts: Sequence[Tuple[int, float]] = (),
                    orders: Optional[Sequence[Tuple[str, Sequence[int]]]] = None,
                    config: Optional[ForcedConfig] = None,
                    agreement_config: Optional[agr.AgreementConfig] = None) -> dict:
    """Place the reference ``words`` on 16 kHz mono ``audio`` (the vocal stem).

    ``regions``: where the voice is (s): the VAD's regions, tight around the singing. Coverage is
    measured against them, so regions that also hold instrumental bleed (an energy gate on a
    separated stem) lower a true reference's coverage below ``min_coverage`` (on the evaluation
    songs: 0.52-0.60 with the stage's gated regions, 0.87-0.92 with the VAD's). ``asr_words``: the stage's ASR words ``{"text", "start", "end"}``
    (anchors, and the agreement's first part); ``line_starts``: (word index, time) from an LRC sheet;
    ``orders``: candidate sung orders as (name, word indices) (:func:`repeat_orders`; default: the
    words as given). Returns ``{"words": [unit record, ...], "order": name, "orders": {name: score},
    "anchors": {"asr", "lrc"}, "agreement": agreement dict}``. The backend must support ``align``
    (AlignmentNotSupported otherwise).
    """
    cfg = config or ForcedConfig()
    acfg = agreement_config or agr.AgreementConfig()
    orders = list(orders or [("sheet", list(range(len(words))))])
    regions = [(float(s), float(e)) for s, e in regions]
    tried: Dict[str, Tuple[float, List[dict], dict, dict]] = {}
    for k, (name, order) in enumerate(orders):
        if k == 1:
            sheet = tried[orders[0][0]]
            if sheet[2]["parts"]["coverage"] >= cfg.expand_below_coverage:
                break
        sung = [words[i] for i in order]
        units, owner = reference_units(sung, language)
        owner = [int(order[j]) for j in owner]
        asr_anchor = text_anchors(units, asr_words, language, regions, cfg.min_anchor_run)
        first_unit = {}
        for u, w in enumerate(owner):
            first_unit.setdefault(w, u)
        lrc = [(first_unit[w], float(t)) for w, t in line_starts if w in first_unit]
        anchors = merge_anchors(asr_anchor, lrc, regions, cfg.lrc_tolerance)
        aligned = align_units(backend, audio, units, owner, language, regions, anchors, cfg)
        verdict = agr.agreement(aligned, asr_words, regions, language, acfg)
        tried[name] = (verdict["score"], aligned, verdict, {"asr": len(asr_anchor), "lrc": len(anchors) - len(asr_anchor)})
    best = orders[0][0]
    for name, (score, *_rest) in tried.items():
        if score > tried[best][0] + cfg.expand_margin:
            best = name
    score, aligned, verdict, anchors = tried[best]
    return {"words": aligned, "order": best, "orders": {k: v[0] for k, v in tried.items()},
            "anchors": anchors, "agreement": verdict}


def snap_to_voice(words: Sequence[dict], audio: np.ndarray, sample_rate: int = 16000, rel_db: float = 15.0,
                  hop_s: float = 0.01) -> List[dict]:
    """Words whose aligned spans are trimmed of leading and trailing near-silence.

    Whisper's attention path can give a pause to the word after it (the first word of a window
    often starts at the window's edge); a sung word cannot start in a pause. Within each span,
    frames more than ``rel_db`` below the span's loudest 10 ms frame are silence; the start moves
    to the first frame that is not, the end back to the last. Spans with no quiet edge are kept.
    """
    hop = int(hop_s * sample_rate)
    n = len(audio) // hop
    if n == 0:
        return list(words)
    frames = np.asarray(audio[:n * hop], dtype=np.float32).reshape(n, hop)
    db = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    out = []
    for w in words:
        w = dict(w)
        if w.get("start") is not None and w.get("end") is not None:
            a, b = int(w["start"] / hop_s), max(int(w["start"] / hop_s) + 1, int(np.ceil(w["end"] / hop_s)))
            span = db[a:min(b, n)]
            if span.size:
                loud = np.flatnonzero(span > span.max() - rel_db)
                w["start"] = round((a + loud[0]) * hop_s, 3)
                w["end"] = round((a + loud[-1] + 1) * hop_s, 3)
        out.append(w)
    return out
