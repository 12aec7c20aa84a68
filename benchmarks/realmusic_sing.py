"""Known lyrics sung (festival) or spoken (espeak-ng) over a real instrumental, for songshard's
real-music evaluation set. The singing is the sample corpus's (``pipeline.sample_corpus``: melody
contours, festival SINGING markup, espeak-ng fallback); here it is placed on the bed's beat grid
(or a 4 s grid when the tempo is unknown), in the bed's estimated key, and mixed at the entry's
vocal-to-accompaniment ratio. Needs festival's ``text2wave`` or ``espeak-ng`` on PATH.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy.signal import resample_poly

import realmusic_truth as rt
from pipeline import sample_corpus as sc
from pipeline.sample_corpus import voice as sc_voice

# German lines for the one non-English song (espeak-ng "de"); verse bank then chorus bank.
GERMAN_VERSE = ("wir fahren durch die lange nacht", "der regen faellt auf unser haus",
                "die sterne leuchten ueber mir", "ich warte hier am alten fluss",
                "der wind weht kalt durch unsere stadt", "wir singen laut bis zum morgen")
GERMAN_CHORUS = ("komm mit mir nach hause", "wir sind das licht in der nacht")


def _to_rate(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    g = math.gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g) if rate_in != rate_out else x


def bed_key(bed: np.ndarray, sr: int) -> tuple:
    """(tonic pitch class, mode) of a [2, N] bed from its mean chroma (librosa)."""
    import librosa

    y = _to_rate(bed.mean(axis=0), sr, 22050)
    chroma = librosa.feature.chroma_stft(y=y.astype(np.float32), sr=22050, hop_length=2048)
    return rt.estimate_key(chroma.mean(axis=1))


def choose_lines(language: str, n: int, seed: int) -> List[dict]:
    """n lines [{"text", "label", "line"}]: sections of four (verse, chorus, verse, chorus ...);
    verses draw fresh lines, every chorus repeats the same two lines twice."""
    rng = np.random.default_rng(seed)
    verse, chorus = (GERMAN_VERSE, GERMAN_CHORUS) if language == "de" else (sc.VERSE_LINES, sc.CHORUS_LINES)
    verse = [verse[k] for k in rng.permutation(len(verse))]
    chorus = [chorus[k] for k in rng.permutation(len(chorus))][:2]
    out, used = [], 0
    for k in range(n):
        section, j = divmod(k, 4)
        if section % 2 == 0:
            out.append({"text": verse[used % len(verse)], "label": "verse", "line": j})
            used += 1
        else:
            out.append({"text": chorus[j % 2], "label": "chorus", "line": j})
    return out


def espeak_line(text: str, voice: str, pitch: int, seconds: float, work: str) -> np.ndarray:
    """A line spoken by espeak-ng ``voice`` (e.g. "de"), sped up to fit ``seconds``; mono at sc.SR."""
    wav, rate = os.path.join(work, "line.wav"), 140
    for _ in range(3):
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", wav, text],
                       check=True, capture_output=True, timeout=60)
        x = sc_voice._read_48k(wav)
        a, b = sc.active_span(x)
        if (b - a) / sc.SR <= seconds:
            return x[a:]
        rate = int(rate * (b - a) / sc.SR / seconds * 1.1) + 1
    return x[a:a + int(seconds * sc.SR)]


def render_line(ln: dict, entry: dict, slot: float, note_hz) -> tuple:
    """(mono clip at sc.SR, engine used) of one line; festival falls back to espeak-ng."""
    with tempfile.TemporaryDirectory(prefix="songshard-rmv-") as work:
        if entry["engine"] == "festival":
            tune = sc.melody(ln["text"], sc.CONTOURS[ln["label"]][ln["line"] % 4], slot / 8)
            try:
                return sc.sing_festival([(w, d, note_hz(deg)) for w, d, deg in tune], work), "festival-singing"
            except (OSError, subprocess.SubprocessError, ValueError):
                pass
        if entry["language"] == "en":
            return sc.speak_espeak(ln["text"], entry["gender"], 0.875 * slot, work), "espeak-ng en-us"
        voice, pitch = (entry["language"] + "+f3", 70) if entry["gender"] == "female" else (entry["language"], 35)
        return espeak_line(ln["text"], voice, pitch, 0.875 * slot, work), f"espeak-ng {voice}"


def grid(bpm: Optional[float], beats: Sequence[float], duration: float) -> tuple:
    """(first line start s, slot s): the first downbeat-like beat (index multiple of 4) after 6 s and
    8 or 16 beats a line; 6 s and 4 s without a tempo."""
    if not bpm or not beats:
        return 6.0, 4.0
    slot = rt.line_slot_beats(bpm) * 60.0 / bpm
    first = next((b for k, b in enumerate(beats) if k % 4 == 0 and b >= 6.0), 6.0)
    return first, slot


def onset_phase(bed: np.ndarray, sr: int, beats: Sequence[float], bpm: float) -> float:
    """Seconds to add to a beat grid of the right tempo so it sits on the bed's onsets (librosa)."""
    import librosa

    y = _to_rate(bed.mean(axis=0), sr, 22050).astype(np.float32)
    env = librosa.onset.onset_strength(y=y, sr=22050, hop_length=128)
    return rt.comb_phase(env, 22050 / 128, [b for b in beats if b < 60.0], 60.0 / bpm)


