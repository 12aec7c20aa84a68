"""Lyric sheets as labs hold them: plain text or LRC in; blocks of lines and words out.

Pure functions: no Beam, no audio, no models. :func:`parse_sheet` reads the conventions
found in lyric feeds, LRC files and tags, and never raises on what it reads:

* section headings: ``[Chorus]``, ``[Verse 2: Name]``, ``Verse 1:``, ``CHORUS``, ``(Chorus)``,
  ``Pre-Chorus``, ``Bridge``, ``Intro``, ``Outro``, ``Hook`` ... keep their name and get one of
  songshard's section words (:data:`SECTION_WORDS`; "" when the name maps to none);
* repeats are recorded, never expanded: ``hold on (x2)`` (the line), a ``(x2)`` / ``(repeat)``
  line of its own (the block it follows), ``[Chorus x2]``, ``Repeat chorus`` and a bare
  ``[Chorus]`` heading with no lines after it (the named earlier block again, ``repeat_of``);
  :func:`expanded_words` gives the order with repeats expanded, for an aligner to try;
* credit lines are dropped (``format.is_credit_line``), ``name:`` speaker prefixes stripped;
* LRC: ``[mm:ss.xx]`` line times (several on one line: one line a time), ``<mm:ss.xx>`` word
  times (enhanced LRC), ``[ar:]`` / ``[ti:]`` ... kept in ``meta``, ``[offset:+/-ms]`` applied
  (a positive offset makes the lyrics come sooner, as LRC players read it);
* a line that cannot be read (a 400-digit, negative or non-numeric time, a line over
  :data:`MAX_LINE_CHARS`) is dropped; every dropped line is in ``Sheet.dropped`` with why;
* texts over :data:`MAX_SHEET_CHARS` or :data:`MAX_SHEET_LINES` are cut, and the cut recorded.

Text is NFKC with ASCII punctuation (``format.to_ascii_punctuation``), case kept. Words are
whitespace-separated tokens stripped of outer punctuation; Chinese and Japanese characters are one
word each.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from transforms.core.lyrics_input import MAX_LYRICS_CHARS, MAX_LYRICS_LINES, cap_text
from transforms.lyrics import format as fmt
from transforms.lyrics.sheet_text import (MAX_REPEAT, SECTION_WORDS, WORDLESS_SECTIONS, LineWord,  # noqa: F401
                                         classify, clean_chunk, is_time, line_words, parse_time, repeat_count,
                                         section_word, unwrap)

MAX_SHEET_CHARS = MAX_LYRICS_CHARS  # one definition: core.lyrics_input
MAX_SHEET_LINES = MAX_LYRICS_LINES
MAX_LINE_CHARS = 1_000
MAX_OFFSET_MS = 3_600_000

_TAG = re.compile(r"\[([^\[\]]*)\]")
_STAMP = re.compile(r"<([^<>]{0,40})>")
_META = re.compile(r"(ar|ti|al|au|by|offset|length|re|ve|la|lang|language|id|tool|kana|#)\s*:(.*)", re.I | re.S)
_OFFSET = re.compile(r"\s*([+-]?\d{1,7})\s*")



@dataclass
class Line:
    """A sung line: cleaned text, its words, its LRC start (s, None without), ``times`` it is marked sung."""

    text: str
    words: List[LineWord] = field(default_factory=list)
    start: Optional[float] = None
    end: Optional[float] = None  # only where an empty LRC line closes it
    times: int = 1
    source_line: int = 0  # 1-based line number in the sheet's text


@dataclass
class Block:
    """A stretch of the sheet under one heading (or between blank lines).

    ``name``: the heading as written ("" without one); ``section``: its section word or "";
    ``times``: how often the sheet says to sing it (``[Chorus x2]``, a ``(x2)`` line);
    ``repeat_of``: index of the earlier block this one repeats (then ``lines`` is empty).
    """

    name: str = ""
    section: str = ""
    lines: List[Line] = field(default_factory=list)
    times: int = 1
    repeat_of: Optional[int] = None
    source_line: int = 0


@dataclass
class Dropped:
    """A line left out of the sheet (or a part of one: a speaker prefix, a bad word time), and why."""

    line: int  # 1-based line number in the sheet's text (0: the whole text)
    text: str  # at most 200 characters of it
    reason: str


@dataclass
class Truncation:
    original_chars: int
    original_lines: int
    kept_chars: int
    kept_lines: int


@dataclass
class Sheet:
    """A parsed lyric sheet. ``offset``: seconds already taken off every LRC time."""

    blocks: List[Block] = field(default_factory=list)
    dropped: List[Dropped] = field(default_factory=list)
    meta: Dict[str, str] = field(default_factory=dict)
    offset: float = 0.0
    timed: bool = False  # some line has an LRC time
    word_timed: bool = False  # some word has an enhanced-LRC time
    truncated: Optional[Truncation] = None


@dataclass(frozen=True)
class SheetWord:
    """A word in sheet or expanded order: ``block`` (where it is sung), ``source_block`` / ``line`` /
    ``word`` (where it is written), ``repeat`` (0 the first time that line is sung, k the k-th repeat)."""

    text: str
    block: int
    line: int
    word: int
    start: Optional[float] = None
    end: Optional[float] = None
    source_block: int = 0
    repeat: int = 0


def _clip(text: str) -> str:
    return text[:200]


def _cap(text: str, original_chars: int = 0) -> Tuple[List[str], Optional[Truncation]]:
    """The text's lines within the caps, and the cut when there was one (``original_chars``: the length
    of a text already cut by the caller, e.g. decode's ``reference_lyrics_chars``)."""
    kept = cap_text(text)
    lines = kept.splitlines()
    if kept is text and original_chars <= len(text):
        return lines, None
    return lines, Truncation(max(len(text), original_chars), text.count("\n") + 1, len(kept), len(lines))


