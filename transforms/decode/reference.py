"""A song's reference lyrics from every place a lab keeps them, and which one is used.

Sources, by name, in the order of precedence (:data:`PRECEDENCE`; the first that holds text is used):

1. ``table``: the corpus-wide ``--lyrics_table``, joined to the song where the input is discovered
   (:mod:`transforms.discover.lyrics_table`); the join leaves its text in ``Song.source``;
2. ``json``: a ``lyrics`` string in the sidecar ``NAME.json``;
3. ``lrc``: the sidecar ``NAME.lrc``;  4. ``txt``: the sidecar ``NAME.txt``;
5. ``id3_sylt``: an ID3 ``SYLT`` frame (synchronised lyrics), turned into LRC lines;
6. ``id3_uslt`` (ID3 ``USLT``), ``vorbis`` (FLAC / Ogg / Opus ``LYRICS`` or ``UNSYNCEDLYRICS``),
   ``mp4`` (MP4 ``©lyr``): the unsynchronised lyrics embedded in the file.

Any of them may be plain text or LRC. :func:`reference_fields` gives the ``SourceInfo`` fields that
record the choice: the text used as given (``reference_lyrics_raw``, cut at the caps of
``core.lyrics_input``, its whole length kept), its source, every source that held lyrics, and its
lines as :func:`parse_lyrics` reads them (times, text). The lyric sheet's conventions (headings,
repeats, credits, enhanced-LRC word times) are read from the raw text by the lyrics stage
(``transforms.lyrics.sheet``), which decode may not import.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO, Dict, List, Optional, Sequence, Tuple, Union

from transforms.core import workdir
from transforms.core.lyrics_input import cap_text

PRECEDENCE = ("table", "json", "lrc", "txt", "id3_sylt", "id3_uslt", "vorbis", "mp4")
# tag key (lower case) -> source name, for the tag types read by key (ID3 frames are read apart)
TAG_KEYS = {"\xa9lyr": "mp4", "lyrics": "vorbis", "unsyncedlyrics": "vorbis", "unsynced lyrics": "vorbis",
            "unsynced_lyrics": "vorbis"}
SYLT_MILLISECONDS = 2  # SYLT time stamp format 2: absolute milliseconds (1: MPEG frames)


def _lrc_time(ms: float) -> str:
    seconds = max(0.0, ms / 1000.0)
    return f"{int(seconds // 60):02d}:{seconds % 60:05.2f}"


def sylt_to_lrc(entries: Sequence[Tuple[str, int]], stamp_format: int = SYLT_MILLISECONDS) -> str:
    """SYLT entries ``[(text, time)]`` -> LRC text: an entry that starts a line (the first, or one
    starting with a newline or following one ending with a newline; every entry where none holds a
    newline) gets ``[mm:ss.xx]``, and, where
    a line holds several entries (syllables, words), each gets an enhanced-LRC ``<mm:ss.xx>`` stamp.
    Times in MPEG frames (``stamp_format`` 1) cannot be read without the stream's frame rate: the
    text is kept, untimed."""
    timed = stamp_format == SYLT_MILLISECONDS
    lines: List[List[Tuple[str, int]]] = []
    new_line = True
    by_line = not any("\n" in str(t) or "\r" in str(t) for t, _ in entries)  # no line ends: an entry a line
    for text, time in entries:
        text = str(text or "")
        if by_line or text.startswith(("\n", "\r")):
            new_line = True
        if new_line or not lines:
            lines.append([])
        lines[-1].append((text.strip("\r\n"), int(time)))
        new_line = text.endswith(("\n", "\r"))
    out = []
    for parts in lines:
        if len(parts) == 1:
            body = parts[0][0].strip()
        else:
            body = "".join((f"<{_lrc_time(t)}>" if timed else "") + text for text, t in parts)
        out.append((f"[{_lrc_time(parts[0][1])}]" if timed else "") + body)
    return "\n".join(out)


def _first_text(values) -> str:
    """The first non-empty text of a tag value (a list, a frame's list, a string)."""
    values = values if isinstance(values, (list, tuple)) else [values]
    for value in values:
        text = str(getattr(value, "text", value) or "")
        if text.strip():
            return text
    return ""


def _id3_lyrics(tags) -> Dict[str, str]:
    found = {}
    uslt = [frame.text for frame in tags.getall("USLT") if str(frame.text or "").strip()]
    if uslt:
        found["id3_uslt"] = uslt[0]
    for frame in tags.getall("SYLT"):
        if frame.text and frame.type in (0, 1):  # 1: lyrics; 0: "other", often lyrics too
            found["id3_sylt"] = sylt_to_lrc(frame.text, frame.format)
            break
    return found


def embedded_lyrics(data: Union[bytes, BinaryIO]) -> Dict[str, str]:
    """{source name: text} of the lyrics embedded in a file's tags (ID3 USLT / SYLT, Vorbis LYRICS /
    UNSYNCEDLYRICS, MP4 ©lyr), from its bytes or a seekable binary stream. Tags that mutagen cannot
    read hold no lyrics (the audio decoder decides whether the file is usable)."""
    try:
        import mutagen

        source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        source.seek(0)
        tags = getattr(mutagen.File(source), "tags", None)
    except Exception:  # noqa: BLE001 - unreadable tags are no tags: the same rule as read_file_tags
        return {}
    if not tags:
        return {}
    if hasattr(tags, "getall"):  # ID3 (mp3, and wav / aiff with an ID3 chunk)
        return _id3_lyrics(tags)
    try:
        keys = {str(k).lower(): k for k in tags.keys()}
    except Exception:  # noqa: BLE001 - a tag type without keys holds no lyrics we know
        return {}
    for name, source in TAG_KEYS.items():
        if name in keys:
            text = _first_text(tags[keys[name]])
            if text.strip():
                return {source: text}
    return {}


def sidecar_lyrics(meta: dict, paths: Dict[str, str]) -> Dict[str, str]:
    """{source name: text} from the sidecars: ``meta["lyrics"]`` (NAME.json; a string, or a list of
    line strings) and the files ``paths["lrc"]`` / ``paths["txt"]`` when they exist."""
    found = {}
    value = meta.get("lyrics") if isinstance(meta, dict) else None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    if isinstance(value, str) and value.strip():
        found["json"] = value
    for name in ("lrc", "txt"):
        uri = paths.get(name)
        if uri and workdir.exists(uri):
            text = workdir.read_bytes(uri).decode("utf-8", errors="replace")
            if text.strip():
                found[name] = text
    return found


def choose(found: Dict[str, str]) -> Tuple[str, str]:
    """(source name, text) of the source with precedence among those in ``found``; ("", "") if none."""
    for name in PRECEDENCE:
        if (found.get(name) or "").strip():
            return name, found[name]
    return "", ""


_LRC_TIME = re.compile(r"\[(\d{1,4}):(\d{1,2}(?:[.:]\d{1,3})?)\]")
_LRC_WORD_TIME = re.compile(r"<\d{1,4}:\d{1,2}(?:[.:]\d{1,3})?>")
_LRC_META = re.compile(r"^\[[a-zA-Z#]+:.*\]$")


def parse_lyrics(text: str, fmt: str = "") -> list:
    """Lines [{"time": seconds | None, "text": ...}] of a lyric text, plain or LRC (a line with several
    times is one line a time; timed lines sorted by time). LRC tags and enhanced-LRC word times are
    left out; ``fmt`` is not needed (kept for callers that name it)."""
    lines = []
    for raw in str(text or "").splitlines():
        raw = raw.strip()
        if not raw or _LRC_META.match(raw):
            continue
        times = [int(m) * 60 + float(s.replace(":", ".")) for m, s in _LRC_TIME.findall(raw)]
        words = " ".join(_LRC_WORD_TIME.sub(" ", _LRC_TIME.sub("", raw)).split())
        if words:
            lines.extend({"time": t, "text": words} for t in times or [None])
    if any(ln["time"] is not None for ln in lines):
        lines.sort(key=lambda ln: (ln["time"] is None, ln["time"] or 0.0))
    return lines


def reference_fields(found: Dict[str, str], table_chars: int = 0) -> dict:
    """The ``SourceInfo`` fields for a song whose lyric sources are ``found`` ({source name: text}):
    ``reference_lyrics`` (its lines' text, one a line), ``reference_lyrics_format`` ("lrc" when lines
    are timed, else "txt"), ``reference_lyrics_lines`` ([{"time", "text"}]), ``reference_lyrics_source``
    (the one used), ``reference_lyrics_sources`` (every source holding lyrics, by precedence),
    ``reference_lyrics_raw`` (the text used, as given, cut at the caps) and ``reference_lyrics_chars``
    (its whole length; ``table_chars`` for the table's text, which the join has already cut)."""
    name, text = choose(found)
    sources = [n for n in PRECEDENCE if (found.get(n) or "").strip()]
    if not name:
        return {"reference_lyrics_sources": sources}
    raw = cap_text(text)
    lines = parse_lyrics(raw)
    return {"reference_lyrics": "\n".join(ln["text"] for ln in lines),
            "reference_lyrics_format": "lrc" if any(ln["time"] is not None for ln in lines) else "txt",
            "reference_lyrics_lines": lines, "reference_lyrics_source": name, "reference_lyrics_sources": sources,
            "reference_lyrics_raw": raw,
            "reference_lyrics_chars": max(len(text), table_chars if name == "table" else 0)}


def table_text(source) -> Optional[str]:
    """The lyrics the ``--lyrics_table`` join left on a song (its ``SourceInfo`` before decode), or None."""
    if source is not None and getattr(source, "reference_lyrics_source", "") == "table":
        return source.reference_lyrics_raw or None
    return None
