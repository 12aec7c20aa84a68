"""The time-aligned picture on a sample page: lanes over one time axis. Pure (returns HTML).

Each ``*_lane`` function returns ``(kind, name, inner HTML)``; the kind is the CSS class
that fixes the lane's height in both the name column and the scrolling lanes.
Lanes, top to bottom: time axis, spectrogram, waveform, sections, beats and
downbeats, vocal activity (``labels.lyrics.regions``), words. Everything is
placed by percent of the song's duration, so zooming is one width change.
Sections, vocal regions and words carry ``data-seek="SECONDS"``; ``sample.js``
seeks the players there when one is clicked.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from pipeline.plots import SECTION_COLOURS
from pipeline.report.layout import esc

WORD_ROWS = 4  # words cycle over this many rows so neighbours do not overlap
Lane = Tuple[str, str, str]  # (kind, name, inner HTML)
AXIS_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600)


def _pct(t: float, duration: float) -> float:
    return max(0.0, min(100.0, 100.0 * float(t) / duration)) if duration > 0 else 0.0


def section_colour(tag: str) -> str:
    """The colour of a section tag ("intro-short" -> the intro colour) as the plots use it."""
    return SECTION_COLOURS.get(str(tag).split("-")[0], "#999999")


def axis_step(duration: float, ticks: int = 12) -> int:
    """A round tick step in seconds giving at most about ``ticks`` ticks."""
    for step in AXIS_STEPS:
        if duration / step <= ticks:
            return step
    return AXIS_STEPS[-1]


def fmt_time(t: float) -> str:
    """Seconds as m:ss.s ("1:05.2")."""
    m, s = divmod(max(0.0, float(t)), 60.0)
    return f"{int(m)}:{s:04.1f}"


def axis_lane(duration: float) -> Lane:
    """Time ticks (m:ss) at a round step."""
    step = axis_step(duration)
    ticks = "".join(f'<span style="left:{_pct(t, duration):.3f}%">{int(t // 60)}:{int(t % 60):02d}</span>'
                    for t in range(0, int(duration) + 1, step) if t < duration)
    return "axis", "", ticks


def sections_lane(sections: Sequence[dict], duration: float) -> Lane:
    """One coloured, clickable block per section, labelled with its tag."""
    segs = []
    for s in sections:
        tag = s.get("tag") or s.get("label") or "?"
        left, right = _pct(s["start"], duration), _pct(s["end"], duration)
        segs.append(f'<div class="seg" data-seek="{float(s["start"]):.3f}" style="left:{left:.3f}%;'
                    f'width:{max(right - left, 0.1):.3f}%;background:{section_colour(tag)}" '
                    f'title="{esc(tag)} {fmt_time(s["start"])}–{fmt_time(s["end"])}">{esc(tag)}</div>')
    return "sections", "sections", "".join(segs)


def beats_lane(beats: Sequence[float], downbeats: Sequence[float], duration: float) -> Lane:
    """Beats as short grey ticks, downbeats as full-height dark ticks, in one stretched SVG."""
    if duration <= 0:
        return "beats", "beats", ""
    down = set(round(float(d), 3) for d in downbeats)
    line = ('<line x1="{0:.3f}" x2="{0:.3f}" y1="{1}" y2="10" stroke="{2}" stroke-width="{3}" '
            'vector-effect="non-scaling-stroke"/>')
    lines = [line.format(float(b), 5, "#8a93a6", 1) for b in beats if round(float(b), 3) not in down]
    lines += [line.format(float(d), 0, "#1d2330", 1.5) for d in downbeats]
    svg = f'<svg viewBox="0 0 {duration:.3f} 10" preserveAspectRatio="none">{"".join(lines)}</svg>'
    return "beats", f'<span title="{len(beats)} beats, {len(downbeats)} downbeats">beats / downbeats</span>', svg


def vocal_lane(regions: Sequence[Sequence[float]], duration: float) -> Lane:
    """One clickable bar per vocal-activity region ``[start, end]``."""
    segs = "".join(f'<div class="vseg" data-seek="{float(a):.3f}" style="left:{_pct(a, duration):.3f}%;'
                   f'width:{max(_pct(b, duration) - _pct(a, duration), 0.1):.3f}%" '
                   f'title="vocals {fmt_time(a)}–{fmt_time(b)}"></div>' for a, b in regions)
    return "vocal", "vocal activity", segs


def words_lane(words: Sequence[dict], duration: float) -> Lane:
    """Each word at its start time, cycling over WORD_ROWS rows; hover shows time and probability."""
    spans = []
    for i, w in enumerate(words):
        top = 2 + (i % WORD_ROWS) * 14
        p = w.get("probability")
        prob = f"{float(p):.2f}" if isinstance(p, (int, float)) else "?"
        spans.append(f'<span class="word" id="w{i}" data-seek="{float(w["start"]):.3f}" '
                     f'style="left:{_pct(w["start"], duration):.3f}%;top:{top}px" '
                     f'title="{esc(w.get("text"))} {fmt_time(w["start"])} p={prob}">'
                     f'{esc(w.get("text"))}</span>')
    return "words", f"words ({len(words)})", "".join(spans)


def legend(sections: Sequence[dict]) -> str:
    """Colour key of the section families present, and how to seek."""
    seen: List[str] = []
    for s in sections:
        family = str(s.get("tag") or s.get("label") or "?").split("-")[0]
        if family not in seen:
            seen.append(family)
    items = "".join(f'<span><i style="background:{section_colour(f)}"></i>{esc(f)}</span>' for f in seen)
    return (f'<div class="legend">{items}<span class="muted">click a section, a vocal region or a word to '
            f'move the players there; click anywhere on the timeline to seek</span></div>')


def timeline_html(labels: dict, duration: float, spectrogram: Optional[str] = None, waveform_svg: str = "") -> str:
    """The whole timeline block for a sample's ``labels`` (``spectrogram`` is an image URL).

    Lane names sit in a fixed column on the left; the lanes scroll and zoom on the right.
    """
    st = labels.get("structure", {}) or {}
    lyr = labels.get("lyrics", {}) or {}
    sections = lyr.get("sections") or st.get("sections") or []
    lanes = [axis_lane(duration)]
    if spectrogram:
        lanes.append(("spec", "spectrogram<br><small>log freq. 30 Hz–16 kHz</small>",
                      f'<img src="{esc(spectrogram)}" alt="spectrogram">'))
    if waveform_svg:
        lanes.append(("wave", "waveform", waveform_svg))
    lanes += [sections_lane(sections, duration), beats_lane(st.get("beats", []), st.get("downbeats", []), duration),
              vocal_lane(lyr.get("regions", []), duration), words_lane(lyr.get("words", []), duration)]
    names = "".join(f'<div class="lane {kind}">{name}</div>' for kind, name, _ in lanes)
    body = "".join(f'<div class="lane {kind}">{inner}</div>' for kind, _, inner in lanes)
    zoom = "".join(f'<button data-zoom="{z}"{" class=on" if z == 1 else ""}>{z}×</button>' for z in (1, 2, 4, 8, 16))
    return (f'<div class="zoom">zoom {zoom}</div>{legend(sections)}<div class="tl"><div class="tl-names">{names}</div>'
            f'<div class="timeline-scroll"><div class="timeline" id="timeline" data-duration="{duration:.3f}">'
            f'{body}<div class="playhead" id="playhead"></div></div></div></div>')
