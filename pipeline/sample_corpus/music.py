"""The sample corpus's synthetic accompaniment: section plans, chords, drums, bass, pads."""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

SR = 48000
BEATS_PER_BAR = 4
TAIL_S = 0.6  # ring-out after the last bar, part of the outro
TEMPOS = (96.0, 118.0, 84.0, 132.0, 104.0, 112.0, 92.0, 108.0)  # no pair near 2:1 or 3:2
KEYS = (("A", "minor"), ("C", "major"), ("E", "minor"), ("G", "major"), ("D", "minor"), ("F", "major"),
        ("B", "minor"), ("D", "major"))
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {"major": {"verse": (0, 4, 5, 3), "chorus": (3, 0, 4, 5)},    # I V vi IV | IV I V vi
                "minor": {"verse": (0, 5, 2, 6), "chorus": (3, 5, 6, 0)}}    # i VI III VII | iv VI VII i
FORMATS = ("wav", "flac", "mp3", "ogg", "m4a", "opus")
ENCODE = {"wav": ["-c:a", "pcm_s16le"], "flac": ["-c:a", "flac", "-sample_fmt", "s16"],
          "mp3": ["-c:a", "libmp3lame", "-b:a", "192k", "-id3v2_version", "3"],
          "ogg": ["-c:a", "libvorbis", "-q:a", "6"], "m4a": ["-c:a", "aac", "-b:a", "192k"],
          "opus": ["-c:a", "libopus", "-b:a", "160k"]}
# (sidecars, embedded tags) by song index modulo 6; index 2 has no sidecar at all.
SIDECARS = ((("json", "txt"), True), (("json", "lrc"), True), ((), True), (("json", "txt"), False),
            (("json", "txt"), True), (("txt",), True))
META = (("Nora Vale", "Young Night", "pop"), ("Nora Vale", "Paper Boats", "indie pop"),
        ("The Lanterns", "Run the Road", "rock"), ("Kid Meridian", "Cold Light", "electronic"),
        ("Ruth Harbour", "Low Tide", "folk"), ("Low Orchard", "Red Sky", "synthpop"),
        ("June Arden", "Glass Town", "soul"), ("The Lanterns", "Long Drive", "rock"))
VERSE_LINES = (
    "the night is young and we run", "we walk the long road home", "the stars are out on the hill",
    "I hear the sound of the rain", "the old town sleeps in the cold", "we left the light on for you",
    "my heart was lost in the crowd", "the wind blows hard on the sea", "she sings a song of the sun",
    "we drove all night to the coast", "the clock on the wall stands still", "I kept your name in my heart",
    "the train is gone from the town", "we count the cars on the bridge", "the snow falls down on the street",
    "I wrote your name in the sand", "you smile and the day is new", "the birds fly south for the cold",
    "we dance in the dark all night", "the moon is high and the sky is clear")
CHORUS_LINES = (
    "hold on hold on to me", "we are the light in the dark", "sing it loud and sing it true",
    "we will be fine if we stay", "oh the fire burns so bright", "come home come home to me",
    "let the bells ring out tonight", "we can fly so high so far", "all we need is one more day",
    "take my hand and run with me", "the sun will rise and we rise", "keep the dream and hold it near")
# Melody contours in scale degrees (last entry is the held last word); choruses sit higher.
CONTOURS = {"verse": ((0, 0, 1, 2, 1, 0, 0), (2, 2, 1, 0, 1, 2, 1), (0, 1, 2, 3, 2, 1, -1), (4, 2, 1, 0, 1, 1, 0)),
            "chorus": ((4, 4, 5, 4, 2, 2, 4), (4, 5, 4, 2, 1, 2, 0), (2, 4, 5, 7, 5, 4, 4), (5, 4, 2, 4, 2, 1, 0))}
