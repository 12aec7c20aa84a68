"""Filter stage: drop songs by rules, each drop recorded with every reason that applied.

Rules are pure functions ``(song, params) -> list of reasons`` collected in
``RULES`` under a name; ``FilterSongs(options, rules=(...))`` applies the named
ones, so the cheap duration rule runs right after decode and the label rules at
the end. Dropped songs go to the ``dropped`` output as :class:`Dropped` records
(written to OUT/filtered/), never silently.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import Dropped, Song
from transforms.base import option_values

DROPPED = "dropped"
MUSICALITY_ORDER = ["very-low", "low", "medium", "high", "very-high"]


def duration_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    reasons = []
    source_duration = song.source.duration if song.source else song.duration
    min_d = p.get("filter_min_duration")
    max_d = p.get("filter_max_duration")
    if min_d and song.duration < float(min_d):
        reasons.append(f"too_short: {song.duration:.1f}s < {float(min_d):.1f}s")
    if max_d and source_duration > float(max_d):
        reasons.append(f"too_long: {source_duration:.1f}s > {float(max_d):.1f}s")
    return reasons


LANGUAGE_NAMES = {"eng": "en", "english": "en", "zho": "zh", "chi": "zh", "chinese": "zh", "mandarin": "zh",
                  "cmn": "zh", "spa": "es", "spanish": "es", "fra": "fr", "fre": "fr", "french": "fr",
                  "deu": "de", "ger": "de", "german": "de", "jpn": "ja", "japanese": "ja", "kor": "ko",
                  "korean": "ko", "por": "pt", "portuguese": "pt", "ita": "it", "italian": "it",
                  "rus": "ru", "russian": "ru"}


def declared_language(song: Song) -> str:
    """The language the song's sidecar or file tags declare, as an ISO 639-1 code ("" if none)."""
    src = song.source
    raw = str((src.sidecar.get("language") if src else "") or (src.file_tags.get("language") if src else "") or "")
    raw = raw.strip().lower().split("-")[0].split("_")[0]
    return LANGUAGE_NAMES.get(raw, raw if len(raw) == 2 else "")


def language_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    """The reference language filter; songs without vocals (or without a transcript) are exempt.

    The probability rule is waived when the detected language is the one the
    song's metadata declares (two independent sources agreeing); the coverage
    rule always applies.
    """
    if song.label("quality", "pure_music", False):
        return []
    lyr = song.labels.get("lyrics", {})
    if not lyr.get("words"):
        return []
    reasons = []
    prob, cov = lyr.get("language_probability"), lyr.get("language_coverage")
    min_p = p.get("filter_min_language_probability")
    min_c = p.get("filter_min_language_coverage")
    confirmed = bool(lyr.get("language")) and declared_language(song) == lyr.get("language")
    if min_p is not None and prob is not None and float(prob) <= float(min_p) and not confirmed:
        reasons.append(f"language_uncertain: p({lyr.get('language')})={float(prob):.2f} <= {float(min_p):.2f}")
    if min_c is not None and cov is not None and float(cov) <= float(min_c):
        reasons.append(f"language_mixed: coverage {float(cov):.2f} <= {float(min_c):.2f}")
    return reasons


def musicality_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    floor = p.get("filter_min_musicality")
    tier = str(song.label("quality", "musicality", "") or "")
    if not floor or not tier:
        return []
    name = tier.strip("[]").lower().replace("musicality-", "")
    if name in MUSICALITY_ORDER and MUSICALITY_ORDER.index(name) < MUSICALITY_ORDER.index(floor):
        return [f"low_musicality: {tier} below {floor}"]
    return []


def quality_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    """Technical-quality thresholds owned by the tagging package, when it is present."""
    try:
        from transforms.tagging.quality import quality_drop_reasons
    except ImportError:
        return musicality_reasons(song, p)
    return list(quality_drop_reasons(song.labels.get("quality", {}), p))


RULES: Dict[str, Callable[[Song, Dict[str, Any]], List[str]]] = {
    "duration": duration_reasons,
    "language": language_reasons,
    "quality": quality_reasons,
}


def drop_reasons(song: Song, params: Dict[str, Any], rules=tuple(RULES)) -> List[str]:
    """Every reason the named rules give for dropping ``song`` (empty: keep it)."""
    reasons: List[str] = []
    for name in rules:
        reasons.extend(RULES[name](song, params))
    return reasons


class _FilterFn(beam.DoFn):
    def __init__(self, params: Dict[str, Any], rules):
        self.params = params
        self.rules = tuple(rules)

    def setup(self):
        self.kept = Metrics.counter("filter", "kept")
        self.dropped = Metrics.counter("filter", "dropped")

    def process(self, song: Song):
        reasons = drop_reasons(song, self.params, self.rules)
        if reasons:
            self.dropped.inc()
            yield beam.pvalue.TaggedOutput(DROPPED, Dropped(uri=song.uri, song_id=song.song_id,
                                                            reasons=reasons, duration=song.duration))
        else:
            self.kept.inc()
            yield song


class FilterSongs(beam.PTransform):
    """Songs in; ``(kept songs, Dropped records)`` out. ``rules`` names entries of RULES."""

    def __init__(self, options: Any = None, rules=tuple(RULES)):
        super().__init__()
        values = option_values(options)
        self.params = {k: v for k, v in values.items() if k.startswith("filter_")}
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown filter rules {unknown}; known: {sorted(RULES)}")
        self.rules = tuple(rules)

    def expand(self, pcoll):
        out = pcoll | beam.ParDo(_FilterFn(self.params, self.rules)).with_outputs(DROPPED, main="kept")
        return out.kept, out[DROPPED]
