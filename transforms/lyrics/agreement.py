"""Does a reference text belong to the recording? Pure scores over the ASR words and the aligned words.

Three pieces of evidence, each in [0, 1]:

* ``asr_match``: the share of the ASR's words that the reference explains, matched in order
  (:func:`match_units`: an edit-distance alignment over normalised units, where a word matches a
  spelling within a third of its letters, a Chinese character only itself) and in time (the
  matched reference word was placed within ``time_tolerance`` s of where the ASR heard it). Whisper
  base misses half of a sung text, but what it does hear of the true text matches; another song's
  text matches only its common words, and rarely where the ASR heard them.
* ``confident``: the share of reference units that the forced alignment placed inside a vocal
  region with a probability at or above its floor (:mod:`transforms.lyrics.forced`).
* ``coverage``: the share of the vocal regions' time covered by confidently placed units.

:func:`agreement` combines them into one score (a weighted mean over the parts that exist: with
fewer than ``min_asr_units`` ASR units there is no ``asr_match``) and decides ``reference`` or
``asr``, with a reason: ``asr`` when the score is under ``threshold``, or when the reference
explains less than ``min_coverage`` of the vocal time (partial lyrics). Both were chosen on data
(``benchmarks/eval_alignment.py``; see :class:`AgreementConfig`).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.lyrics.format import is_char_language, normalize_key

Region = Tuple[float, float]


@dataclass(frozen=True)
class AgreementConfig:
    """Weights of the three parts, the decision thresholds and the matching tolerances.

    ``threshold`` and ``min_coverage`` were chosen on ``benchmarks/eval_alignment.py``'s 32 songs
    (24 English, 8 Mandarin): true texts scored 0.59-0.98, other songs' texts 0.10-0.34, so the
    threshold is the middle of that gap; true texts covered 0.79-0.95 of the vocal time and the
    first half of a true text (partial lyrics) 0.30-0.59, and the floor leans towards keeping true
    texts (real songs hold vocal time a sheet does not write: ad-libs, backing vocals).
    """

    threshold: float = 0.47
    min_coverage: float = 0.65
    weight_asr: float = 0.5
    weight_confident: float = 0.25
    weight_coverage: float = 0.25
    min_asr_units: int = 5
    time_tolerance: float = 3.0
    coverage_pad: float = 0.15


def unit_key(unit: str) -> str:
    """Comparison form of one unit: lower-case letters and digits, no spaces (a :func:`sound_keys`
    key, which starts with "~", as it is)."""
    if unit.startswith("~"):
        return unit
    return normalize_key(unit).replace(" ", "")


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")
_SOUNDS: Dict[str, str] = {}


def sound_keys(units: Sequence[str], language: str) -> List[str]:
    """Comparison keys that hear rather than read, for languages written in characters: each CJK
    character becomes its toneless Mandarin syllable as espeak-ng spells it (voice
    ``cmn-latn-pinyin``), so the traditional characters Whisper often writes (邊) match the
    simplified ones of a sheet (边), and so do the homophones it picks (相 for 想). Other units, other
    languages, or no espeak-ng: the units unchanged."""
    if not is_char_language(language) or not shutil.which("espeak-ng"):
        return list(units)
    todo = sorted({u for u in units if len(u) == 1 and _CJK.match(u) and u not in _SOUNDS})
    if todo:
        try:
            out = subprocess.run(["espeak-ng", "-q", "-x", "-v", "cmn-latn-pinyin", " ".join(todo)],
                                 capture_output=True, text=True, timeout=60).stdout.split()
        except (OSError, subprocess.SubprocessError):
            out = []
        if len(out) == len(todo):  # one syllable a character, or none trusted
            for ch, ipa in zip(todo, out):
                _SOUNDS[ch] = "~" + re.sub(r"[\d'_|,]", "", ipa)
    return [_SOUNDS.get(u, u) for u in units]


@functools.lru_cache(maxsize=1 << 16)
def similar(a: str, b: str) -> bool:
    """Two unit keys name the same sung unit: equal, or (both of 4+ letters) within a third of the
    longer one's letters (a misheard "beatin" for "beating")."""
    if a == b:
        return bool(a)
    if a.startswith("~") or b.startswith("~"):  # syllables: the same sound or not at all
        return False
    if min(len(a), len(b)) < 4 or not (a.isascii() and b.isascii()):
        return False
    return _edit_distance(a, b) <= max(len(a), len(b)) // 3