STYLE = {  # level, pad harmonics, pad octave doubling, bass notes per bar, kick / snare beats, hats per bar
    "intro": dict(level=0.5, harm=3, octave=False, bass=0, kick=(0.0,), snare=(), hats=4, open_hat=False),
    "verse": dict(level=0.75, harm=4, octave=False, bass=2, kick=(0.0, 2.0), snare=(1.0, 3.0), hats=8,
                  open_hat=False),
    "chorus": dict(level=1.0, harm=10, octave=True, bass=8, kick=(0.0, 2.0, 2.5), snare=(1.0, 3.0), hats=8,
                   open_hat=True),
    "outro": dict(level=0.5, harm=3, octave=False, bass=1, kick=(0.0,), snare=(), hats=4, open_hat=False)}
VOCAL_CENTER_HZ = {"male": 125.0, "female": 245.0}
GROUND_TRUTH_NOTE = ("Audio under _truth/ are true stems, not songs: discovery must skip path components "
                     "starting with '_' or '.'. Bad files are listed under 'expected'.")


# ---------------------------------------------------------------- pure synthesis
def section_plan(bpm: float, song_seconds: float) -> List[Tuple[str, int]]:
    """[(label, bars)] for intro, verse, chorus, verse, chorus, outro covering >= song_seconds.

    Verses and choruses have an even number of bars (one sung line per two bars); at least
    10 bars in all, so a very short ``song_seconds`` still gives every section.
    """
    n = max(10, math.ceil(song_seconds / (BEATS_PER_BAR * 60.0 / bpm) - 1e-9))
    verse = chorus = max(2, (n - 2) // 4 // 2 * 2)
    left = n - 2 * verse - 2 * chorus
    if left >= 8:
        chorus, left = chorus + 2, left - 4
    intro = max(1, left // 2)
    outro = max(1, left - intro)
    return [("intro", intro), ("verse", verse), ("chorus", chorus), ("verse", verse), ("chorus", chorus),
            ("outro", outro)]


def midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def scale_midi(tonic_midi: int, mode: str, degree: int) -> int:
    """MIDI note of a scale degree (0 = tonic, may be negative or above 6) of the key."""
    scale = SCALES[mode]
    return tonic_midi + scale[degree % 7] + 12 * (degree // 7)


def triad(tonic_midi: int, mode: str, degree: int) -> List[int]:
    """The diatonic triad on ``degree`` as three MIDI notes."""
    return [scale_midi(tonic_midi, mode, degree + k) for k in (0, 2, 4)]


def drum_hit(kind: str, seed: int = 0) -> np.ndarray:
    """One drum hit (kick, snare, hat, open_hat, crash) as mono float64 at SR, peak 1."""
    rng = np.random.default_rng([seed, sum(map(ord, kind))])
    dur = {"kick": 0.35, "snare": 0.22, "hat": 0.06, "open_hat": 0.3, "crash": 1.6}[kind]
    t = np.arange(int(dur * SR)) / SR
    if kind == "kick":
        freq = 48.0 + 110.0 * np.exp(-t / 0.035)
        x = np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t / 0.12)
        x[:48] += np.linspace(0.6, 0.0, 48)  # beater click
    elif kind == "snare":
        noise = np.diff(rng.standard_normal(t.size + 1))
        x = 0.7 * noise * np.exp(-t / 0.06) + np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.04)
    else:
        noise = np.diff(rng.standard_normal(t.size + 2), n=2)
        x = noise * np.exp(-t / {"hat": 0.012, "open_hat": 0.09, "crash": 0.5}[kind])
    return x / np.max(np.abs(x))


def pad_chord(midis: Sequence[int], n: int, harmonics: int, detune: float = 0.0012) -> np.ndarray:
    """A sustained chord [2, n]: additive saw-like tones (``harmonics`` partials, more = brighter),
    detuned between channels for width, 30 ms attack and 80 ms release."""
    t = np.arange(n) / SR
    out = np.zeros((2, n))
    for ch, det in enumerate((1.0 - detune, 1.0 + detune)):
        for m in midis:
            f = midi_hz(m) * det
            for h in range(1, harmonics + 1):
                if f * h < 12000.0:
                    out[ch] += np.sin(2 * np.pi * f * h * t) / h ** 1.2
    env = np.minimum(1.0, np.minimum(t / 0.03, (n / SR - t) / 0.08))
    return out * env / (2.0 * len(midis))


def bass_note(midi: int, n: int) -> np.ndarray:
    """A plucked, slightly saturated bass note, mono float64 of n samples."""
    t = np.arange(n) / SR
    f = midi_hz(midi)
    x = np.tanh(1.5 * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)))
    env = np.exp(-t / 0.45) * np.minimum(1.0, np.minimum(t / 0.004, (n / SR - t) / 0.02))
    return x * env


