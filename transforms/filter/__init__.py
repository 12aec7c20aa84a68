"""Filter stage: drop songs by rules, each drop recorded with every reason that applied.

Rules are pure functions ``(song, params) -> list of reasons`` collected in
``RULES`` under a name; ``FilterSongs(config, rules=(...))`` applies the named
ones, so the cheap duration rule runs right after decode and the label rules at
the end. Dropped songs go to the ``dropped`` output as :class:`Dropped` records
(written to OUT/filtered/), never silently.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import Dropped, Song
from transforms.core import tiers
from transforms.core.config import StageConfig
from transforms.core.facts import MIN_SONG_SECONDS
from transforms.core.stage import Configurable

DROPPED = "dropped"


def duration_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    reasons = []
    source_duration = song.source.duration if song.source else song.duration
    min_d = p.get("min_duration")
    max_d = p.get("max_duration")
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
    """The training side's language rule, only when asked for (``--filter_language_rule``).

    Off by default: the default ASR model is small, and on singing its language
    probability is low even when the language is right, so the rule would drop
    most vocal songs. Language, probability and coverage are in every label and
    index row for a trainer to threshold. Songs without vocals (or without a
    transcript) are exempt.

    The probability rule is waived when the detected language is the one the
    song's metadata declares (two independent sources agreeing); the coverage
    rule always applies.
    """
    if not p.get("language_rule") or song.label("quality", "pure_music", False):
        return []
    lyr = song.labels.get("lyrics", {})
    if not lyr.get("words"):
        return []
    reasons = []
    prob, cov = lyr.get("language_probability"), lyr.get("language_coverage")
    min_p = p.get("min_language_probability")
    min_c = p.get("min_language_coverage")
    confirmed = bool(lyr.get("language")) and declared_language(song) == lyr.get("language")
    if min_p is not None and prob is not None and float(prob) <= float(min_p) and not confirmed:
        reasons.append(f"language_uncertain: p({lyr.get('language')})={float(prob):.2f} <= {float(min_p):.2f}")
    if min_c is not None and cov is not None and float(cov) <= float(min_c):
        reasons.append(f"language_mixed: coverage {float(cov):.2f} <= {float(min_c):.2f}")
    return reasons


QUALITY_BOUNDS = (("max_clipping_ratio", "clipping_ratio", max, "clipping"),
                  ("min_bandwidth_hz", "bandwidth_hz", min, "low_bandwidth"),
                  ("max_silence_ratio", "silence_ratio", max, "silent"),
                  ("min_loudness_lufs", "loudness_lufs", min, "too_quiet"))


def musicality_reasons(q: dict, p: Dict[str, Any]) -> List[str]:
    """The minimum-musicality rule: a tier name (songs below it go) or a score floor."""
    floor_name, floor_score = tiers.parse_floor(p.get("min_musicality"))
    if floor_score is not None and q.get("musicality_score") is not None:
        score = float(q["musicality_score"])
        return [f"low_musicality: score {score:.2f} < {floor_score:.2f}"] if score < floor_score else []
    if floor_name and tiers.below_floor(q.get("musicality", ""), floor_name):
        return [f"low_musicality: {q.get('musicality')} below {floor_name}"]
    return []


def quality_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    """Quality floors on ``labels["quality"]``; every threshold is optional (None: off).

    A song without a quality label (the stage did not run) is never dropped here.
    """
    q = song.labels.get("quality", {}) or {}
    if not q:
        return []
    reasons = musicality_reasons(q, p)
    for key, measure, kind, reason in QUALITY_BOUNDS:
        limit, value = p.get(key), q.get(measure)
        if limit is None or limit == "" or value is None:
            continue
        limit, value = float(limit), float(value)
        if (kind is max and value > limit) or (kind is min and value < limit):
            sign = ">" if kind is max else "<"
            reasons.append(f"{reason}: {measure} {value:.4g} {sign} {limit:.4g}")
    if p.get("drop_fake_stereo") and q.get("fake_stereo"):
        reasons.append("fake_stereo: both channels carry the same signal")
    return reasons


def words_reasons(song: Song, p: Dict[str, Any]) -> List[str]:
    """``--filter_require_words``: drop a song whose vocals were found but whose words were not
    (``labels.lyrics.lyrics_status`` == ``vocals_without_words``, e.g. growls). Instrumentals stay."""
    status = (song.labels.get("lyrics", {}) or {}).get("lyrics_status", "")
    if p.get("require_words") and status == "vocals_without_words":
        return ["no_words: vocals found, no words recovered"]
    return []


RULES: Dict[str, Callable[[Song, Dict[str, Any]], List[str]]] = {
    "duration": duration_reasons,
    "language": language_reasons,
    "quality": quality_reasons,
    "words": words_reasons,
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


class FilterSongs(Configurable, beam.PTransform):
    """Songs in; ``(kept songs, Dropped records)`` out. ``rules`` names entries of RULES.

    Flags: ``--filter_*`` (see ``add_options``); ``configure`` checks them in the driver.
    """

    stage = "filter"

    def __init__(self, config: StageConfig, rules=tuple(RULES)):
        super().__init__()
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown filter rules {unknown}; known: {sorted(RULES)}")
        self.params = config.params
        self.rules = tuple(rules)

    @classmethod
    def add_options(cls, group) -> None:
        add = group.add_argument
        add("--filter_min_duration", type=float, default=MIN_SONG_SECONDS, help="drop songs shorter than this (s)")
        add("--filter_max_duration", type=float, default=3600.0, help="drop inputs longer than this before the cut (s)")
        add("--filter_language_rule", action="store_true",
            help="apply the training side's language rule (probability > --filter_min_language_probability and "
                 "coverage > --filter_min_language_coverage); off by default: see the README")
        add("--filter_min_language_probability", type=float, default=0.9)
        add("--filter_min_language_coverage", type=float, default=0.8)
        add("--filter_min_musicality", default=None,
            help="drop songs below this tier (very-low | low | medium | high) or musicality score (a number)")
        add("--filter_max_clipping_ratio", type=float, default=None,
            help="drop songs with more than this share of clipped samples (e.g. 0.001)")
        add("--filter_min_bandwidth_hz", type=float, default=None,
            help="drop songs whose effective bandwidth is below this (e.g. 11000: low bit rate / upsampled)")
        add("--filter_max_silence_ratio", type=float, default=None,
            help="drop songs with more than this share of silent 100 ms frames")
        add("--filter_min_loudness_lufs", type=float, default=None,
            help="drop songs quieter than this integrated loudness (LUFS)")
        add("--filter_drop_fake_stereo", action="store_true",
            help="drop songs whose two channels carry the same signal")
        add("--filter_require_words", action="store_true",
            help="drop songs whose vocals were found but whose words were not (lyrics_status "
                 "vocals_without_words: growls, or an ASR that heard nothing); instrumentals stay")

    @classmethod
    def configure(cls, values) -> StageConfig:
        config = super().configure(values)
        tiers.parse_floor(config.get("min_musicality"))  # ValueError now, not after every model stage ran
        return config

    def expand(self, pcoll):
        out = pcoll | beam.ParDo(_FilterFn(self.params, self.rules)).with_outputs(DROPPED, main="kept")
        return out.kept, out[DROPPED]
