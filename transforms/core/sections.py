"""The training side's section vocabulary, in one place: the 13 tags, the analyser-label mapping, buckets.

Used by the structure stage (tags on its sections), the lyrics stage (the
``gt_lyric`` line) and the quality stage (vocal vs instrumental sections).
Unknown analyser labels map to ``inst``: they carry no words on the training
side, which is the safe failure.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

TRAINING_TAGS = ("verse", "chorus", "bridge", "intro-short", "intro-medium", "intro-long",
                 "outro-short", "outro-medium", "outro-long", "inst-short", "inst-medium", "inst-long",
                 "silence")
# Labels of 10-label analysers (start, end, intro, outro, break, bridge, inst, solo, verse, chorus)
# and a few common synonyms -> the training side's tag family.
LABEL_FAMILY = {
    "verse": "verse", "prechorus": "verse", "pre-chorus": "verse", "chorus": "chorus", "refrain": "chorus",
    "hook": "chorus", "bridge": "bridge", "intro": "intro", "outro": "outro", "coda": "outro",
    "inst": "inst", "instrumental": "inst", "break": "inst", "solo": "inst", "interlude": "inst",
    "start": "silence", "end": "silence", "silence": "silence",
}
BUCKETED = ("intro", "outro", "inst")  # families that carry a duration bucket
WORDLESS = ("intro", "outro", "inst", "silence")  # families that carry no words
LYRIC_FAMILIES = ("verse", "chorus", "bridge")
SHORT_UNDER = 10.0  # seconds: short < 10 <= medium <= 20 < long
LONG_OVER = 20.0


def bucket(seconds: float) -> str:
    """short (0-10 s), medium (10-20 s), long (over 20 s)."""
    return "short" if seconds < SHORT_UNDER else ("medium" if seconds <= LONG_OVER else "long")


def family(label: str) -> str:
    """The tag family of an analyser label or a training tag ("intro-short" -> "intro"; unknown -> "inst")."""
    text = str(label or "").strip("[] ").lower()
    if text in LABEL_FAMILY:
        return LABEL_FAMILY[text]
    head = text.split("-")[0]
    return head if head in BUCKETED else LABEL_FAMILY.get(head, "inst")


def to_training_tag(label: str, duration: float) -> str:
    """Map an analyser label and the section's duration (seconds) to one of TRAINING_TAGS."""
    fam = family(label)
    return f"{fam}-{bucket(duration)}" if fam in BUCKETED else fam


def section_tag(section: dict) -> str:
    """The training tag of a section dict: its ``tag`` if set, else mapped from ``label`` and its span."""
    if section.get("tag"):
        return str(section["tag"])
    return to_training_tag(str(section.get("label", "")), float(section["end"]) - float(section["start"]))


def is_wordless(tag: str) -> bool:
    """True for intro / outro / inst / silence tags and labels: they carry no words."""
    return family(tag) in WORDLESS


def tile(sections: Sequence[dict], duration: float, min_gap: float = 1.0) -> List[dict]:
    """Sections sorted, overlaps cut, covering exactly [0, duration].

    Gaps of ``min_gap`` seconds or more become "silence" sections; shorter ones
    (rounding between analysis rates) are absorbed by the neighbouring section.
    """
    out: List[dict] = []
    t = 0.0
    for s in sorted(sections, key=lambda s: s["start"]):
        start, end = max(float(s["start"]), t), min(float(s["end"]), duration)
        if end <= start:
            continue
        if start - t >= min_gap:
            out.append({"start": t, "end": start, "label": "silence"})
        else:
            start = t
        out.append({**s, "start": start, "end": end})
        t = end
    if duration - t >= min_gap:
        out.append({"start": t, "end": duration, "label": "silence"})
    elif out:
        out[-1]["end"] = duration
    return out


def with_tags(sections: Sequence[dict]) -> List[Dict]:
    """Sections with the training-side ``tag`` added (times rounded to milliseconds)."""
    return [{"start": round(float(s["start"]), 3), "end": round(float(s["end"]), 3), "label": s["label"],
             "tag": to_training_tag(s["label"], float(s["end"]) - float(s["start"]))} for s in sections]
