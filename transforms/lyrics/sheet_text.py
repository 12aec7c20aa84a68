"""One line of a lyric sheet: headings and their section words, repeat marks, LRC times, words.

Pure functions used by :mod:`transforms.lyrics.sheet`. A heading's name maps to one of
songshard's section words (:data:`SECTION_WORDS`) through the analysers' synonyms
(``core.sections.LABEL_FAMILY``, one definition) plus the names only sheets use
(:data:`SHEET_NAMES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from transforms.core.sections import LABEL_FAMILY
from transforms.lyrics import format as fmt

MAX_REPEAT = 16  # "(x99)" is read as 16

SECTION_WORDS = ("verse", "chorus", "bridge", "intro", "outro", "inst")
WORDLESS_SECTIONS = ("intro", "outro", "inst")
# heading names a lyric sheet uses beyond the analysers' synonyms (core.sections.LABEL_FAMILY)
SHEET_NAMES = {"post-chorus": "chorus", "postchorus": "chorus", "pre chorus": "verse", "post chorus": "chorus",
               "middle": "bridge", "middle eight": "bridge", "rap": "verse", "breakdown": "inst",
               "guitar solo": "inst", "instrumental break": "inst", "ending": "outro", "end": "outro",
               "final chorus": "chorus", "spoken": "verse", "spoken word": "verse", "verso": "verse",
               "coro": "chorus", "ritornello": "chorus", "refrain": "chorus"}

_REPEAT_MARK = re.compile(r"(?:(?:repeat|rpt\.?)\s*)?(?:[x×]\s*(\d{1,3})|(\d{1,3})\s*(?:[x×]|times))"
                          r"|(?:repeat|rpt\.?)|twice", re.I)
_HEAD_WORDS = (r"pre[- ]?chorus|post[- ]?chorus|verse|chorus|refrain|hook|bridge|intro|outro|interlude|"
               r"instrumental|solo|breakdown|coda|middle 8|rap|spoken|final chorus")
_HEADING = re.compile(rf"(?P<name>(?:{_HEAD_WORDS})(?:\s+(?:\d{{1,2}}|[ivx]{{1,4}}|one|two|three|four))?)"
                      r"(?P<times>\s*[x×]\s*\d{1,3}|\s+\d{1,3}\s*[x×])?\s*(?::\s*(?P<rest>.*))?", re.I)
_REPEAT_OF = re.compile(r"(?:repeat|rpt\.?)\s+(?:the\s+)?(?P<a>.+)|(?P<b>.+?)\s*[(\[]?\s*(?:repeat|rpt\.?)\s*[)\]]?",
                        re.I)
_TRAILING_TIMES = re.compile(r"\s*[(\[]?\s*([x×]\s*\d{1,3}|\d{1,3}\s*[x×]|\d{1,3} times|twice)\s*[)\]]?\s*$", re.I)
_WRAP = {"[": "]", "(": ")", "{": "}", "*": "*"}
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_OUTER_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")
_TIME = re.compile(r"(\d{1,4}):(\d{1,2})(?:[.:](\d{1,3}))?")


def section_word(name: str) -> str:
    """A heading's name (``"Verse 2: Jay"``, ``"PRE-CHORUS"``) -> one of :data:`SECTION_WORDS`, or ""."""
    key = re.split(r"[:(]| - | – ", name.lower(), maxsplit=1)[0]
    key = _TRAILING_TIMES.sub("", key)
    key = re.sub(r"\s+(?:\d+|[ivx]{1,4}|one|two|three|four)$|\d+$", "", key.replace("–", "-")).strip(" -#.*")
    key = " ".join(key.split())
    for candidate in (key, key.split(" ")[0] if key else "", key.split(" ")[-1] if key else ""):
        family = SHEET_NAMES.get(candidate) or LABEL_FAMILY.get(candidate, "")
        if family in SECTION_WORDS:
            return family
    return ""


def repeat_count(text: str) -> Optional[int]:
    """``"x2"``, ``"2x"``, ``"×3"``, ``"repeat"`` (2), ``"repeat x3"``, ``"twice"`` -> the count; else None."""
    m = _REPEAT_MARK.fullmatch(text.strip())
    if not m:
        return None
    return max(1, min(int(m.group(1) or m.group(2) or 2), MAX_REPEAT))