def _offset(lines: List[str], sheet: Sheet) -> float:
    """The ``[offset:ms]`` tag's shift in seconds (a bad value is dropped with its reason)."""
    for number, raw in enumerate(lines, 1):
        m = _TAG.fullmatch(raw.strip())
        meta = _META.fullmatch(m.group(1)) if m else None
        if meta and meta.group(1).lower() == "offset":
            value = _OFFSET.fullmatch(meta.group(2))
            if value and abs(int(value.group(1))) <= MAX_OFFSET_MS:
                return int(value.group(1)) / 1000.0
            sheet.dropped.append(Dropped(number, _clip(raw), "bad_offset"))
    return 0.0


def _line_times(text: str, sheet: Sheet) -> Tuple[str, List[float], Optional[str]]:
    """(rest of the line, its LRC times, why it is unreadable or None); meta tags go to ``sheet.meta``."""
    times: List[float] = []
    text = text.strip()
    while text.startswith("["):
        m = _TAG.match(text)
        if not m:
            break
        inner = m.group(1)
        meta = _META.fullmatch(inner)
        if meta and not text[m.end():].strip():
            sheet.meta[meta.group(1).lower()] = meta.group(2).strip()[:200]
            return "", times, "meta"
        if not is_time(inner):
            break
        t = parse_time(inner)
        if t is None:
            return text, times, "bad_timestamp"
        times.append(round(max(0.0, t - sheet.offset), 3))
        text = text[m.end():].strip()
    return text, times, None


def _stamped(text: str, number: int, sheet: Sheet) -> Tuple[str, List[Tuple[int, float]]]:
    """(clean text, [(position in it, enhanced-LRC time)]): ``<mm:ss.xx>`` stamps taken out."""
    plain, stamps, last = "", [], 0
    for m in _STAMP.finditer(text):
        if not is_time(m.group(1)):
            continue
        plain += clean_chunk(text[last:m.start()])
        last = m.end()
        t = parse_time(m.group(1))
        if t is None:
            sheet.dropped.append(Dropped(number, _clip(m.group(0)), "bad_word_timestamp"))
        else:
            stamps.append((len(plain), round(max(0.0, t - sheet.offset), 3)))
    plain += clean_chunk(text[last:])
    lead = len(plain) - len(plain.lstrip())
    return plain.strip(), [(max(0, p - lead), t) for p, t in stamps]


