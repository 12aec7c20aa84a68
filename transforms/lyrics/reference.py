"""The lab's own lyrics in the lyrics stage: parsed, aligned to the vocal stem, checked, made into lines.

In: the song's reference text (``SourceInfo.reference_lyrics_raw``, from a sidecar, ``NAME.json``, an
embedded tag or ``--lyrics_table``), the 16 kHz vocal audio, its vocal regions and the ASR's words.
Out (:func:`reference_words`): the sheet's words placed in time (``transforms.lyrics.forced``), the
agreement between them and the audio (``transforms.lyrics.agreement``) with its decision, and, when
the reference is taken, the lines that ``gt_lyric`` is built from, every reference word in them.

What a sheet says of its structure is used too (:func:`reference_sections`): a span that holds
reference words is a lyric section (verse, or the sheet's own chorus / bridge heading), never an
intro, inst or outro; a block the sheet repeats is a chorus candidate.
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from transforms.core.sections import family as tag_kind
from transforms.core.sections import section_tag
from transforms.lyrics import forced
from transforms.lyrics import sheet as sh
from transforms.lyrics.format import is_char_language

Region = Tuple[float, float]
LYRIC_SECTIONS = ("verse", "chorus", "bridge")


def parse_reference(src) -> Optional[sh.Sheet]:
    """The song's reference sheet (``SourceInfo``), or None when it has none or no words survive."""
    if src is None:
        return None
    raw = getattr(src, "reference_lyrics_raw", "") or getattr(src, "reference_lyrics", "")
    if not raw:
        return None
    parsed = sh.parse_sheet(raw, int(getattr(src, "reference_lyrics_chars", 0) or 0))
    return parsed if sh.words(parsed) else None


def _written_blocks(written: Sequence[sh.SheetWord], sheet: sh.Sheet) -> List[forced.Block]:
    """Contiguous runs of the written words by block, labelled with the sheet's section word."""
    blocks: List[forced.Block] = []
    start = 0
    for i in range(1, len(written) + 1):
        if i == len(written) or written[i].block != written[start].block:
            block = sheet.blocks[written[start].block]
            blocks.append(forced.Block(block.section or block.name or "", start, i))
            start = i
    return blocks


def sung_orders(sheet: sh.Sheet) -> Tuple[List[sh.SheetWord], List[Tuple[str, List[int]]]]:
    """(the words as the sheet says they are sung, repeats expanded; candidate sung orders as index
    lists into them). First the sheet as written (each repeat mark sung once), then the repeats the
    sheet marks, then a chorus written once but sung again (``forced.repeat_orders``)."""
    expanded = sh.expanded_words(sheet)
    written = [i for i, w in enumerate(expanded) if w.repeat == 0 and w.block == w.source_block]
    orders: List[Tuple[str, List[int]]] = [("sheet", written)]
    if len(written) < len(expanded):
        orders.append(("sheet repeats", list(range(len(expanded)))))
    blocks = _written_blocks([expanded[i] for i in written], sheet)
    for name, order in forced.repeat_orders(blocks)[1:]:
        candidate = [written[j] for j in order]
        if all(candidate != o for _, o in orders):
            orders.append((name, candidate))
    return expanded, orders


def _line_starts(words: Sequence[sh.SheetWord]) -> List[Tuple[int, float]]:
    """(word index, time) of the first word of each timed (LRC) line."""
    starts, seen = [], set()
    for i, w in enumerate(words):
        key = (w.block, w.line, w.repeat)
        if key not in seen and w.start is not None:
            starts.append((i, float(w.start)))
        seen.add(key)
    return starts


def _fill_times(units: List[dict], duration: float) -> None:
    """Units the alignment did not place get a time between their placed neighbours (in place), so
    that every reference word lands in a section; ``placed`` stays False on them."""
    known = [i for i, u in enumerate(units) if u.get("start") is not None]
    if not known:
        for i, u in enumerate(units):
            u["start"] = u["end"] = round(duration * (i + 0.5) / max(1, len(units)), 3)
        return
    for i, u in enumerate(units):
        if u.get("start") is not None:
            continue
        before = max((k for k in known if k < i), default=None)
        after = min((k for k in known if k > i), default=None)
        t0 = float(units[before]["end"]) if before is not None else 0.0
        t1 = float(units[after]["start"]) if after is not None else max(t0, duration)
        lo, hi = (before if before is not None else -1), (after if after is not None else len(units))
        t = t0 + (t1 - t0) * (i - lo) / float(hi - lo)
        u["start"] = u["end"] = round(t, 3)


def reference_lines(units: Sequence[dict], words: Sequence[sh.SheetWord], language: str) -> List[dict]:
    """The aligned units grouped into sung lines ``{"start", "end", "text", "block", "words"}`` in sung
    order: a new line where the sheet's line (or its singing) changes."""
    sep = "" if is_char_language(language) else " "
    lines: List[dict] = []
    key = None
    for u in units:
        w = words[int(u["word"])]
        k = (w.block, w.line, w.repeat, w.source_block)
        if k != key or not lines:
            lines.append({"block": w.block, "words": []})
            key = k
        elif lines[-1]["words"] and lines[-1]["words"][-1]["word"] == u["word"]:
            lines[-1]["words"][-1]["text"] += u["text"]  # a word split into units (characters): one text
            continue
        lines[-1]["words"].append({"text": u["text"], "start": float(u["start"]), "end": float(u["end"]),
                                   "probability": float(u.get("probability") or 0.0),
                                   "placed": bool(u.get("placed")), "word": u["word"]})
    for ln in lines:
        ln["start"], ln["end"] = ln["words"][0]["start"], ln["words"][-1]["end"]
        ln["text"] = sep.join(w["text"] for w in ln["words"])
    return lines


