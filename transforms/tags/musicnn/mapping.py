"""Map musicnn tag scores (MTT_musicnn, MSD_musicnn) into songshard's vocabulary and vocal gender.

``map_tags(mtt_scores, msd_scores)`` takes the song-mean scores the tagger
returns (``tag_song(...)[name]["tags"]``; either may be None when that model
was not run) and returns::

    {"gender": (value, score), "genres": [(term, score)], "emotions": [...],
     "instruments": [...], "vocal": {"present": bool | None, "score": float}}

The rules and per-tag thresholds live in ``mapping.json`` next to this file
(provisional: see its note and :func:`derive_thresholds`). A source tag fires
when its score reaches its threshold; a term's score is the highest score
among its firing sources, and terms are listed best first, capped per
dimension. Gender is "male", "female", "none" (no vocals) or None (undecided).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

MAPPING_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mapping.json")
MODEL_KEYS = {"MTT": "MTT_musicnn", "MSD": "MSD_musicnn"}
TERM_DIMENSIONS = ("genres", "emotions", "instruments")


@lru_cache(maxsize=4)
def load_mapping(path: str = MAPPING_PATH) -> dict:
    """The mapping document (rules, base rates, thresholds). Raises on a missing or invalid file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def derive_thresholds(mapping: dict) -> Dict[str, Dict[str, float]]:
    """Per-tag thresholds from ``mapping["rule"]`` and ``mapping["base_rates"]``, as stored in the file.

    threshold = min(cap, max(floor, ratio * base_rate)), with ``vocal_floor``
    instead of ``floor`` for the tags that decide vocals and gender (their
    scores run lower because those tags are rarer), rounded to 3 decimals.
    """
    rule, base = mapping["rule"], mapping["base_rates"]
    vocal = set(sources(mapping["gender"])) | set(sources(mapping["vocal"]))
    used = set(vocal) | set(sources(mapping["guitar"]))
    for dim in TERM_DIMENSIONS:
        used |= set(sources(mapping[dim]))
    out: Dict[str, Dict[str, float]] = {key: {} for key in MODEL_KEYS}
    for source in sorted(used):
        model, tag = source.split(":", 1)
        floor = rule["vocal_floor"] if source in vocal else rule["floor"]
        out[model][tag] = round(min(rule["cap"], max(floor, rule["ratio"] * base[model][tag])), 3)
    return out


def sources(section) -> List[str]:
    """Every "MODEL:tag" string inside a mapping section (lists, nested dicts)."""
    if isinstance(section, str):
        return [section] if ":" in section else []
    items = section.values() if isinstance(section, dict) else section if isinstance(section, list) else []
    return [s for item in items for s in sources(item)]


def _scores(source: str, scores: Dict[str, Optional[Dict[str, float]]]) -> float:
    """Score of "MODEL:tag" in ``scores`` ({"MTT": {...}, "MSD": {...}}); 0 when that model is absent."""
    model, tag = source.split(":", 1)
    return float((scores.get(model) or {}).get(tag, 0.0))


def _evidence(names: Sequence[str], scores: dict, thresholds: dict) -> Tuple[float, float]:
    """(best score / threshold ratio, best score among firing sources, else 0) over ``names``."""
    ratio, best = 0.0, 0.0
    for source in names:
        model, tag = source.split(":", 1)
        value = _scores(source, scores)
        r = value / thresholds[model][tag]
        ratio = max(ratio, r)
        if r >= 1.0:
            best = max(best, value)
    return ratio, best


def _terms(rules: Dict[str, List[str]], scores: dict, thresholds: dict, limit: int) -> List[Tuple[str, float]]:
    """Terms whose sources fire, as (term, score), highest score first, at most ``limit``."""
    picked = []
    for term, names in rules.items():
        ratio, best = _evidence(names, scores, thresholds)
        if ratio >= 1.0:
            picked.append((term, round(best, 4)))
    return sorted(picked, key=lambda item: (-item[1], item[0]))[:limit]


def _vocal(mapping: dict, scores: dict, thresholds: dict) -> dict:
    """{"present", "score"}: present when vocal evidence fires and outweighs no-vocal evidence.

    Gender tags count as vocal evidence. The score is the share of the two
    evidence ratios that is vocal (0.5 when balanced or when there is none).
    """
    present_names = sources(mapping["vocal"]["present"]) + sources(mapping["gender"])
    yes, _ = _evidence(present_names, scores, thresholds)
    no, _ = _evidence(sources(mapping["vocal"]["absent"]), scores, thresholds)
    share = yes / (yes + no) if yes + no > 0 else 0.5
    present = True if yes >= 1.0 and yes >= no else False if no >= 1.0 and no > yes else None
    return {"present": present, "score": round(share, 4)}


def _gender(mapping: dict, scores: dict, thresholds: dict, vocal: dict) -> Tuple[Optional[str], float]:
    """("female" | "male" | "none" | None, score): the sex whose tags fire and lead by ``min_ratio``."""
    if vocal["present"] is False:
        _, best = _evidence(sources(mapping["vocal"]["absent"]), scores, thresholds)
        return "none", round(best, 4)
    female = _evidence(mapping["gender"]["female"], scores, thresholds)
    male = _evidence(mapping["gender"]["male"], scores, thresholds)
    (lead_name, lead), (_, other) = sorted((("female", female), ("male", male)), key=lambda x: -x[1][0])
    if lead[0] >= 1.0 and lead[0] >= mapping["gender"]["min_ratio"] * other[0]:
        return lead_name, round(lead[1], 4)
    return None, 0.0


def map_tags(mtt_scores: Optional[Dict[str, float]], msd_scores: Optional[Dict[str, float]],
             mapping: Optional[dict] = None) -> dict:
    """Song-mean musicnn scores -> songshard vocabulary picks (see the module docstring).

    Tags missing from a score dict count as 0, so one model alone still maps.
    Raises ``KeyError`` when the mapping names a tag without a threshold.
    """
    mapping = mapping or load_mapping()
    thresholds = mapping["thresholds"]
    scores = {"MTT": mtt_scores or {}, "MSD": msd_scores or {}}
    limits = mapping["limits"]
    out = {dim: _terms(mapping[dim], scores, thresholds, limits[dim]) for dim in TERM_DIMENSIONS}
    guitar = mapping["guitar"]
    ratio, best = _evidence(guitar["sources"], scores, thresholds)
    if ratio >= 1.0:
        genres = {term for term, _ in out["genres"]}
        term = "electric guitar" if genres & set(guitar["electric_with_genres"]) else "acoustic guitar"
        kept = [item for item in out["instruments"] if item[0] != term]
        merged = max([best] + [s for t, s in out["instruments"] if t == term])
        out["instruments"] = sorted(kept + [(term, round(merged, 4))], key=lambda x: (-x[1], x[0]))
        out["instruments"] = out["instruments"][:limits["instruments"]]
    out["vocal"] = _vocal(mapping, scores, thresholds)
    out["gender"] = _gender(mapping, scores, thresholds, out["vocal"])
    return out
