"""Pure lyric formatting: the training side's ``gt_lyric`` line, its timed variant, chunks.

Inputs are plain dicts: words ``{"start", "end", "text", "probability"}`` (seconds)
and lines ``{"start", "end", "text", "words": [word, ...]}``; sections
``{"start", "end", "label", "tag"}`` as the structure stage writes them. Nothing
here touches audio, models or Beam.

The rules follow the reference training data (see FORMATS.md):

* ``gt_lyric`` is one line; sections are joined by `` ; ``; a section reads
  ``[tag] sentence. sentence.``; intro / outro / inst / silence sections carry
  no words; text is lower-case with ASCII punctuation only. English sentences
  end with ``.``; Chinese (and other languages written without spaces)
  sentences are joined by ``.`` with no trailing ``.``.
* the timed variant writes ``[tag][start:end]text`` per section.
* chunks are cut once they pass 30 s and never run over 40 s; English chunks
  hold 20-200 words, Chinese chunks 30-200 characters.
* credit lines (lyricist / composer / arranger / mixing / mastering /
  copyright, or holding a full-width colon) are dropped; short ``name:``
  speaker prefixes are stripped; runaway repetition is cut back.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from transforms.core import shape_rules  # one definition of the section-line rules
from transforms.core.facts import FRAME_RATE
from transforms.core.sections import LYRIC_FAMILIES as LYRIC_TAGS  # noqa: F401 - re-exported
from transforms.core.sections import WORDLESS as NO_WORD_KINDS
from transforms.core.sections import bucket, section_tag
from transforms.core.sections import family as tag_kind

CHAR_LANGUAGES = ("zh", "yue", "ja")  # written without spaces: count characters, no trailing "."

_ASCII_PUNCT = str.maketrans({
    "，": ",", "、": ",", "。": ".", "．": ".", "！": "!", "？": "?", "：": ":", "；": ";",
    "“": '"', "”": '"', "„": '"', "「": '"', "」": '"', "『": '"', "』": '"', "‘": "'",
    "’": "'", "‚": "'", "`": "'", "´": "'", "（": "(", "）": ")", "【": "(", "】": ")",
    "《": '"', "》": '"', "—": "-", "–": "-", "‐": "-", "～": "-", "~": "-", "…": ".",
    "\u3000": " ", "\u00a0": " ",
})
_SENTENCE_END = re.compile(r"[.!?]+")
# what may stay inside a sentence: letters, digits, apostrophes, commas, hyphens, spaces
_NOT_KEPT = re.compile(r"[^\w\s',\-]|_")
_SPACES = re.compile(r"\s+")

_CREDIT_WORDS = (
    r"lyrics?|lyricist|words|written|writer|music|composer|composed|composition|arranger|arranged|"
    r"arrangement|producer|produced|production|executive producer|mix(?:ing|ed)?(?: engineer)?|"
    r"master(?:ing|ed)?(?: engineer)?|recording|recorded|engineer(?:ed)?|vocal producer|"
    r"publisher|published|label|distributed|translation|translated|cover art|artwork|"
    r"subtitles?|captions?|transcri(?:bed|ption)"
)
_CREDIT_EN = re.compile(
    rf"^\s*(?:{_CREDIT_WORDS})(?:\s*(?:&|and|/|,)\s*(?:{_CREDIT_WORDS}))*\s*(?:\bby\b|:)", re.IGNORECASE)
_COPYRIGHT = re.compile(r"©|\(c\)\s*\d{4}|\bcopyright\b|\ball rights reserved\b|\bⓟ|℗", re.IGNORECASE)
_CREDIT_ZH = re.compile(r"(作词|作詞|作曲|编曲|編曲|混音|母带|母帶|制作人|製作人|监制|監製|录音|錄音|"
                        r"和声|和聲|出品|发行|發行|策划|企划|版权|版權|词曲|詞曲|演唱|原唱|翻唱)")
_SPEAKER = re.compile(r"^\s*([^\s:]{1,20}(?:\s[^\s:]{1,20})?)\s*:\s*(?=\S)")


def is_char_language(language: str) -> bool:
    return (language or "").split("-")[0].lower() in CHAR_LANGUAGES


def to_ascii_punctuation(text: str) -> str:
    """Full-width and typographic punctuation -> ASCII; NFKC-normalised; one space between words."""
    text = unicodedata.normalize("NFKC", text or "").translate(_ASCII_PUNCT)
    return _SPACES.sub(" ", text).strip()


def is_credit_line(text: str) -> bool:
    """True for credit / copyright lines: ``Lyrics by ...``, ``作词：...``, ``(c) 2021 ...``.

    Any line with a full-width colon is a credit line (the reference drops them all).
    """
    if "：" in (text or ""):
        return True
    plain = unicodedata.normalize("NFKC", text or "")
    return bool(_CREDIT_EN.match(plain) or _COPYRIGHT.search(plain) or _CREDIT_ZH.search(plain))


def strip_speaker_prefix(text: str) -> str:
    """``"John: hello there"`` -> ``"hello there"``; lines without a short ``name:`` prefix unchanged."""
    match = _SPEAKER.match(text or "")
    return text[match.end():] if match else text


def speaker_prefix_length(words: Sequence[str]) -> int:
    """How many leading words form a short ``name:`` speaker prefix (0, 1 or 2)."""
    for n in (1, 2):
        if len(words) > n and str(words[n - 1]).endswith(":"):
            head = " ".join(str(w).strip() for w in words[:n])
            if _SPEAKER.match(head + " x") and len(head) <= 21:
                return n
    return 0


def normalize_key(text: str) -> str:
    """Comparison key of a line: lower-case letters and digits only."""
    text = to_ascii_punctuation(text).lower()
    return _SPACES.sub(" ", re.sub(r"[^\w\s]|_", " ", text)).strip()


def clean_sentence(text: str) -> str:
    """One sentence for gt_lyric: lower-case, ASCII, no sentence or section punctuation."""
    text = _NOT_KEPT.sub(" ", to_ascii_punctuation(text).lower())
    text = _SPACES.sub(" ", text).strip(" ,-'")
    return text


def split_sentences(text: str) -> List[str]:
    """Cleaned sentences of ``text`` split at ``. ! ?`` (full-width ones included)."""
    parts = _SENTENCE_END.split(to_ascii_punctuation(text))
    return [s for s in (clean_sentence(p) for p in parts) if s]


def collapse_repeats(tokens: Sequence[str], max_repeats: int = 4, max_n: int = 4) -> List[int]:
    """Indices of ``tokens`` to keep when an n-gram (n <= max_n) loops more than ``max_repeats`` times.

    ``la la la la la la la`` keeps four ``la``; ``hold on hold on`` is untouched.
    Tokens are compared by :func:`normalize_key`.
    """
    keys = [normalize_key(t) for t in tokens]
    keep = [True] * len(keys)
    i = 0
    while i < len(keys):
        advanced = False
        for n in range(1, max_n + 1):
            unit = keys[i:i + n]
            if len(unit) < n or not any(unit):
                continue
            reps = 1
            while keys[i + reps * n:i + (reps + 1) * n] == unit:
                reps += 1
            if reps > max_repeats:
                for j in range(i + max_repeats * n, i + reps * n):
                    keep[j] = False
                i += reps * n
                advanced = True
                break
        if not advanced:
            i += 1
    return [k for k, ok in enumerate(keep) if ok]


def repeated_line_flags(texts: Sequence[str], max_consecutive: int = 3) -> List[bool]:
    """True for each line that repeats the previous one beyond ``max_consecutive`` in a row."""
    flags, run, prev = [], 0, None
    for text in texts:
        key = normalize_key(text)
        run = run + 1 if key and key == prev else 1
        prev = key
        flags.append(run > max_consecutive)
    return flags


def clean_reference_lines(lines: Iterable[str]) -> List[str]:
    """Reference lyric lines with credit lines dropped and speaker prefixes stripped."""
    out = []
    for line in lines:
        line = (line or "").strip()
        if not line or is_credit_line(line):
            continue
        line = strip_speaker_prefix(line).strip()
        if line and not re.fullmatch(r"\[[^\]]*\]", line):  # bare [Chorus] markers are not lyrics
            out.append(line)
    return out


# ---- sections ---------------------------------------------------------------------------

def section_index(sections: Sequence[dict], t: float) -> int:
    """Index of the section holding time ``t`` (nearest one when ``t`` falls in no section)."""
    best, best_d = 0, float("inf")
    for k, sec in enumerate(sections):
        start, end = float(sec["start"]), float(sec["end"])
        if start <= t < end:
            return k
        d = min(abs(t - start), abs(t - end))
        if d < best_d:
            best, best_d = k, d
    return best


def _join_words(words: Sequence[dict], language: str) -> str:
    sep = "" if is_char_language(language) else " "
    return sep.join(str(w["text"]).strip() for w in words).strip()


def _join_sentences(sentences: Sequence[str], language: str) -> str:
    if not sentences:
        return ""
    if is_char_language(language):
        return ".".join(sentences)
    return ". ".join(sentences) + "."


LINE_KEEP_SHARE = 0.75  # a line with this share of its words in one section stays whole there


def build_gt_lyric(sections: Sequence[dict], lines: Sequence[dict], language: str,
                   opens: bool = True, closes: bool = True) -> Dict[str, object]:
    """``{"gt_lyric", "gt_lyric_timed", "sections", "dropped_words"}`` from sections and lines.

    Each word goes to the section holding its midpoint, except that a line with at
    least ``LINE_KEEP_SHARE`` of its words in one section stays whole there. A line
    that crosses a section boundary otherwise is split there; sentence breaks are line ends and ``. ! ?`` in the text.
    A lyric-tag section (verse / chorus / bridge) that gets no words becomes intro,
    outro or inst by position; words that fall in intro / outro / inst / silence
    sections are left out of the line and counted in ``dropped_words``.
    """
    if not sections:
        return {"gt_lyric": "", "gt_lyric_timed": "", "sections": [], "dropped_words": 0}
    per_section: List[List[str]] = [[] for _ in sections]
    counts = [0] * len(sections)
    for line in lines:
        groups: Dict[int, List[dict]] = {}
        for w in line.get("words", []):
            mid = 0.5 * (float(w["start"]) + float(w["end"]))
            groups.setdefault(section_index(sections, mid), []).append(w)
        total = sum(len(ws) for ws in groups.values())
        main = max(groups, key=lambda k: len(groups[k])) if groups else None
        if main is not None and len(groups) > 1 and len(groups[main]) >= LINE_KEEP_SHARE * total:
            # a boundary a word or two off the line's own break: keep the line whole
            groups = {main: [w for k in sorted(groups) for w in groups[k]]}
        for k, words in sorted(groups.items()):
            sentences = split_sentences(_join_words(words, language))
            per_section[k].extend(sentences)
            counts[k] += len(words)
    has_words = [bool(s) for s in per_section]
    placed, dropped = [], 0
    for k, sec in enumerate(sections):
        tag = section_tag(sec)
        kind = tag_kind(tag)
        start, end = float(sec["start"]), float(sec["end"])
        if kind in NO_WORD_KINDS:
            dropped += counts[k]
            sentences: List[str] = []
        else:
            sentences = per_section[k]
            if not sentences:
                if not any(has_words):  # nobody sings: intro, instrumental body, outro
                    kind = "intro" if k == 0 else ("outro" if k == len(sections) - 1 else "inst")
                else:
                    kind = ("intro" if not any(has_words[:k]) else
                            "outro" if not any(has_words[k + 1:]) else "inst")
                tag = f"{kind}-{bucket(end - start)}"
        placed.append({"start": round(start, 3), "end": round(end, 3), "tag": tag, "label": sec.get("label", ""),
                       "num_words": 0 if kind in NO_WORD_KINDS or not sentences else counts[k],
                       "text": _join_sentences(sentences, language)})
    # retagged sections may leave intro / inst runs: the same rules as the structure stage's
    placed = shape_rules.settle_tags(placed, opens, closes)
    plain = [f"[{p['tag']}] {p['text']}" if p["text"] else f"[{p['tag']}]" for p in placed]
    timed = [f"[{p['tag']}][{p['start']:.2f}:{p['end']:.2f}]{p['text']}" for p in placed]
    out_sections = [{k: p[k] for k in ("start", "end", "tag", "label", "num_words")} for p in placed]
    return {"gt_lyric": " ; ".join(plain), "gt_lyric_timed": " ; ".join(timed),
            "sections": out_sections, "dropped_words": dropped}


def chunk_gt_lyric(chunk: dict, sections: Sequence[dict], lines: Sequence[dict], language: str) -> Dict[str, object]:
    """build_gt_lyric for one chunk: its sections and lines, times relative to the chunk's start."""
    start, end = float(chunk["start"]), float(chunk["end"])
    window = shape_rules.window_sections(sections, start, end)
    inside = [{**ln, "start": float(ln["start"]) - start, "end": float(ln["end"]) - start,
               "words": [{**w, "start": float(w["start"]) - start, "end": float(w["end"]) - start}
                         for w in ln.get("words", [])]}
              for ln in lines if float(ln["start"]) >= start - 1e-3 and float(ln["end"]) <= end + 1e-3]
    families = [shape_rules.canonical_label(s.get("tag") or s.get("label", "")) for s in window]
    return build_gt_lyric(window, inside, language, opens=bool(families) and families[0] == "intro",
                          closes=bool(families) and families[-1] == "outro")