def _lyric_lines(text: str, times: List[float], number: int, sheet: Sheet) -> List[Line]:
    """The Line(s) of a lyric line (one per LRC time), with its speaker prefix and repeat mark taken off."""
    repeat = 1
    tail = re.search(r"\s*[(\[]([^()\[\]]{1,20})[)\]]\s*$", text) or re.search(r"\s+(\S*\d\S*)\s*$", text)
    if tail and repeat_count(tail.group(1)) and text[:tail.start()].strip():
        repeat, text = repeat_count(tail.group(1)), text[:tail.start()]
    plain, stamps = _stamped(text, number, sheet)
    stripped = fmt.strip_speaker_prefix(plain).strip()
    if stripped != plain:
        cut = len(plain) - len(stripped)
        sheet.dropped.append(Dropped(number, _clip(plain[:cut]), "speaker_prefix"))
        plain, stamps = stripped, [(p - cut, t) for p, t in stamps if p >= cut]
    words = line_words(plain, stamps)
    if not words:
        return []
    sheet.word_timed = sheet.word_timed or bool(stamps)
    text = " ".join(plain.split())
    out = []
    times = sorted(times)
    for k, start in enumerate(times or [None]):
        shift = (start - times[0]) if k and start is not None else 0.0
        copy = [LineWord(w.text, None if w.start is None else round(w.start + shift, 3),
                         None if w.end is None else round(w.end + shift, 3)) for w in words]
        out.append(Line(text, copy, start, None, repeat, number))
    return out


def _find_block(blocks: List[Block], name: str, before: int) -> Optional[int]:
    """The latest block before ``before`` with lines, named ``name`` (or, failing that, of its section)."""
    key, section = " ".join(name.lower().split()), section_word(name)
    written = [i for i in range(min(before, len(blocks)) - 1, -1, -1) if blocks[i].lines]
    for i in written:
        if " ".join(blocks[i].name.lower().split()) == key:
            return i
    for i in written:
        if section and blocks[i].section == section:
            return i
    return None


def _close(blocks: List[Block]) -> None:
    """A bare heading (no lines under it) naming an earlier sung block is that block again."""
    if not blocks:
        return
    last = blocks[-1]
    if not last.lines and last.repeat_of is None and last.name and last.section not in WORDLESS_SECTIONS:
        last.repeat_of = _find_block(blocks, last.name, len(blocks) - 1)
    if last.lines and all(ln.start is not None for ln in last.lines):  # LRC: in time order
        last.lines.sort(key=lambda ln: (ln.start is None, ln.start or 0.0))


def _apply_mark(blocks: List[Block], times: int, number: int, raw: str, sheet: Sheet) -> None:
    """A repeat mark on a line of its own: the block it follows is sung ``times`` times."""
    target = next((b for b in reversed(blocks) if b.lines or b.repeat_of is not None), None)
    if target is None:
        sheet.dropped.append(Dropped(number, _clip(raw), "repeat_mark_without_block"))
        return
    target.times = max(target.times, times) if times > 1 else target.times + 1


def _read_line(raw: str, number: int, sheet: Sheet, state: dict) -> None:
    """One line of the sheet into ``sheet.blocks`` (or ``sheet.dropped``); ``state["open"]``: whether the
    last block still takes lines."""
    blocks = sheet.blocks
    if len(raw) > MAX_LINE_CHARS:
        sheet.dropped.append(Dropped(number, _clip(raw), "line_too_long"))
        return
    text, times, problem = _line_times(raw, sheet)
    if problem:
        if problem != "meta":
            sheet.dropped.append(Dropped(number, _clip(raw), problem))
        return
    sheet.timed = sheet.timed or bool(times)
    if not text:
        if times and blocks:  # an empty timed line ends the line sung before it
            before = [ln for ln in blocks[-1].lines if ln.start is not None and ln.start < times[0]]
            last = max(before, key=lambda ln: ln.start, default=None)
            if last is not None and last.end is None:
                last.end = times[0]
        elif not times and blocks and blocks[-1].lines:
            state["open"] = False  # a blank line ends a stanza
        return
    if fmt.is_credit_line(text) or fmt.is_credit_line(unwrap(text)[1]):
        sheet.dropped.append(Dropped(number, _clip(raw), "credit_line"))
        return
    kind, name, count, rest = classify(text)
    if kind == "mark":
        _apply_mark(blocks, count, number, raw, sheet)
        return
    if kind == "repeat_of":
        _close(blocks)
        target = _find_block(blocks, name, len(blocks))
        if target is None:
            sheet.dropped.append(Dropped(number, _clip(raw), "repeat_of_unknown_block"))
            return
        blocks.append(Block(text, blocks[target].section, [], count, target, number))
        state["open"] = False
        return
    if kind == "heading":
        _close(blocks)
        blocks.append(Block(name, section_word(name), [], count, None, number))
        state["open"] = True
        if not rest:
            return
        text = rest
    lines = _lyric_lines(text, times, number, sheet)
    if not lines:
        sheet.dropped.append(Dropped(number, _clip(raw), "no_words"))
        return
    if not blocks or not state["open"]:
        _close(blocks)
        blocks.append(Block(source_line=number))
        state["open"] = True
    blocks[-1].lines.extend(lines)


