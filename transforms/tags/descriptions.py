"""Merge the tag sources and write ``labels["tags"]`` with its ``descriptions`` string. Pure.

Sources and who wins, per dimension (each chosen tag records its source):

* gender: sidecar > file tags > signal (vocal pitch) > model;
* genre, emotion: sidecar > file tags > model (never guessed from the signal);
* instruments: the union of sidecar, file tags and model, in that order;
* bpm: the structure stage's measured tempo > the tempo the metadata declares.

``descriptions`` follows the training side: lower-case, comma-separated tags in
the order gender, genre, emotion, instrument(s), then ``the bpm is N``. A
dimension nobody knows is left out, never filled with a default.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

MAX_GENRES = 2
MAX_EMOTIONS = 1
MAX_INSTRUMENTS = 4

Pick = Tuple[str, str]  # (term, source)


def _first_source(candidates: Sequence[Sequence[Pick]], limit: int) -> List[Pick]:
    for picks in candidates:
        if picks:
            return list(picks)[:limit]
    return []


def merge_tags(meta: Dict[str, List[Pick]], signal_gender: str, model: Dict[str, List[Pick]]) -> Dict[str, List[Pick]]:
    """{dimension: [(term, source)]} chosen by the precedence in the module docstring.

    ``meta`` is ``metadata.metadata_tags(...)["tags"]``; ``signal_gender`` the pitch
    descriptor's verdict ("" if unsure); ``model`` the tagger backend's confident picks.
    """
    def by_source(dim: str, source: str) -> List[Pick]:
        return [p for p in meta.get(dim, []) if p[1] == source]

    gender = _first_source([by_source("gender", "sidecar"), by_source("gender", "file_tags"),
                            [(signal_gender, "signal:pitch")] if signal_gender else [],
                            model.get("gender", [])], 1)
    out = {"gender": gender}
    for dim, limit in (("genre", MAX_GENRES), ("emotion", MAX_EMOTIONS)):
        out[dim] = _first_source([by_source(dim, "sidecar"), by_source(dim, "file_tags"),
                                  model.get(dim, [])], limit)
    instruments: List[Pick] = []
    for pick in list(meta.get("instrument", [])) + list(model.get("instrument", [])):
        if pick[0] not in {t for t, _ in instruments}:
            instruments.append(pick)
    out["instrument"] = instruments[:MAX_INSTRUMENTS]
    return out


def tag_list(merged: Dict[str, List[Pick]]) -> List[str]:
    """The chosen terms in the training side's order: gender, genre, emotion, instruments."""
    return [t.lower() for dim in ("gender", "genre", "emotion", "instrument") for t, _ in merged.get(dim, [])]


def descriptions_string(tags: Sequence[str], bpm: Optional[int]) -> str:
    """"female, pop, sad, piano, drums, the bpm is 120": tags, then the tempo phrase."""
    parts = [t.strip().lower() for t in tags if t and t.strip()]
    if bpm:
        parts.append(f"the bpm is {int(bpm)}")
    return ", ".join(parts)


def tag_details(merged: Dict[str, List[Pick]], model_scores: Optional[dict], descriptors: dict) -> List[dict]:
    """Every chosen tag with its dimension, source and score.

    Scores: a model's own score for its picks; 1.0 for what metadata declares;
    the pitch descriptor's confidence for a gender heard in the vocal pitch.
    """
    out = []
    for dim in ("gender", "genre", "emotion", "instrument"):
        for term, source in merged.get(dim, []):
            if source.startswith("model:"):
                score = (model_scores or {}).get(dim, {}).get(term)
            elif source.startswith("signal:"):
                score = (descriptors.get("pitch") or {}).get("confidence")
            else:
                score = 1.0
            out.append({"dimension": dim, "term": term, "source": source,
                        "score": None if score is None else round(float(score), 4)})
    return out


def tags_label(merged: Dict[str, List[Pick]], descriptors: dict, unmapped: Optional[dict] = None,
               model_scores: Optional[dict] = None) -> dict:
    """``labels["tags"]``: the contract keys plus descriptors, sources and unmapped metadata."""
    tempo = descriptors.get("tempo", {}) or {}
    bpm = tempo.get("bpm")
    terms = tag_list(merged)
    sources = {dim: {t: s for t, s in picks} for dim, picks in merged.items() if picks}
    if bpm:
        sources["bpm"] = {str(bpm): tempo.get("source", "")}
    return {
        "gender": merged["gender"][0][0] if merged.get("gender") else "",
        "genre": merged["genre"][0][0] if merged.get("genre") else "",
        "genres": [t for t, _ in merged.get("genre", [])],
        "emotion": merged["emotion"][0][0] if merged.get("emotion") else "",
        "instruments": [t for t, _ in merged.get("instrument", [])],
        "bpm": bpm,
        "key": " ".join(x for x in (descriptors.get("key", ""), descriptors.get("mode", "")) if x),
        "descriptions": descriptions_string(terms, bpm),
        "tag_list": terms,
        "sources": sources,
        "details": tag_details(merged, model_scores, descriptors),
        "descriptors": {k: v for k, v in descriptors.items() if k != "tempo"},
        "unmapped": unmapped or {},
        "model_scores": model_scores or {},
    }
