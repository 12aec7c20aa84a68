"""Shape rules on section lines: what a training-tag sequence or gt_lyric line must obey.

* ``check_shape`` / ``lyric_problems`` / ``shape_ok``: in, training tags (``["intro-short",
  "verse", ...]``, brackets allowed) or a gt_lyric line, plain (``[tag] words ; [tag] ...``) or
  timed (``[verse][12.40:31.05]words ; ...``); out, the broken rules as ``"rule: detail"``
  strings, or a bool. For tests and evaluation.
* ``position_labels`` (intro first, outro last), ``settle_tags`` and ``window_sections``: the same
  rules applied to label lists and to tagged sections once lyrics are placed or a chunk is cut.

The shaping of an analyser's sections is ``transforms.core.shape``, which re-exports these.
"""

from __future__ import annotations

import re
from typing import List, Sequence

from transforms.core import sections as sec
from transforms.core.sections import WORDLESS  # intro, outro, inst, silence: one definition

LYRIC = ("verse", "chorus", "bridge")  # the sung tags: the training tags that are not WORDLESS
MAX_SECTIONS = 14  # hard cap on sections a song
_BUCKETS = ("short", "medium", "long")
_PART = re.compile(r"^\[([^\[\]]+)\](?:\[\s*(-?\d+(?:\.\d*)?)\s*:\s*(-?\d+(?:\.\d*)?)\s*\])?\s*(.*)$")


def canonical_label(label: str) -> str:
    """An analyser label or training tag -> its family (intro ... silence); unknown labels -> inst."""
    text = str(label or "").strip("[] ").lower()
    head, _, tail = text.rpartition("-")
    if tail in _BUCKETS and head:
        text = head
    return sec.LABEL_FAMILY.get(text, "inst")


def position_labels(labels: Sequence[str], opens: bool = True, closes: bool = True) -> List[str]:
    """Label families (intro ... silence) relabelled so that intro opens and outro closes the song.

    With sung sections: wordless sections before the first sung one all become intro (a silence
    between them too; a leading silence stays), those after the last one outro, and intro / outro
    between sung sections inst. Without sung sections: an intro survives only in the unbroken run
    of intros the song opens with (after a leading silence), an outro only in the closing run, the
    rest is inst; a lone non-silence section is inst. ``opens`` / ``closes`` False: the labels are
    a window that does not reach the song's start / end, so it holds no intro / outro (they become
    inst). Same length out as in.
    """
    out = list(labels)
    sung = [i for i, lab in enumerate(out) if lab in LYRIC]
    body = [i for i, lab in enumerate(out) if lab != "silence"]
    if sung:
        for i, lab in enumerate(out):
            if lab in LYRIC:
                continue
            region = ("intro" if opens else "inst") if i < sung[0] else (
                ("outro" if closes else "inst") if i > sung[-1] else "inst")
            if lab == "silence" and (region == "inst" or not body[0] < i < body[-1]):
                continue  # pauses between sung sections and silences at the edges stay
            out[i] = region
        return out
    if len(body) == 1:
        out[body[0]] = "inst"
    for run_kind, order, allowed in (("intro", body, opens), ("outro", body[::-1], closes)):
        opening = allowed
        for step, i in enumerate(order):
            contiguous = step == 0 or abs(order[step - 1] - i) == 1
            opening = opening and contiguous and out[i] == run_kind
            if out[i] == run_kind and not opening:
                out[i] = "inst"
    return out


def tag_family(tag: str) -> str:
    """``"[intro-short]"`` -> ``"intro"``; ``"verse"`` -> ``"verse"`` (no mapping of unknown tags)."""
    return str(tag or "").strip("[] ").lower().split("-")[0]


def check_shape(tags: Sequence[str], max_sections: int = MAX_SECTIONS) -> List[str]:
    """The shape rules a training-tag sequence breaks, as ``"rule: detail"`` strings ([] = fine).

    Rules: ``no sections``, ``unknown tag``, ``repeated intro``, ``intro not first``, ``repeated
    outro``, ``outro not last`` (leading / trailing silence aside), ``adjacent same kind`` (two
    neighbours of one wordless family), ``too many sections`` (over ``max_sections``).
    Tags may carry brackets (``[verse]``).
    """
    if not tags:
        return ["no sections: empty tag sequence"]
    plain = [str(t).strip("[] ").lower() for t in tags]
    kinds = [tag_family(t) for t in plain]
    problems = []
    unknown = [t for t in plain if t not in sec.TRAINING_TAGS]
    if unknown:
        problems.append(f"unknown tag: {', '.join(unknown)}")
    body = [i for i, k in enumerate(kinds) if k != "silence"] or [0]
    for kind, edge, where in (("intro", body[0], "first"), ("outro", body[-1], "last")):
        at = [i for i, k in enumerate(kinds) if k == kind]
        if len(at) > 1:
            problems.append(f"repeated {kind}: {len(at)} {kind} sections")
        if any(i != edge for i in at):
            problems.append(f"{kind} not {where}: {kind} at {[i for i in at if i != edge]}")
    pairs = [i for i in range(len(kinds) - 1) if kinds[i] == kinds[i + 1] and kinds[i] in WORDLESS]
    if pairs:
        problems.append("adjacent same kind: " + ", ".join(f"{kinds[i]} at {i}-{i + 1}" for i in pairs))
    if len(tags) > max_sections:
        problems.append(f"too many sections: {len(tags)} > {max_sections}")
    return problems