def reference_sections(sections: Sequence[dict], lines: Sequence[dict], sheet: sh.Sheet) -> List[dict]:
    """Sections re-tagged for the reference: one holding reference words becomes a lyric section,
    named by the sheet where its heading says verse / chorus / bridge (the most words win, words it
    names nothing included), a block
    the sheet repeats or a line it writes out more than once counting as chorus; a lyric section left
    without words is left to ``build_gt_lyric``'s own rules."""
    repeated = {b.repeat_of for b in sheet.blocks if b.repeat_of is not None}
    repeated |= {k for k, b in enumerate(sheet.blocks) if b.times > 1}
    written = Counter(_key(line.text) for b in sheet.blocks for line in b.lines)
    votes: List[Counter] = [Counter() for _ in sections]
    for ln in lines:
        block = sheet.blocks[ln["block"]] if ln["block"] < len(sheet.blocks) else None
        name = block.section if block is not None else ""
        if name not in LYRIC_SECTIONS and (ln["block"] in repeated or written[_key(ln["text"])] > 1):
            name = "chorus"  # a block the sheet repeats, or a line it writes out more than once
        for w in ln["words"]:
            mid = 0.5 * (w["start"] + w["end"])
            k = _section_at(sections, mid)
            if k is not None:
                votes[k][name if name in LYRIC_SECTIONS else ""] += 1
    out = []
    for sec, vote in zip(sections, votes):
        sec = dict(sec)
        if vote:  # most words win; words the sheet names nothing keep a lyric tag, or make a verse
            top = vote.most_common(1)[0][0]
            current = tag_kind(section_tag(sec))
            sec["tag"] = top or (current if current in LYRIC_SECTIONS else "verse")
        out.append(sec)
    return out


def _key(text: str) -> str:
    return " ".join(str(text).lower().split())


def _section_at(sections: Sequence[dict], t: float) -> Optional[int]:
    for k, sec in enumerate(sections):
        if float(sec["start"]) <= t < float(sec["end"]):
            return k
    return len(sections) - 1 if sections and t >= float(sections[-1]["end"]) else (0 if sections else None)


def reference_words(backend, audio: np.ndarray, sheet: sh.Sheet, language: str, regions: Sequence[Region],
                    asr_words: Sequence[dict], duration: float) -> Dict:
    """Align ``sheet`` on the vocal ``audio`` and judge it. Returns ``{"decision", "agreement", "order",
    "orders", "anchors", "lines", "words", "coverage"}``: ``lines`` / ``words`` the sung reference with
    times (every reference word; ``placed`` says which the alignment placed itself), ``coverage`` the
    share of the reference's words placed with confidence."""
    words, orders = sung_orders(sheet)
    result = forced.align_reference(backend, audio, [w.text for w in words], language, regions,
                                    asr_words=asr_words, line_starts=_line_starts(words), orders=orders)
    units = [dict(u) for u in result["words"]]
    confident = sum(bool(u.get("confident")) for u in units)
    _fill_times(units, duration)
    lines = reference_lines(units, words, language)
    return {"decision": result["agreement"]["decision"], "agreement": result["agreement"],
            "order": result["order"], "orders": result["orders"], "anchors": result["anchors"],
            "lines": lines, "words": [w for ln in lines for w in ln["words"]],
            "coverage": round(confident / len(units), 4) if units else 0.0}


def alignment_label(aligned: Dict, sheet: sh.Sheet, replaced_asr_lines: Optional[Sequence[dict]]) -> Dict:
    """The keys :func:`reference_words`' result adds to ``labels.lyrics``: ``agreement``,
    ``reference_alignment`` (per-word and per-line times, the order sung, the orders tried, what the
    sheet parser dropped and why) and, when the reference replaced the ASR's lines, ``asr_text``."""
    def r(x: float) -> float:
        return round(float(x), 3)

    out: Dict = {
        "agreement": {**aligned["agreement"], "coverage_confident": aligned["coverage"]},
        "reference_alignment": {
            "order": aligned["order"], "orders": aligned["orders"], "anchors": aligned["anchors"],
            "words": [{"text": w["text"], "start": r(w["start"]), "end": r(w["end"]),
                       "probability": round(w["probability"], 4), "placed": w["placed"]} for w in aligned["words"]],
            "lines": [{"start": r(ln["start"]), "end": r(ln["end"]), "text": ln["text"]} for ln in aligned["lines"]],
            "dropped": [{"line": d.line, "text": d.text, "reason": d.reason} for d in sheet.dropped]}}
    if replaced_asr_lines is not None:
        out["asr_text"] = " ".join(ln["text"] for ln in replaced_asr_lines)
    return out