def sing_over(bed: np.ndarray, sr: int, bpm: Optional[float], beats: Sequence[float], entry: dict,
              phase: bool = False) -> Dict:
    """{"vocals", "accompaniment" ([2, N] at sr, summing to the mix), "lyrics" [{"start", "end",
    "text"}], "engine", "key"} for a sung entry over the [2, N] ``bed``; with ``phase`` the beat
    grid is first shifted onto the bed's onsets (``onset_phase``).

    Raises RuntimeError when no line could be voiced (neither festival nor espeak-ng works)."""
    n, duration, grid_shift = bed.shape[1], bed.shape[1] / sr, 0.0
    if phase and bpm and beats:
        grid_shift = onset_phase(bed, sr, beats, bpm)
        beats = [b + grid_shift for b in beats]
    first, slot = grid(bpm, beats, duration)
    layout = [(t, s) for t, s in rt.lyric_layout(40, first, slot) if t + slot <= duration - 4.0]
    lines = choose_lines(entry["language"], len(layout), entry["seed"])
    tonic, mode = bed_key(bed, sr)
    tonic_midi = 48 + tonic
    shift = sc.vocal_register(tonic_midi, mode, entry["gender"])
    note_hz = lambda d: sc.midi_hz(sc.scale_midi(tonic_midi - 24, mode, d + shift))  # noqa: E731
    clips, engines = {}, set()
    for ln in lines:
        key = (ln["text"], ln["label"], ln["line"])
        if key not in clips:
            clip, used = render_line(ln, entry, slot, note_hz)
            clips[key] = _to_rate(clip, sc.SR, sr)
            engines.add(used)
    if not clips:
        raise RuntimeError("no sung line fits the bed")
    vocals, lyrics = np.zeros(n), []
    for (start, _section), ln in zip(layout, lines):
        clip = clips[(ln["text"], ln["label"], ln["line"])][:int(slot * sr)]
        at = int(round(start * sr))
        m = min(clip.size, n - at)
        vocals[at:at + m] += clip[:m]
        a, b = sc.active_span(clip[:m], hop=441)
        lyrics.append({"start": round((at + a) / sr, 3), "end": round((at + b) / sr, 3), "text": ln["text"]})
    mixed = rt.mix_at_snr(np.stack([vocals, vocals]), bed, entry["snr_db"], sr)
    return {"vocals": mixed["vocals"], "accompaniment": mixed["accompaniment"], "lyrics": lyrics,
            "engine": " + ".join(sorted(engines)), "key": f"{rt.PITCH_NAMES[tonic]} {mode}",
            "grid_shift_s": round(grid_shift, 3)}
