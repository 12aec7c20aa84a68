"""Guards around ASR on music: where to listen, which language, which output to distrust.

Whisper on songs invents text over long intros and instrumental parts (credit
lines, "thanks for watching"), loops on a phrase, and drifts across languages.
These pure functions keep it honest:

* ``active_regions`` (``transforms.core.activity``) gates by the vocal stem's energy, so silent and
  instrumental spans are never transcribed (and are zeroed by :func:`mask_outside`);
* :func:`language_packs` / :func:`vote_language` give a per-song language, its
  probability and the share of the sung time it covers;
* :func:`segment_verdict` drops segments whose compression ratio, average
  log-probability or no-speech probability say they were invented, and known
  hallucination phrases; :func:`words_in_regions` drops words outside the gate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# The energy gate and region maths live in transforms.core.activity (the structure stage uses them too).
from transforms.core.activity import (GateConfig, Region, active_regions, confirmed_regions,  # noqa: F401
                                      merge_regions, total_seconds)


# Phrases Whisper is known to produce over music or silence (subtitle credits, video outros).
HALLUCINATION_PATTERNS = re.compile(
    r"thanks? (?:you )?for watching|please subscribe|subscribe to|like and subscribe|"
    r"amara\.org|subtitles? (?:by|created)|captions? by|transcri(?:bed|ption) by|"
    r"translated by|www\.|\.com\b|字幕|请不吝点赞|點贊|订阅|訂閱|明镜与点点",
    re.IGNORECASE)


@dataclass
class Thresholds:
    """Segment filters, after Whisper's own defaults (compression 2.4, log-prob -1.0, no-speech 0.6)."""

    compression_ratio: float = 2.4
    log_prob: float = -1.0
    no_speech: float = 0.6
    no_speech_log_prob: float = -0.5  # no-speech is trusted unless the decoding was confident


def mask_outside(audio: np.ndarray, sample_rate: int, regions: Sequence[Region]) -> np.ndarray:
    """A copy of 1-D ``audio`` with every sample outside ``regions`` set to zero."""
    keep = np.zeros(audio.shape[-1], dtype=bool)
    for start, end in regions:
        keep[int(start * sample_rate):int(np.ceil(end * sample_rate))] = True
    return np.where(keep, audio, 0.0).astype(np.float32)


def language_packs(audio: np.ndarray, sample_rate: int, regions: Sequence[Region],
                   max_seconds: float = 30.0, min_seconds: float = 1.0) -> List[Tuple[float, np.ndarray]]:
    """(sung seconds, clip) packs for language detection: active audio concatenated up to 30 s.

    Packing keeps the number of encoder passes at about (sung time / 30 s) even when
    the gate finds many short phrases. Packs under ``min_seconds`` are not judged.
    """
    max_n = int(max_seconds * sample_rate)
    gap = np.zeros(int(0.2 * sample_rate), dtype=np.float32)
    packs, pieces, filled = [], [], 0
    for start, end in regions:
        a, b = int(start * sample_rate), int(end * sample_rate)
        while a < b:
            take = min(b - a, max_n - filled)
            pieces.append(audio[a:a + take].astype(np.float32))
            filled += take
            a += take
            if filled >= max_n:
                packs.append((filled / sample_rate, np.concatenate(pieces)[:max_n]))
                pieces, filled = [], 0
            else:
                pieces.append(gap)
    if filled >= min_seconds * sample_rate:
        packs.append((filled / sample_rate, np.concatenate(pieces)[:max_n]))
    return packs


def vote_language(judged: Sequence[Tuple[float, Dict[str, float]]],
                  language: Optional[str] = None) -> Tuple[str, float, float]:
    """(language, probability, coverage) of a song from per-pack language probabilities.

    The song's language maximises the sung-time-weighted probability (or is the
    ``language`` given, when forced); its probability is that weighted mean; its
    coverage is the share of sung time whose pack's top language is the song's
    language. ("", 0.0, 0.0) when nothing was judged.
    """
    total = sum(sec for sec, _ in judged)
    if total <= 0 or not any(np.isfinite(p) for _, probs in judged for p in probs.values()):
        return "", 0.0, 0.0
    scores: Dict[str, float] = {}
    for sec, probs in judged:
        for lang, p in probs.items():
            if not np.isfinite(p):
                continue
            scores[lang] = scores.get(lang, 0.0) + sec * float(p)
    language = language or max(scores, key=scores.get)
    covered = sum(sec for sec, probs in judged if probs and max(probs, key=probs.get) == language)
    return language, scores.get(language, 0.0) / total, covered / total


def segment_verdict(segment: dict, thresholds: Optional[Thresholds] = None) -> Optional[str]:
    """Why a decoded segment should be dropped ("compression_ratio" | "avg_logprob" | "no_speech" |
    "hallucination_phrase"), or None to keep it."""
    th = thresholds or Thresholds()
    logprob = float(segment.get("avg_logprob", 0.0))
    if float(segment.get("compression_ratio", 0.0)) > th.compression_ratio:
        return "compression_ratio"
    if logprob < th.log_prob:
        return "avg_logprob"
    if float(segment.get("no_speech_prob", 0.0)) > th.no_speech and logprob < th.no_speech_log_prob:
        return "no_speech"
    if HALLUCINATION_PATTERNS.search(str(segment.get("text", ""))):
        return "hallucination_phrase"
    return None


def words_in_regions(words: Sequence[dict], regions: Sequence[Region], tolerance: float = 0.3) -> List[bool]:
    """For each word, whether its midpoint lies in a region (widened by ``tolerance`` s)."""
    flags = []
    for w in words:
        mid = 0.5 * (float(w["start"]) + float(w["end"]))
        flags.append(any(s - tolerance <= mid <= e + tolerance for s, e in regions))
    return flags
