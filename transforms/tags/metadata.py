"""Tags a song's own metadata declares, mapped onto the controlled vocabulary. Pure, no I/O.

In: the file's embedded tags (``SourceInfo.file_tags``: lower-case keys such as
"genre", "mood", "artist") and the sidecar JSON (``SourceInfo.sidecar``).
Out: ``{dimension: [(term, source), ...]}`` for gender, genre, emotion and
instrument, every term a word of ``vocabulary.json``, plus the strings that
could not be mapped (kept for the label, never turned into tags).

Free text is normalised (lower case; ``-``, ``_`` and ``/`` read as spaces) and
looked up as a whole first ("hip-hop", "Indie Pop"), then split on ``, ; | /``
and looked up part by part, so "Rock/Pop; Hip-Hop" gives rock, pop and hip hop.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, Dict, Iterable, List, Tuple

DIMENSIONS = ("gender", "genre", "emotion", "instrument")
VOCABULARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vocabulary.json")

# Which keys of the sidecar / the file tags speak about which dimension.
KEYS = {
    "gender": ("gender", "vocal_gender", "singer_gender", "vocals", "voice"),
    "genre": ("genre", "genres", "style", "styles"),
    "emotion": ("emotion", "emotions", "mood", "moods"),
    "instrument": ("instrument", "instruments", "instrumentation"),
}
FREE_KEYS = ("tags", "keywords", "description", "descriptions")  # any dimension
_SPLIT = re.compile(r"\s*[,;|/]\s*|\s+and\s+(?=\w)|\u3001|\uff0c")


@functools.lru_cache(maxsize=4)
def load_vocabulary(path: str = VOCABULARY_PATH) -> dict:
    """The vocabulary file as a dict (cached)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def normalise(text: str) -> str:
    """Lower case, ``-`` ``_`` read as spaces, runs of spaces collapsed, ends stripped."""
    text = str(text).strip().lower().replace("_", " ")
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    return re.sub(r"\s+", " ", text).strip(" .!?\"'")


def lookup(text: str, dimension: str, vocab: dict | None = None) -> List[str]:
    """Vocabulary terms of ``dimension`` that ``text`` names as a whole ([] if none)."""
    vocab = vocab or load_vocabulary()
    key = normalise(text)
    if not key:
        return []
    terms = vocab[dimension]
    by_norm = {normalise(t): t for t in terms}
    if key in by_norm:
        return [by_norm[key]]
    synonyms = {normalise(k): v for k, v in vocab.get("synonyms", {}).get(dimension, {}).items()}
    hit = synonyms.get(key)
    if hit is None:
        return []
    return [t for t in ([hit] if isinstance(hit, str) else hit) if t in terms]


def map_text(text: str, dimension: str, vocab: dict | None = None) -> Tuple[List[str], List[str]]:
    """(terms, unmapped parts) for a free-text value such as "Rock/Pop; Hip-Hop"."""
    vocab = vocab or load_vocabulary()
    whole = lookup(text, dimension, vocab)
    if whole:
        return whole, []
    terms: List[str] = []
    unmapped: List[str] = []
    for part in _SPLIT.split(str(text)):
        if not part.strip():
            continue
        found = lookup(part, dimension, vocab)
        if found:
            terms.extend(t for t in found if t not in terms)
        else:
            unmapped.append(normalise(part))
    return terms, unmapped


def _values(value: Any) -> Iterable[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [str(value)] if str(value).strip() else []


def metadata_tags(file_tags: Dict[str, Any] | None, sidecar: Dict[str, Any] | None,
                  vocab: dict | None = None) -> dict:
    """Tags declared by the sidecar (first) and the file's own tags, in vocabulary terms.

    Returns ``{"tags": {dim: [(term, source)]}, "unmapped": {dim: [text]}}`` where
    ``source`` is "sidecar" or "file_tags". A dimension keeps the terms of the first
    source that names it (the sidecar is curated; file tags are often stale), except
    instruments, which are pooled. Free ``tags`` / ``keywords`` lists count for any
    dimension whose vocabulary they name exactly or through a synonym.
    """
    vocab = vocab or load_vocabulary()
    out: Dict[str, List[Tuple[str, str]]] = {d: [] for d in DIMENSIONS}
    unmapped: Dict[str, List[str]] = {d: [] for d in DIMENSIONS}
    for source, data in (("sidecar", sidecar or {}), ("file_tags", file_tags or {})):
        data = {str(k).lower(): v for k, v in data.items()}
        for dim in DIMENSIONS:
            if out[dim] and dim != "instrument":
                continue
            found: List[str] = []
            for key in KEYS[dim]:
                for value in _values(data.get(key)):
                    terms, missed = map_text(value, dim, vocab)
                    found.extend(t for t in terms if t not in found)
                    unmapped[dim].extend(m for m in missed if m not in unmapped[dim])
            for key in FREE_KEYS:
                for value in _values(data.get(key)):
                    found.extend(t for t in map_text(value, dim, vocab)[0] if t not in found)
            known = {t for t, _ in out[dim]}
            out[dim].extend((t, source) for t in found if t not in known)
    return {"tags": out, "unmapped": {d: v for d, v in unmapped.items() if v}}


def declared_bpm(file_tags: Dict[str, Any] | None, sidecar: Dict[str, Any] | None) -> float | None:
    """A tempo the metadata declares ("bpm" / "tbpm" / "tempo"), or None."""
    for data in (sidecar or {}, file_tags or {}):
        data = {str(k).lower(): v for k, v in data.items()}
        for key in ("bpm", "tbpm", "tempo"):
            try:
                value = float(str(data.get(key)).split()[0])
            except (TypeError, ValueError, IndexError):
                continue
            if 20.0 <= value <= 300.0:
                return value
    return None
