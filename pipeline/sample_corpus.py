"""songshard's synthetic sample corpus: songs with known tempo, key, sections, lyrics and stems.

``make_sample_corpus(out_dir)`` writes good songs (a numpy accompaniment plus vocals sung by
festival's singing mode, or spoken by espeak-ng where that fails) in several containers, their
sidecars, a set of bad files, the true stems under ``out_dir/_truth`` and ``ground_truth.json``.
``python -m pipeline.sample_corpus OUT_DIR`` does the same from the command line.

Discovery must skip path components starting with ``_`` or ``.``: the true stems under
``_truth/`` are audio files but not songs. Needs ffmpeg; text2wave (festival) or espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

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


def melody(text: str, contour: Sequence[int], beat: float) -> List[Tuple[str, float, int]]:
    """[(word, seconds, scale degree)] for a sung line filling 7 of its 8 beats.

    Each word gets min(1, 6 / words) beats, the last one a beat more; the contour is cut to
    the number of words and always ends on its last degree.
    """
    words = text.split()
    unit = min(1.0, 6.0 / len(words))
    degs = list(contour[:len(words) - 1]) + [contour[-1]]
    degs += [contour[-1]] * (len(words) - len(degs))
    return [(w, beat * (unit + (1.0 if i == len(words) - 1 else 0.0)), degs[i]) for i, w in enumerate(words)]


def festival_xml(notes: Sequence[Tuple[str, float, float]]) -> str:
    """festival SINGING markup for [(word, seconds, Hz)] (SECONDS / FREQ are exact; BEATS are not)."""
    body = "".join(f'<DURATION SECONDS="{d:.4f}"><PITCH FREQ="{f:.2f}">{w}</PITCH></DURATION>\n'
                   for w, d, f in notes)
    return ('<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" '
            f'"Singing.v0_1.dtd" []>\n<SINGING BPM="100">\n{body}</SINGING>\n')


def active_span(x: np.ndarray, rel: float = 0.03, hop: int = 480) -> Tuple[int, int]:
    """(first, last) sample of the frames whose RMS exceeds ``rel`` of the loudest frame."""
    n = x.size // hop
    rms = np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1))
    on = np.flatnonzero(rms > rel * rms.max())
    return int(on[0] * hop), int(min(x.size, (on[-1] + 1) * hop))


# ---------------------------------------------------------------- vocals (external engines)
def _read_48k(path: str) -> np.ndarray:
    """A mono wav resampled to SR as float64; ValueError when it holds no usable audio."""
    x, rate = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if x.size < rate // 10 or np.max(np.abs(x)) < 1e-3:
        raise ValueError(f"{path}: no usable audio")
    g = math.gcd(SR, rate)
    return resample_poly(x, SR // g, rate // g) if rate != SR else x


def sing_festival(notes: Sequence[Tuple[str, float, float]], work: str) -> np.ndarray:
    """Sing [(word, seconds, Hz)] with ``text2wave -mode singing``; mono float64 at SR.

    Raises OSError / CalledProcessError / ValueError when festival is missing or fails."""
    xml = os.path.join(work, "line.xml")
    with open(xml, "w") as f:
        f.write(festival_xml(notes))
    wav = os.path.join(work, "line.wav")
    subprocess.run(["text2wave", "-mode", "singing", xml, "-o", wav], check=True, capture_output=True,
                   timeout=120, cwd=work)
    return _read_48k(wav)


def speak_espeak(text: str, gender: str, seconds: float, work: str) -> np.ndarray:
    """Speak a line with espeak-ng (a male or female variant), sped up to fit ``seconds``."""
    wav = os.path.join(work, "line.wav")
    voice, pitch, rate = ("en-us+f3", 70, 140) if gender == "female" else ("en-us", 30, 140)
    for _ in range(3):
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", wav, text],
                       check=True, capture_output=True, timeout=60)
        x = _read_48k(wav)
        a, b = active_span(x)
        if (b - a) / SR <= seconds:
            return x[a:]
        rate = int(rate * (b - a) / SR / seconds * 1.1) + 1
    return x[a:a + int(seconds * SR)]


def _median_f0(x: np.ndarray) -> float:
    """Median f0 (Hz) of the voiced, loud part of a mono signal at SR (librosa's YIN)."""
    import librosa

    y = resample_poly(x, 1, 3)
    f0 = librosa.yin(y, fmin=70, fmax=420, sr=16000, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=160)[0][:f0.size]
    return float(np.median(f0[rms > 0.1 * rms.max()]))


# ---------------------------------------------------------------- one song
def lyric_plan(plan: Sequence[Tuple[str, int]], offset: float, beat: float,
               rng: np.random.Generator) -> List[dict]:
    """The sung lines: one per two bars of each verse and chorus, {"section_index", "start" (the slot's
    downbeat, s), "text", "label", "line"}. Verses draw fresh lines; both choruses sing the same ones."""
    verse_bank = [VERSE_LINES[k] for k in rng.permutation(len(VERSE_LINES))]
    chorus_bank = [CHORUS_LINES[k] for k in rng.permutation(len(CHORUS_LINES))]
    lines, t, used = [], offset, 0
    for si, (label, bars) in enumerate(plan):
        for j in range(bars // 2 if label in ("verse", "chorus") else 0):
            if label == "verse":
                text, used = verse_bank[used % len(verse_bank)], used + 1
            else:
                text = chorus_bank[j % len(chorus_bank)]
            lines.append({"section_index": si, "start": t + 2 * j * BEATS_PER_BAR * beat, "text": text,
                          "label": label, "line": j})
        t += bars * BEATS_PER_BAR * beat
    return lines


def vocal_register(tonic_midi: int, mode: str, gender: str) -> int:
    """How many scale degrees above ``tonic_midi - 24`` melody degree 0 sits: the shift placing the
    melodies' median pitch nearest the gender's centre (125 Hz male, 245 Hz female)."""
    degrees = [d for c in CONTOURS["verse"] + CONTOURS["chorus"] for d in c]
    return min(range(36), key=lambda s: abs(math.log(np.median(
        [midi_hz(scale_midi(tonic_midi - 24, mode, d + s)) for d in degrees]) / VOCAL_CENTER_HZ[gender])))


def sing_lines(lines: Sequence[dict], note_hz, gender: str, beat: float, engine: str):
    """(engine used, {(text, label, line): (clip at SR, per-10-ms f0 targets)}) for the distinct lines.

    ``note_hz(degree)`` gives a melody degree's pitch. Tries festival singing then espeak-ng
    ("auto"), or only the one named; raises RuntimeError when none works."""
    def render(ln: dict, use: str):
        tune = melody(ln["text"], CONTOURS[ln["label"]][ln["line"] % 4], beat)
        notes = [(w, d, note_hz(deg)) for w, d, deg in tune]
        with tempfile.TemporaryDirectory(prefix="songshard-voc-") as work:
            if use == "festival-singing":
                return sing_festival(notes, work), [f for _, d, f in notes for _k in range(int(round(d * 100)))]
            return speak_espeak(ln["text"], gender, 7 * beat, work), []

    unique = {(ln["text"], ln["label"], ln["line"]): ln for ln in lines}  # choruses repeat: sing once
    errors = []
    for use in {"auto": ["festival-singing", "espeak-ng"], "festival": ["festival-singing"],
                "espeak": ["espeak-ng"]}[engine]:
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                clips = list(pool.map(render, unique.values(), [use] * len(unique)))
            return use, dict(zip(unique, clips))
        except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
            errors.append(f"{use}: {exc}")
    raise RuntimeError("no vocal engine worked: " + "; ".join(errors))


def place_vocals(lines: Sequence[dict], clips: dict, acc: np.ndarray) -> Tuple[np.ndarray, List[dict]]:
    """(mono vocal stem as long as ``acc``, lyric truth) with each clip at its slot, ~3 dB above the
    accompaniment under it; a line's start / end are where its clip is audible."""
    n = acc.shape[-1]
    vocals, truth = np.zeros(n), []
    for ln in lines:
        clip = clips[(ln["text"], ln["label"], ln["line"])][0]
        at = int(round(ln["start"] * SR))
        a, b = active_span(clip)
        end = at + min(clip.size, n - at)
        gain = 1.4 * np.sqrt(np.mean(acc[:, at:end].mean(axis=0) ** 2) / np.mean(clip[a:b] ** 2))
        vocals[at:end] += gain * clip[:end - at]
        truth.append({"section_index": ln["section_index"], "start": round((at + a) / SR, 3),
                      "end": round((at + min(b, end - at)) / SR, 3), "text": ln["text"]})
    return vocals, truth


def build_song(index: int, seed: int, song_seconds: float, engine: str = "auto",
               bpm: Optional[float] = None) -> dict:
    """Synthesise song ``index``: {"mix", "vocals", "accompaniment": [2, N] float32, "truth": dict}.

    The three signals are peak-normalised together (mix peak -1 dBFS, mix = vocals + accompaniment).
    ``engine``: "auto" (festival singing, espeak-ng if that fails), "festival" or "espeak".
    Raises RuntimeError when no vocal engine works.
    """
    rng = np.random.default_rng([seed, index])
    bpm = float(bpm or TEMPOS[(index + seed) % len(TEMPOS)])
    tonic, mode = KEYS[(index + 3 * seed) % len(KEYS)]
    gender = "male" if index % 2 == 0 else "female"
    beat = 60.0 / bpm
    offset = round(float(rng.uniform(0.2, 0.6)), 3)
    plan = section_plan(bpm, song_seconds)
    n_bars = sum(b for _, b in plan)
    n = int(round((offset + n_bars * BEATS_PER_BAR * beat + TAIL_S) * SR))
    tonic_midi = 48 + PITCH_CLASS[tonic]  # bass one octave below, pads one and two above
    acc = render_accompaniment(plan, bpm, offset, tonic_midi, mode, n, seed=seed * 1000 + index)

    shift = vocal_register(tonic_midi, mode, gender)
    lines = lyric_plan(plan, offset, beat, rng)
    used, clips = sing_lines(lines, lambda d: midi_hz(scale_midi(tonic_midi - 24, mode, d + shift)),
                             gender, beat, engine)
    vocals, lyrics = place_vocals(lines, clips, acc)
    targets = [f for ln in lines for f in clips[(ln["text"], ln["label"], ln["line"])][1]]
    f0 = float(np.median(targets)) if targets else _median_f0(vocals)

    voc2 = np.stack([vocals, vocals])
    g = 10 ** (-1.0 / 20) / np.max(np.abs(voc2 + acc))
    voc2, acc = (voc2 * g).astype(np.float32), (acc * g).astype(np.float32)
    bounds = np.cumsum([0] + [b for _, b in plan]) * BEATS_PER_BAR * beat + offset
    bounds[0], bounds[-1] = 0.0, n / SR
    beats = [round(offset + k * beat, 6) for k in range(n_bars * BEATS_PER_BAR)]
    artist, title, genre = META[index % len(META)]
    truth = {"duration": round(n / SR, 6), "bpm": bpm, "meter": BEATS_PER_BAR, "key": f"{tonic} {mode}",
             "first_beat": offset, "beats": beats, "downbeats": beats[::BEATS_PER_BAR],
             "sections": [{"start": round(float(bounds[i]), 6), "end": round(float(bounds[i + 1]), 6),
                           "label": label} for i, (label, _) in enumerate(plan)],
             "lyrics": lyrics, "lyrics_text": " ".join(ln["text"] for ln in lyrics), "gender": gender,
             "vocal_f0_hz": round(f0, 1), "artist": artist, "title": title, "genre": genre,
             "vocal_engine": used}
    return {"mix": voc2 + acc, "vocals": voc2, "accompaniment": acc, "truth": truth}


# ---------------------------------------------------------------- files
def encode(audio: np.ndarray, path: str, fmt: str, tags: Optional[dict] = None) -> None:
    """Write [2, N] float audio to ``path`` in ``fmt`` with ffmpeg (bit-exact mode), with tags.

    Raises CalledProcessError when ffmpeg fails (e.g. the encoder is missing)."""
    with tempfile.TemporaryDirectory(prefix="songshard-enc-") as work:
        src = os.path.join(work, "mix.wav")
        sf.write(src, audio.T, SR, subtype="FLOAT")
        meta = [a for k, v in (tags or {}).items() for a in ("-metadata", f"{k}={v}")]
        subprocess.run(["ffmpeg", "-y", "-v", "error", "-nostdin", "-i", src, "-map_metadata", "-1",
                        *ENCODE[fmt], *meta, "-fflags", "+bitexact", "-flags:a", "+bitexact", path],
                       check=True, capture_output=True, timeout=300)


def _lrc_time(t: float) -> str:
    return f"[{int(t // 60):02d}:{t % 60:05.2f}]"


def write_bad_files(out_dir: str, dup_source: str) -> Dict[str, dict]:
    """The bad files beside the songs; returns {file name: expected pipeline outcome}."""
    expected = {}

    def put(name: str, data: bytes, outcome: str, reason: str) -> None:
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        expected[name] = {"outcome": outcome, "reason": reason}

    put("empty.wav", b"", "dead_letter", "empty")
    put("not_audio.mp3", b"songshard sample corpus: these bytes are text, not audio.\n" * 40,
        "dead_letter", "decode")
    t = np.arange(5 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(7).standard_normal(t.size)
    flac = os.path.join(out_dir, "truncated.flac")
    sf.write(flac, np.stack([tone, tone]).T, SR, subtype="PCM_16")
    with open(flac, "rb") as f:
        put("truncated.flac", f.read(2048), "dead_letter", "decode")
    sf.write(os.path.join(out_dir, "silent.wav"), np.zeros((10 * SR, 2)), SR, subtype="PCM_16")
    expected["silent.wav"] = {"outcome": "dead_letter", "reason": "silent"}
    sf.write(os.path.join(out_dir, "zero_length.wav"), np.zeros((0, 2)), SR, subtype="PCM_16")
    expected["zero_length.wav"] = {"outcome": "dead_letter", "reason": "no_samples"}
    dup = "dup_of_" + os.path.basename(dup_source)  # sorts after the original, which is kept
    shutil.copyfile(dup_source, os.path.join(out_dir, dup))
    expected[dup] = {"outcome": "duplicate", "reason": "duplicate_of", "of": os.path.basename(dup_source)}
    return expected


def make_sample_corpus(out_dir: str, n_songs: int = 5, seed: int = 0, song_seconds: float = 70.0,
                       bad_files: bool = True, engine: str = "auto") -> dict:
    """Write the sample corpus into ``out_dir`` and return its ground truth (also ground_truth.json).

    Song NAME (``NN_title``) is ``NAME.<fmt>`` (formats cycle wav, flac, mp3, ogg, m4a, opus),
    with sidecars NAME.json / NAME.txt / NAME.lrc for most songs, and true stems in
    ``_truth/NAME/{vocals,accompaniment}.wav`` (48 kHz stereo 24-bit). With ``bad_files``: the
    files of ``write_bad_files``, a duplicate and ``short_song.wav`` (~20 s). Deterministic for a
    seed. Raises RuntimeError (no vocal engine) or CalledProcessError (ffmpeg) on missing tools.
    """
    if n_songs < 1:
        raise ValueError("n_songs must be at least 1")
    os.makedirs(out_dir, exist_ok=True)
    truth = {"version": 1, "seed": seed, "sample_rate": SR, "exclude_prefixes": ["_", "."],
             "note": GROUND_TRUTH_NOTE, "songs": {}, "expected": {}}
    for i in range(n_songs):
        song = build_song(i, seed, song_seconds, engine)
        info = song["truth"]
        fmt = FORMATS[i % len(FORMATS)]
        name = f"{i + 1:02d}_" + info["title"].lower().replace(" ", "_")
        sidecars, embedded = SIDECARS[i % len(SIDECARS)]
        tags = {k: info[k] for k in ("artist", "title", "genre")}
        encode(song["mix"], os.path.join(out_dir, f"{name}.{fmt}"), fmt, tags if embedded else None)
        stem_dir = os.path.join(out_dir, "_truth", name)
        os.makedirs(stem_dir, exist_ok=True)
        for stem in ("vocals", "accompaniment"):
            sf.write(os.path.join(stem_dir, f"{stem}.wav"), song[stem].T, SR, subtype="PCM_24")
        base = os.path.join(out_dir, name)
        if "json" in sidecars:
            with open(base + ".json", "w") as f:
                json.dump({**tags, "language": "en", "bpm": info["bpm"]}, f, indent=1)
        if "txt" in sidecars:
            with open(base + ".txt", "w") as f:
                f.write("".join(ln["text"] + "\n" for ln in info["lyrics"]))
        if "lrc" in sidecars:
            with open(base + ".lrc", "w") as f:
                f.write(f"[ar:{info['artist']}]\n[ti:{info['title']}]\n" +
                        "".join(f"{_lrc_time(ln['start'])} {ln['text']}\n" for ln in info["lyrics"]))
        truth["songs"][name] = {"file": f"{name}.{fmt}", "format": fmt, **info, "sidecars": list(sidecars),
                                "embedded_tags": embedded,
                                "truth_stems": {s: f"_truth/{name}/{s}.wav" for s in ("vocals", "accompaniment")}}
    if bad_files:
        first = sorted(truth["songs"].values(), key=lambda s: s["file"])[min(1, n_songs - 1)]
        truth["expected"] = write_bad_files(out_dir, os.path.join(out_dir, first["file"]))
        short = build_song(n_songs, seed, 20.0, engine, bpm=120.0)
        encode(short["mix"], os.path.join(out_dir, "short_song.wav"), "wav")
        truth["expected"]["short_song.wav"] = {"outcome": "filtered_too_short", "reason": "too_short",
                                               "duration": short["truth"]["duration"]}
    with open(os.path.join(out_dir, "ground_truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return truth


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pipeline.sample_corpus OUT_DIR [--n_songs N] [--seed S] [--song_seconds X]
    [--no_bad_files]``: write the corpus and print what was written."""
    p = argparse.ArgumentParser(prog="songshard sample-corpus", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--n_songs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--song_seconds", type=float, default=70.0)
    p.add_argument("--no_bad_files", action="store_true")
    p.add_argument("--engine", choices=("auto", "festival", "espeak"), default="auto")
    args = p.parse_args(argv)
    start = time.time()
    truth = make_sample_corpus(args.out_dir, args.n_songs, args.seed, args.song_seconds,
                               not args.no_bad_files, args.engine)
    for s in truth["songs"].values():
        print(f"{s['file']:<28} {s['duration']:6.1f}s {s['bpm']:5.0f} bpm  {s['key']:<8} {s['gender']:<6} "
              f"f0 {s['vocal_f0_hz']:5.1f} Hz  {s['vocal_engine']:<16} sidecars: {','.join(s['sidecars']) or '-'}")
    for name, e in truth["expected"].items():
        print(f"{name:<28} expected: {e['outcome']} ({e['reason']})")
    print(f"wrote {len(truth['songs'])} songs, {len(truth['expected'])} bad files, true stems in "
          f"{os.path.join(args.out_dir, '_truth')} and {os.path.join(args.out_dir, 'ground_truth.json')} "
          f"in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