def match_units(reference: Sequence[str], hypothesis: Sequence[str],
                positions: Optional[Tuple[Sequence[float], Sequence[float]]] = None,
                prior: float = 1.0) -> List[Tuple[int, int]]:
    """In-order matches (reference index, hypothesis index) between two unit sequences under
    :func:`similar`: the longest common subsequence, or with ``positions`` (each unit's place in its
    song as a fraction, e.g. index / length and vocal time / total) the heaviest one, a match
    weighing ``1 - prior * |distance|``: a chorus sung twice is matched to the occurrence at its
    place, not to the first one. Ties go towards the diagonal (fewest skipped)."""
    ref = [unit_key(u) for u in reference]
    hyp = [unit_key(u) for u in hypothesis]
    n, m = len(ref), len(hyp)
    if not n or not m:
        return []
    p = np.asarray(positions[0], dtype=float) if positions else None
    q = np.asarray(positions[1], dtype=float) if positions else None

    def gain(i: int, j: int) -> float:
        if not similar(ref[i], hyp[j]):
            return 0.0
        return 1.0 if p is None else max(0.0, 1.0 - prior * abs(p[i] - q[j]))

    score = np.zeros((n + 1, m + 1))
    for i in range(1, n + 1):
        row, up = score[i], score[i - 1]
        for j in range(1, m + 1):
            g = gain(i - 1, j - 1)
            row[j] = max(up[j], row[j - 1], up[j - 1] + g if g > 0 else 0.0)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        g = gain(i - 1, j - 1)
        if g > 0 and abs(score[i, j] - (score[i - 1, j - 1] + g)) < 1e-9:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif score[i - 1, j] >= score[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def asr_units(asr_words: Sequence[dict], language: str) -> List[dict]:
    """ASR words as comparison units with times: characters (sharing their word's span evenly) for
    languages written without spaces, words otherwise; units without letters are dropped."""
    out = []
    for w in asr_words:
        text = normalize_key(str(w.get("text", "")))
        pieces = [c for c in text if not c.isspace()] if is_char_language(language) else text.split()
        if not pieces:
            continue
        start, end = float(w["start"]), float(w["end"])
        step = (end - start) / len(pieces)
        out.extend({"text": p, "start": start + k * step, "end": start + (k + 1) * step}
                   for k, p in enumerate(pieces))
    return out


def asr_match(reference: Sequence[dict], asr: Sequence[dict], time_tolerance: Optional[float] = None,
              language: str = "en") -> Dict:
    """Share of the ASR units that the reference explains in order (and, with ``time_tolerance``, in time).

    ``reference``: units ``{"text", "start"?, "placed"?}`` in sung order; ``asr``: units
    ``{"text", "start"}`` (:func:`asr_units`). A match in time needs the reference unit placed within
    ``time_tolerance`` s of the ASR unit. Returns ``{"matched", "asr_units", "share"}`` (share None
    without ASR units).
    """
    positions = None
    placed = [i for i, u in enumerate(reference) if u.get("placed")]
    if time_tolerance is not None and placed and asr:
        # where each reference unit is (unplaced ones between their placed neighbours), in units of
        # twice the tolerance: a match far from where the ASR heard the word weighs little
        where = np.interp(np.arange(len(reference)), placed, [float(reference[i]["start"]) for i in placed])
        scale = 2.0 * time_tolerance
        positions = (where / scale, [float(a["start"]) / scale for a in asr])
    pairs = match_units(sound_keys([u["text"] for u in reference], language),
                        sound_keys([u["text"] for u in asr], language), positions)
    if time_tolerance is not None:
        pairs = [(i, j) for i, j in pairs if reference[i].get("placed")
                 and abs(float(reference[i]["start"]) - float(asr[j]["start"])) <= time_tolerance]
    share = len(pairs) / len(asr) if asr else None
    return {"matched": len(pairs), "asr_units": len(asr), "share": share}


def confident_share(words: Sequence[dict]) -> float:
    """Share of the reference units placed with confidence (0.0 for no units)."""
    return sum(1 for w in words if w.get("confident")) / len(words) if words else 0.0


def vocal_coverage(words: Sequence[dict], regions: Sequence[Region], pad: float = 0.15) -> float:
    """Share of the vocal regions' seconds covered by confidently placed units' spans (each widened by
    ``pad`` s on both sides); 0.0 without regions."""
    total = sum(e - s for s, e in regions)
    if total <= 0:
        return 0.0
    spans = sorted((float(w["start"]) - pad, float(w["end"]) + pad) for w in words if w.get("confident"))
    merged: List[List[float]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    covered = sum(max(0.0, min(e, re) - max(s, rs)) for s, e in merged for rs, re in regions)
    return min(1.0, covered / total)


def agreement(words: Sequence[dict], asr_words: Sequence[dict], regions: Sequence[Region], language: str,
              config: Optional[AgreementConfig] = None) -> Dict:
    """Agreement between an aligned reference and the audio, and the decision.

    ``words``: the aligned reference units (:func:`transforms.lyrics.forced.align_reference`'s
    ``words``: text, start, end, placed, confident); ``asr_words``: the ASR's words
    ``{"text", "start", "end"}``; ``regions``: the vocal regions (seconds).
    Returns ``{"score", "threshold", "decision": "reference" | "asr", "reason", "parts":
    {"asr_match", "confident", "coverage"}, "asr_units", "asr_matched"}``; a part that could not be
    measured is None and left out of the score.
    """
    cfg = config or AgreementConfig()
    units = asr_units(asr_words, language)
    match = asr_match(words, units, cfg.time_tolerance, language)
    parts = {"asr_match": match["share"] if len(units) >= cfg.min_asr_units else None,
             "confident": confident_share(words),
             "coverage": vocal_coverage(words, regions, cfg.coverage_pad)}
    weights = {"asr_match": cfg.weight_asr, "confident": cfg.weight_confident, "coverage": cfg.weight_coverage}
    used = {k: v for k, v in parts.items() if v is not None}
    score = sum(weights[k] * v for k, v in used.items()) / sum(weights[k] for k in used) if words else 0.0
    if not words:
        decision, reason = "asr", "no reference units"
    elif not regions:
        decision, reason = "asr", "no vocal regions to place the reference in"
    elif score < cfg.threshold:
        weakest = min(used, key=lambda k: used[k])
        decision = "asr"
        reason = f"agreement {score:.2f} < {cfg.threshold:.2f} (weakest: {weakest} {used[weakest]:.2f})"
    elif parts["coverage"] < cfg.min_coverage:
        decision = "asr"
        reason = (f"the reference explains {parts['coverage']:.2f} of the vocal time (< {cfg.min_coverage:.2f}): "
                  "partial lyrics or another version")
    else:
        decision, reason = "reference", f"agreement {score:.2f} >= {cfg.threshold:.2f}"
    return {"score": round(float(score), 4), "threshold": cfg.threshold, "decision": decision, "reason": reason,
            "parts": {k: None if v is None else round(float(v), 4) for k, v in parts.items()},
            "asr_units": match["asr_units"], "asr_matched": match["matched"]}