def parse_gt_lyric(line: str) -> List[dict]:
    """``[tag] words ; [tag][12.40:31.05]words ; ...`` -> ``[{"tag", "start", "end", "text"}]``.

    ``start`` / ``end`` are None in the plain form. Raises ValueError on a part that is not
    ``[tag]`` followed by an optional ``[start:end]`` and words.
    """
    out = []
    for part in (p.strip() for p in str(line or "").split(";")):
        if not part:
            continue
        m = _PART.match(part)
        if not m:
            raise ValueError(f"not a gt_lyric section: {part!r}")
        tag, start, end, text = m.groups()
        out.append({"tag": tag.strip().lower(), "start": None if start is None else float(start),
                    "end": None if end is None else float(end), "text": text.strip()})
    return out


def lyric_problems(line: str, max_sections: int = MAX_SECTIONS) -> List[str]:
    """Everything :func:`check_shape` reports for a gt_lyric line (plain or timed), and more.

    Also: ``unparsable``, ``words in wordless section`` (intro / outro / inst / silence with
    text), ``empty sung section``, ``timing`` (timed parts out of order, overlapping, with gaps
    over 50 ms, or mixed with untimed ones).
    """
    try:
        parts = parse_gt_lyric(line)
    except ValueError as err:
        return [f"unparsable: {err}"]
    problems = check_shape([p["tag"] for p in parts], max_sections)
    for i, p in enumerate(parts):
        wordless = tag_family(p["tag"]) in WORDLESS
        if wordless and p["text"]:
            problems.append(f"words in wordless section: [{p['tag']}] at {i}")
        if not wordless and not p["text"]:
            problems.append(f"empty sung section: [{p['tag']}] at {i}")
    timed = [p["start"] is not None for p in parts]
    if any(timed) and not all(timed):
        problems.append("timing: timed and untimed sections mixed")
    elif any(timed):
        for i, p in enumerate(parts):
            if p["end"] <= p["start"] or (i and abs(p["start"] - parts[i - 1]["end"]) > 0.05):
                problems.append(f"timing: section {i} [{p['start']}:{p['end']}] does not follow on")
    return problems


def shape_ok(gt_lyric: str) -> bool:
    """True when a gt_lyric line (plain or timed) breaks none of :func:`lyric_problems`' rules."""
    return not lyric_problems(gt_lyric)


# ---- tagged sections (after lyrics are placed) --------------------------------------------------

def settle_tags(sections: Sequence[dict], opens: bool = True, closes: bool = True) -> List[dict]:
    """Tagged sections ``{"start", "end", "tag", ...}`` with the position and run rules re-applied.

    For lines whose sung sections lost their words: wordless runs are merged (``num_words``
    summed, the first one's other keys kept) and re-bucketed by their new length; sung sections
    pass unchanged. Times must tile (as ``build_gt_lyric`` receives them). ``opens`` /
    ``closes``: as in :func:`position_labels` (False for a chunk inside the song).
    """
    families = position_labels([canonical_label(s.get("tag", "")) for s in sections], opens, closes)
    out: List[dict] = []
    for s, fam in zip(sections, families):
        if out and fam in WORDLESS and canonical_label(out[-1]["tag"]) == fam:
            out[-1]["end"] = s["end"]
            if "num_words" in out[-1]:
                out[-1]["num_words"] += int(s.get("num_words", 0))
        else:
            out.append({**s, "tag": s["tag"] if fam in LYRIC else fam})
    for s in out:
        if s["tag"] in WORDLESS:
            s["tag"] = sec.to_training_tag(s["tag"], float(s["end"]) - float(s["start"]))
    return out


def window_sections(sections: Sequence[dict], start: float, end: float, min_seconds: float = 4.0) -> List[dict]:
    """The sections inside [start, end], times relative to ``start``: a lyric chunk's own sections.

    Clipped wordless edge pieces shorter than ``min_seconds`` join their inner neighbour (sung ones
    stay: they hold the chunk's words); wordless tags are re-bucketed by their clipped length.
    Clipping keeps the order, so a shaped input stays shaped; an intro / outro stays only when the
    window holds part of it (else ``settle_tags(..., opens=False / closes=False)`` fits the chunk).
    """
    clipped = []
    for s in sections:
        a, b = max(float(s["start"]), start), min(float(s["end"]), end)
        if b > a:
            clipped.append({**s, "start": a - start, "end": b - start})
    for edge in (0, -1):  # a sung sliver stays: its words belong to the chunk
        piece = clipped[edge] if len(clipped) > 1 else None
        if piece and piece["end"] - piece["start"] < min_seconds and \
                canonical_label(piece.get("tag") or piece.get("label", "")) in WORDLESS:
            piece = clipped.pop(edge)
            neighbour = clipped[0 if edge == 0 else -1]
            neighbour["start"] = min(neighbour["start"], piece["start"])
            neighbour["end"] = max(neighbour["end"], piece["end"])
    for s in clipped:
        s["start"], s["end"] = round(s["start"], 3), round(s["end"], 3)
        fam = canonical_label(s.get("tag") or s.get("label", ""))
        if fam in ("intro", "outro", "inst"):
            s["tag"] = sec.to_training_tag(fam, s["end"] - s["start"])
    return clipped
