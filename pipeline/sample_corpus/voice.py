"""The sample corpus's vocals: melodies sung by festival (or spoken by espeak-ng) and placed over the bed."""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import List, Sequence, Tuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from pipeline.sample_corpus.music import SR, BEATS_PER_BAR, VERSE_LINES, CHORUS_LINES, CONTOURS, VOCAL_CENTER_HZ, midi_hz, scale_midi

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


def median_f0(x: np.ndarray) -> float:
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