def _add(buf: np.ndarray, x: np.ndarray, at: int, gain=1.0) -> None:
    """Add x (mono or [2, n]) into the stereo buffer at sample ``at``, cut at the end; gain may be
    a scalar or a per-channel pair."""
    n = min(x.shape[-1], buf.shape[-1] - at)
    if n > 0:
        buf[:, at:at + n] += np.asarray(gain, dtype=float).reshape(-1, 1) * x[..., :n]


def render_accompaniment(plan: Sequence[Tuple[str, int]], bpm: float, offset: float, tonic_midi: int,
                         mode: str, n_samples: int, seed: int = 0) -> np.ndarray:
    """The accompaniment [2, n_samples] float64: drums, bass and pads following ``plan``.

    Beat k sits at ``offset + k * 60 / bpm`` (nearest sample); one chord per bar, verse
    progression in intro / verse, chorus progression in chorus / outro; downbeats accented.
    """
    buf = np.zeros((2, n_samples))
    beat = 60.0 / bpm
    hits = {k: drum_hit(k, seed) for k in ("kick", "snare", "hat", "open_hat", "crash")}
    pads: Dict[tuple, np.ndarray] = {}
    bar_n = int(round(BEATS_PER_BAR * beat * SR))
    at = lambda b: int(round((offset + b * beat) * SR))  # noqa: E731 - sample of beat position b
    bar = 0
    for label, bars in plan:
        st = STYLE[label]
        prog = PROGRESSIONS[mode]["chorus" if label in ("chorus", "outro") else "verse"]
        for j in range(bars):
            b0, deg = (bar + j) * BEATS_PER_BAR, prog[j % len(prog)]
            key = (deg, st["harm"], st["octave"])
            if key not in pads:
                notes = triad(tonic_midi + 12, mode, deg) + ([scale_midi(tonic_midi + 24, mode, deg)]
                                                               if st["octave"] else [])
                pads[key] = pad_chord(notes, bar_n, st["harm"])
            _add(buf, pads[key], at(b0), 0.35 * st["level"])
            if st["bass"]:
                step = BEATS_PER_BAR / st["bass"]
                note = bass_note(scale_midi(tonic_midi - 12, mode, deg), int(step * beat * SR))
                for k in range(st["bass"]):
                    _add(buf, note, at(b0 + k * step), 0.45 * st["level"])
            for pos in st["kick"]:
                _add(buf, hits["kick"], at(b0 + pos), (1.0 if pos == 0 else 0.7) * st["level"])
            for pos in st["snare"]:
                _add(buf, hits["snare"], at(b0 + pos), 0.5 * st["level"])
            for k in range(st["hats"]):
                pos = k * BEATS_PER_BAR / st["hats"]
                hit = hits["open_hat"] if st["open_hat"] and pos % 1 == 0.5 else hits["hat"]
                g = (0.28 if pos == 0 else 0.16 if pos % 1 == 0 else 0.1) * st["level"]
                _add(buf, hit, at(b0 + pos), (0.8 * g, 1.2 * g))
            if j == 0 and label != "intro":
                _add(buf, hits["crash"], at(b0), 0.25 * st["level"])
        bar += bars
    return buf