def unwrap(text: str) -> Tuple[str, str]:
    """(wrapper, inner) for ``[x]``, ``(x)``, ``{x}``, ``*x*`` (a trailing ':' allowed); ("", text) else."""
    body = text.rstrip(":").strip()
    if len(body) > 2 and body[0] in _WRAP and body[-1] == _WRAP[body[0]]:
        return body[0], body[1:-1].strip()
    return "", text


def classify(text: str) -> Tuple[str, str, int, str]:
    """(kind, name, times, rest) of a line without times: kind is "mark" (a repeat mark alone),
    "repeat_of" (``Repeat chorus``), "heading" (``rest``: lyrics on the same line) or "lyric"."""
    wrap, inner = unwrap(text)
    if not inner:
        return "lyric", "", 1, text
    count = repeat_count(inner)
    if count:
        return "mark", "", count, ""
    m = _REPEAT_OF.fullmatch(inner)
    if m:
        name = (m.group("a") or m.group("b") or "").strip(" :")
        times = _TRAILING_TIMES.search(name)
        base = name[:times.start()].strip() if times else name
        if base and (section_word(base) or _HEADING.fullmatch(base)):
            return "repeat_of", base, (repeat_count(times.group(1)) or 1) if times else 1, ""
    m = _HEADING.fullmatch(inner)
    if m and not (m.group("rest") and wrap):
        times = repeat_count(m.group("times")) if m.group("times") else 1
        return "heading", m.group("name").strip(), times or 1, (m.group("rest") or "").strip()
    if wrap == "[":  # any other [name] is a heading (the Genius convention): [Chorus: Name], [Part II]
        times = _TRAILING_TIMES.search(inner)
        name = inner[:times.start()].strip() if times and inner[:times.start()].strip() else inner
        return "heading", name, (repeat_count(times.group(1)) or 1) if times and name != inner else 1, ""
    return "lyric", "", 1, text


@dataclass
class LineWord:
    """A word of a line: its text and, for enhanced LRC, its start (and end, when the next stamp says it)."""

    text: str
    start: Optional[float] = None
    end: Optional[float] = None


def parse_time(text: str) -> Optional[float]:
    """``"mm:ss"``, ``"mm:ss.xx"``, ``"mm:ss:xx"`` -> seconds; None for anything else (never raises)."""
    m = _TIME.fullmatch(text.strip())
    if not m or int(m.group(2)) >= 60:
        return None
    return int(m.group(1)) * 60 + int(m.group(2)) + (float("0." + m.group(3)) if m.group(3) else 0.0)


def is_time(inner: str) -> bool:
    """A bracket's content meant as a time (so a bad one is a bad time, not a heading)."""
    inner = inner.strip()
    return ":" in inner and bool(inner[:1]) and (inner[0].isdigit() or inner[0] in "+-.")


def clean_chunk(chunk: str) -> str:
    """``to_ascii_punctuation`` of a piece of a line, keeping whether it began or ended with a space."""
    inner = fmt.to_ascii_punctuation(chunk)
    if not inner:
        return " " if chunk[:1].isspace() else ""
    return (" " if chunk[:1].isspace() else "") + inner + (" " if chunk[-1:].isspace() else "")


def line_words(text: str, stamps: Sequence[Tuple[int, float]] = ()) -> List[LineWord]:
    """Words of a clean line; a stamp at or just before a word's first character is its start, and a
    stamp after it (before the next word) its end."""
    spans = []
    for m in _WORD.finditer(text):
        word = _OUTER_PUNCT.sub("", m.group(0))
        if word:
            spans.append((m.start() + m.group(0).index(word), word))
    words = []
    for k, (pos, word) in enumerate(spans):
        prev_end = spans[k - 1][0] + len(spans[k - 1][1]) if k else 0
        end_pos, next_pos = pos + len(word), spans[k + 1][0] if k + 1 < len(spans) else len(text) + 1
        start = [t for p, t in stamps if prev_end <= p <= pos]
        end = [t for p, t in stamps if end_pos <= p <= next_pos or (k + 1 == len(spans) and p >= end_pos)]
        words.append(LineWord(word, start[-1] if start else None, end[0] if end else None))
    return words