def parse_sheet(text: Optional[str], original_chars: int = 0) -> Sheet:
    """A lyric sheet (plain text or LRC, any line ends) -> :class:`Sheet`. Never raises on content:
    what cannot be read is in ``Sheet.dropped`` with its reason, and a cut in ``Sheet.truncated``
    (also when ``original_chars`` says the caller had cut a longer text: ``SourceInfo``'s
    ``reference_lyrics_chars`` for its ``reference_lyrics_raw``)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    sheet = Sheet()
    lines, sheet.truncated = _cap(str(text or "").lstrip("\ufeff"), int(original_chars or 0))
    if sheet.truncated:
        sheet.dropped.append(Dropped(0, f"{sheet.truncated.original_chars} characters, "
                                        f"{sheet.truncated.original_lines} lines", "truncated"))
    sheet.offset = _offset(lines, sheet)
    state = {"open": False}
    for number, raw in enumerate(lines, 1):
        _read_line(raw, number, sheet, state)
    _close(sheet.blocks)
    return sheet


def sheet_format(text: str) -> str:
    """"lrc" when some line of ``text`` starts with an LRC time tag, else "txt"."""
    return "lrc" if re.search(r"(?m)^\s*\[\d{1,4}:\d{1,2}", (text or "")[:MAX_LYRICS_CHARS]) else "txt"


def words(sheet: Sheet) -> List[SheetWord]:
    """Every written word in sheet order (repeats not expanded), with its block, line and word indices."""
    return [SheetWord(w.text, b, li, wi, w.start, w.end, b, 0)
            for b, block in enumerate(sheet.blocks) for li, line in enumerate(block.lines)
            for wi, w in enumerate(line.words)]


def expanded_words(sheet: Sheet) -> List[SheetWord]:
    """Words in the order the sheet says they are sung: each block ``times`` times, a ``repeat_of``
    block as the block it names, each line ``times`` times. Times (LRC) are kept only on a line's
    first singing; ``repeat`` counts earlier singings of the same written line."""
    out: List[SheetWord] = []
    sung: Counter = Counter()
    for b, block in enumerate(sheet.blocks):
        source = b if block.repeat_of is None else block.repeat_of
        for _ in range(max(1, block.times)):
            for li, line in enumerate(sheet.blocks[source].lines):
                for _ in range(max(1, line.times)):
                    k = sung[(source, li)]
                    sung[(source, li)] += 1
                    out.extend(SheetWord(w.text, b, li, wi, w.start if not k else None, w.end if not k else None,
                                         source, k) for wi, w in enumerate(line.words))
    return out


def plain_lines(sheet: Sheet) -> List[dict]:
    """Written lines in sheet order as ``{"time": start | None, "text": ...}`` (the decode stage's
    ``reference_lyrics_lines``)."""
    return [{"time": line.start, "text": line.text} for block in sheet.blocks for line in block.lines]


__all__ = ["Block", "Dropped", "Line", "LineWord", "MAX_LINE_CHARS", "MAX_REPEAT", "MAX_SHEET_CHARS",
           "MAX_SHEET_LINES", "SECTION_WORDS", "Sheet", "SheetWord", "Truncation", "classify", "expanded_words",
           "line_words", "parse_sheet", "parse_time", "plain_lines", "repeat_count", "section_word", "sheet_format",
           "words"]