# ---- chunks -----------------------------------------------------------------------------

def count_units(text: str, language: str) -> int:
    """Words (space-separated languages) or characters (Chinese, Japanese) of ``text``."""
    if is_char_language(language):
        return sum(1 for ch in text if ch.isalnum())
    return len(text.split())


def chunk_lines(lines: Sequence[dict], language: str, cut_after: float = 30.0, max_len: float = 40.0,
                min_units: Optional[int] = None, max_units: int = 200) -> Tuple[List[dict], int]:
    """(chunks, rejected count): consecutive lines cut once past ``cut_after`` s, never over ``max_len`` s.

    A chunk is kept when it holds ``min_units``-``max_units`` words (default 20 for
    space-separated languages, 30 characters for Chinese / Japanese) and spans at
    most ``max_len``. Each chunk records its codec frame span at 25 Hz.
    """
    if min_units is None:
        min_units = 30 if is_char_language(language) else 20
    groups: List[List[dict]] = []
    current: List[dict] = []
    for line in lines:
        if current and float(line["end"]) - float(current[0]["start"]) > max_len:
            groups.append(current)
            current = []
        current.append(line)
        if float(current[-1]["end"]) - float(current[0]["start"]) > cut_after:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    chunks, rejected = [], 0
    for group in groups:
        start, end = float(group[0]["start"]), float(group[-1]["end"])
        sentences = [s for line in group for s in split_sentences(line["text"])]
        text = _join_sentences(sentences, language)
        units = count_units(text, language)
        if end - start > max_len or not (min_units <= units <= max_units):
            rejected += 1
            continue
        chunks.append({"start": round(start, 3), "end": round(end, 3),
                       "frame_start": int(round(start * FRAME_RATE)),
                       "frame_end": int(round(end * FRAME_RATE)),
                       "text": text, "num_units": units})
    return chunks, rejected
