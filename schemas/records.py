"""The records that flow through songshard and the ones it writes.

Three layers, after lhotse's split:

* where the audio is: :class:`SourceInfo` (the file as found) and ``Song.audio``
  (work-dir URIs of the decoded mix and the stems);
* what lies in which time span: :class:`Section`, :class:`Word` (times in seconds);
* the training record: :class:`Song` while it moves through the stages, then the
  sample written to a shard (``Song.to_json``) and its :class:`IndexRow`.

Every label a stage adds is stored under ``Song.labels[stage]`` together with a
:class:`Provenance` under ``Song.provenance[stage]``. ``labels`` values are plain
JSON-able dicts so that a stage can grow without a schema migration; the fields
that users filter on are lifted into :class:`IndexRow`, whose Arrow schema is
derived from the dataclass (see ``schemas.arrow``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import traceback
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

SCHEMA_VERSION = 1


def stable_hash(text: str, n: int = 16) -> str:
    """Hex digest prefix of sha256(text); stable across processes (unlike hash())."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def hash_fraction(text: str) -> float:
    """Map text to a stable float in [0, 1) (for splits and bucketing)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16) / float(16**12)


@dataclass
class Provenance:
    """Which backend made a label: name, version, weights checksum, licence."""

    backend: str
    version: str = ""
    weights: str = ""  # path or name of the weights, "" for weight-free backends
    weights_sha256: str = ""
    licence: str = ""
    note: str = ""  # e.g. "embedded default (signal processing, no learned weights)"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SourceInfo:
    """The song file as it was found: container, codec, native rate, metadata."""

    uri: str
    size_bytes: int = 0
    container: str = ""
    codec: str = ""
    sample_rate: int = 0
    channels: int = 0
    duration: float = 0.0  # seconds, before any cut
    file_tags: dict = field(default_factory=dict)  # embedded ID3 / Vorbis / MP4 tags
    sidecar: dict = field(default_factory=dict)  # NAME.json beside the song
    # reference lyrics (transforms.decode.reference): the sung lines of the source used, one a line
    reference_lyrics: str = ""
    reference_lyrics_format: str = ""  # "txt" | "lrc" (line times) | ""
    reference_lyrics_lines: list = field(default_factory=list)  # [{"time": s|None, "text": ...}]
    reference_lyrics_source: str = ""  # table | json | lrc | txt | id3_sylt | id3_uslt | vorbis | mp4 | ""
    reference_lyrics_sources: list = field(default_factory=list)  # every source holding lyrics, by precedence
    reference_lyrics_raw: str = ""  # the used text as given (headings, LRC tags), cut at the caps
    reference_lyrics_chars: int = 0  # length of the used text before the cut (more than raw's: it was cut)


@dataclass
class Section:
    start: float
    end: float
    label: str

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label}


@dataclass
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass
class Song:
    """One song moving through the stages.

    ``audio`` maps names ("mix", "vocals", "accompaniment", ...) to work-dir URIs
    of float32 arrays (see ``transforms.workdir``); large audio never travels in
    the element itself. ``tokens`` are small int arrays (a 6 minute song at 25 Hz
    is 3 x 9001 ids) and do travel with the song.
    """

    uri: str
    song_id: str = ""
    source: Optional[SourceInfo] = None
    duration: float = 0.0  # seconds actually processed (after the length cap)
    truncated: bool = False
    audio: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)  # name -> np.ndarray, e.g. "tokens" [3, T], "prompt" [3, T']
    split: str = ""
    artist: str = ""
    title: str = ""
    timings: dict = field(default_factory=dict)  # stage -> seconds of compute

    def label(self, stage: str, key: str, default: Any = None) -> Any:
        return self.labels.get(stage, {}).get(key, default)

    def set_label(self, stage: str, value: dict, provenance: Optional[Provenance] = None) -> None:
        self.labels[stage] = value
        if provenance is not None:
            self.provenance[stage] = provenance.to_dict()


@dataclass
class DeadLetter:
    """A song that failed a stage: what, where, why. Written to OUT/failures/."""

    uri: str
    stage: str
    error_type: str
    message: str
    song_id: str = ""
    traceback: str = ""

    @classmethod
    def from_exception(cls, song_or_uri: Any, stage: str, exc: BaseException) -> "DeadLetter":
        uri = song_or_uri.uri if isinstance(song_or_uri, Song) else str(song_or_uri)
        song_id = song_or_uri.song_id if isinstance(song_or_uri, Song) else ""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4))
        return cls(uri=uri, stage=stage, error_type=type(exc).__name__, message=str(exc)[:2000],
                   song_id=song_id, traceback=tb[-4000:])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Dropped:
    """A song a filter rule removed, with every reason that applied. OUT/filtered/."""

    uri: str
    song_id: str
    reasons: list
    duration: float = 0.0
    stage: str = "filter"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class IndexRow:
    """One row of OUT/index/*.parquet: one sample, the figures people filter on.

    The Arrow schema is derived from these annotations (``schemas.arrow``), so
    adding a field here adds a column.
    """

    key: str
    shard: str
    split: str
    uri: str
    artist: str
    title: str
    duration: float
    truncated: bool
    num_frames: int
    language: str
    language_probability: float
    language_coverage: float
    bpm: float
    num_sections: int
    num_words: int
    descriptions: str
    tags: list  # list[str]
    gender: str
    genre: str
    musicality: str
    pure_music: bool
    loudness_lufs: float
    true_peak_dbfs: float
    clipping_ratio: float
    bandwidth_hz: float
    silence_ratio: float
    source_sample_rate: int
    source_codec: str
    separator: str
    structure: str
    asr: str
    tagger: str
    codec: str
    run_id: str
    # lyrics: where the words come from ("reference": the lab's text aligned to the song; "asr"; ""
    # without words), how well a reference agreed with the audio (NaN without one), and whether words
    # were found ("words", "vocals_without_words", "no_vocals"). Defaults: parts of older builds.
    words_source: str = ""
    lyrics_agreement: float = float("nan")
    lyrics_status: str = ""


def _f(value: Any, default: float = float("nan")) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def index_row(song: Song, shard: str, run_id: str) -> IndexRow:
    """Lift the filterable figures of a finished song into an IndexRow."""
    lyr = song.labels.get("lyrics", {})
    st = song.labels.get("structure", {})
    tags = song.labels.get("tags", {})
    q = song.labels.get("quality", {})
    tok = song.labels.get("tokens", {})
    prov = song.provenance
    return IndexRow(
        key=song.song_id, shard=shard, split=song.split, uri=song.uri,
        artist=song.artist, title=song.title, duration=round(song.duration, 3),
        truncated=song.truncated, num_frames=int(tok.get("num_frames", 0)),
        language=str(lyr.get("language", "")),
        language_probability=_f(lyr.get("language_probability")),
        language_coverage=_f(lyr.get("language_coverage")),
        bpm=_f(st.get("bpm")), num_sections=len(st.get("sections", [])),
        num_words=len(lyr.get("words", [])),
        descriptions=str(tags.get("descriptions", "")),
        tags=[str(t) for t in tags.get("tag_list", [])],
        gender=str(tags.get("gender", "")), genre=str(tags.get("genre", "")),
        musicality=str(q.get("musicality", "")), pure_music=bool(q.get("pure_music", False)),
        loudness_lufs=_f(q.get("loudness_lufs")), true_peak_dbfs=_f(q.get("true_peak_dbfs")),
        clipping_ratio=_f(q.get("clipping_ratio")), bandwidth_hz=_f(q.get("bandwidth_hz")),
        silence_ratio=_f(q.get("silence_ratio")),
        source_sample_rate=int(song.source.sample_rate if song.source else 0),
        source_codec=str(song.source.codec if song.source else ""),
        separator=prov.get("separate", {}).get("backend", ""),
        structure=prov.get("structure", {}).get("backend", ""),
        asr=prov.get("lyrics", {}).get("backend", ""),
        tagger=prov.get("tags", {}).get("backend", ""),
        codec=prov.get("tokens", {}).get("backend", ""),
        run_id=run_id,
        words_source=str(lyr.get("words_source", "")),
        lyrics_agreement=_f((lyr.get("agreement") or {}).get("score")),
        lyrics_status=str(lyr.get("lyrics_status", "")),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def sample_json(song: Song, run: dict) -> dict:
    """The ``json`` member of a shard sample: every label, in the training side's terms.

    Top-level ``gt_lyric``, ``descriptions`` and ``musicality`` are the strings a
    SongGeneration-style trainer reads directly; everything else sits under its stage.
    """
    lyr = song.labels.get("lyrics", {})
    tags = song.labels.get("tags", {})
    q = song.labels.get("quality", {})
    tok = song.labels.get("tokens", {})
    out = {
        "schema_version": SCHEMA_VERSION,
        "key": song.song_id,
        "uri": song.uri,
        "artist": song.artist,
        "title": song.title,
        "split": song.split,
        "duration": round(song.duration, 3),
        "truncated": song.truncated,
        "gt_lyric": lyr.get("gt_lyric", ""),
        "gt_lyric_timed": lyr.get("gt_lyric_timed", ""),
        "descriptions": tags.get("descriptions", ""),
        "musicality": q.get("musicality", ""),
        "pure_music": bool(q.get("pure_music", False)),
        "tokens": {"layout": tok.get("layout", ["mixed", "vocal", "accompaniment"]), **tok},
        "source": dataclasses.asdict(song.source) if song.source else {},
        "labels": song.labels,
        "provenance": song.provenance,
        "timings": song.timings,
        "run": run,
    }
    return _jsonable(out)
