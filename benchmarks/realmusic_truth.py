"""Pure parts of songshard's real-music evaluation set: tempo from MIDI / tracker headers, mixing at a
vocal-to-accompaniment ratio, key estimate for in-key singing, lyric layout and the truth record.

No I/O beyond bytes handed in, no external tools: everything here is tested on tiny synthetic inputs
(``tests/test_realmusic_builder.py``). ``benchmarks/realmusic.py`` builds the set with these.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

TRUTH_VERSION = 1
COARSE_GENRES = ("rock", "metal", "pop", "electronic", "classical", "orchestral", "ambient", "folk", "jazz",
                 "blues", "hiphop", "country", "soul", "latin", "world", "chiptune", "soundtrack")
# Krumhansl-Kessler key profiles (tonic first).
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


# ---------------------------------------------------------------- MIDI
def _varlen(data: bytes, i: int) -> Tuple[int, int]:
    """(value, next index) of a MIDI variable-length quantity at ``data[i]``."""
    value = 0
    while True:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, i


def midi_tempo_map(data: bytes) -> dict:
    """{"division", "tempos": [(tick, bpm)], "meters": [(tick, num, den)], "last_tick"} of a Standard
    MIDI File's bytes (all tracks merged, sorted by tick; tempo 120 bpm at tick 0 when none is given).

    Raises ValueError on a non-MIDI file or an SMPTE time division (no beat grid to speak of)."""
    if data[:4] != b"MThd":
        raise ValueError("not a Standard MIDI File (no MThd)")
    hlen = struct.unpack(">I", data[4:8])[0]
    _fmt, ntracks, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise ValueError("SMPTE time division: no tempo grid")
    tempos, meters, last, i = [], [], 0, 8 + hlen
    for _ in range(ntracks):
        if data[i:i + 4] != b"MTrk":
            raise ValueError(f"expected MTrk at byte {i}")
        end = i + 8 + struct.unpack(">I", data[i + 4:i + 8])[0]
        i, tick, status = i + 8, 0, 0
        while i < end:
            delta, i = _varlen(data, i)
            tick += delta
            if data[i] == 0xFF:
                kind = data[i + 1]
                length, i = _varlen(data, i + 2)
                if kind == 0x51 and length == 3:
                    tempos.append((tick, 60e6 / int.from_bytes(data[i:i + 3], "big")))
                elif kind == 0x58 and length >= 2:
                    meters.append((tick, data[i], 2 ** data[i + 1]))
                i += length
            elif data[i] in (0xF0, 0xF7):
                length, i = _varlen(data, i + 1)
                i += length
            else:
                if data[i] & 0x80:  # otherwise running status: the byte is the first data byte
                    status, i = data[i], i + 1
                i += 1 if status >> 4 in (0xC, 0xD) else 2
        last, i = max(last, tick), end
    tempos = sorted(tempos) if tempos and tempos[0][0] == 0 else [(0, 120.0)] + sorted(tempos)
    return {"division": division, "tempos": tempos, "meters": sorted(meters), "last_tick": last}


def tick_seconds(tick: float, division: int, tempos: Sequence[Tuple[int, float]]) -> float:
    """Seconds at ``tick`` under the tempo map [(tick, bpm)] (sorted, first at tick 0)."""
    t, prev_tick, bpm = 0.0, 0, tempos[0][1]
    for at, new_bpm in tempos[1:]:
        if at >= tick:
            break
        t += (at - prev_tick) / division * 60.0 / bpm
        prev_tick, bpm = at, new_bpm
    return t + (tick - prev_tick) / division * 60.0 / bpm


def midi_beats(tempo_map: dict, until_s: float) -> List[float]:
    """Quarter-note beat times (s) of a tempo map from tick 0 up to ``until_s`` and the last event."""
    div, tempos = tempo_map["division"], tempo_map["tempos"]
    out, k = [], 0
    while k * div <= tempo_map["last_tick"]:
        t = tick_seconds(k * div, div, tempos)
        if t > until_s:
            break
        out.append(round(t, 6))
        k += 1
    return out


def midi_downbeats(tempo_map: dict, until_s: float) -> List[float]:
    """Bar-start times (s) of a tempo map from tick 0 up to ``until_s`` and the last event: bars follow
    the time-signature events (4/4 until the first one); a signature change starts a new bar."""
    div, tempos, meters = tempo_map["division"], tempo_map["tempos"], tempo_map.get("meters") or []
    out, tick, k = [], 0.0, 0
    num, den = 4, 4
    while tick <= tempo_map["last_tick"]:
        while k < len(meters) and meters[k][0] <= tick:
            num, den = meters[k][1], meters[k][2]
            k += 1
        t = tick_seconds(tick, div, tempos)
        if t > until_s:
            break
        out.append(round(t, 6))
        nxt = tick + num * div * 4.0 / den
        if k < len(meters) and tick < meters[k][0] < nxt:  # a signature change starts a new bar
            nxt = float(meters[k][0])
        tick = nxt
    return out


def dominant_bpm(tempo_map: dict, until_s: float) -> float:
    """The tempo (bpm) in force for the longest time before ``until_s``."""
    div, tempos = tempo_map["division"], tempo_map["tempos"]
    spans: Dict[float, float] = {}
    for k, (tick, bpm) in enumerate(tempos):
        start = tick_seconds(tick, div, tempos)
        stop = tick_seconds(tempos[k + 1][0], div, tempos) if k + 1 < len(tempos) else until_s
        spans[round(bpm, 3)] = spans.get(round(bpm, 3), 0.0) + max(0.0, min(stop, until_s) - start)
    return max(spans, key=spans.get)


def comb_phase(envelope: np.ndarray, frame_rate: float, beats: Sequence[float], period: float,
               steps: int = 40) -> float:
    """The shift (s, in [0, period)) that puts a beat grid on the strongest onsets: the mean of
    ``envelope`` (an onset strength per frame at ``frame_rate`` frames / s) at ``beats + shift`` is
    largest. Used where a chart's tempo is right but its grid's phase is not the recording's."""
    env = np.asarray(envelope, dtype=np.float64)
    b = np.asarray(beats, dtype=np.float64)
    shifts = np.arange(steps) * period / steps
    score = [env[np.clip(np.round((b + s) * frame_rate).astype(int), 0, env.size - 1)].mean() for s in shifts]
    return float(shifts[int(np.argmax(score))])


# ---------------------------------------------------------------- tracker modules
def module_header(data: bytes) -> dict:
    """{"format", "speed", "tempo"} from a tracker module's header: XM and IT store the initial
    speed (ticks per row) and tempo; S3M too; a ProTracker MOD stores neither (speed 6, tempo 125
    unless its patterns say otherwise). The musical bpm also needs the rows per beat, which no
    header stores: ``tracker_bpm`` assumes one.

    Raises ValueError for bytes of no known module format."""
    if data[:17] == b"Extended Module: ":
        return {"format": "xm", "speed": int.from_bytes(data[76:78], "little"),
                "tempo": int.from_bytes(data[78:80], "little")}
    if data[:4] == b"IMPM":
        return {"format": "it", "speed": data[0x32], "tempo": data[0x33]}
    if data[0x2C:0x30] == b"SCRM":
        return {"format": "s3m", "speed": data[0x31], "tempo": data[0x32]}
    if len(data) > 1084 and data[1080:1084] in (b"M.K.", b"M!K!", b"FLT4", b"4CHN", b"6CHN", b"8CHN"):
        return {"format": "mod", "speed": 6, "tempo": 125}
    raise ValueError("unknown module format")


def tracker_bpm(speed: int, tempo: int, rows_per_beat: int = 4) -> float:
    """Beats per minute of a tracker song: a row lasts speed * 2.5 / tempo seconds."""
    if speed <= 0 or tempo <= 0 or rows_per_beat <= 0:
        raise ValueError("speed, tempo and rows_per_beat must be positive")
    return 60.0 / (rows_per_beat * speed * 2.5 / tempo)


# ---------------------------------------------------------------- mixing
def active_mask(x: np.ndarray, sr: int, rel_db: float = -30.0, frame_s: float = 0.05) -> np.ndarray:
    """Boolean per-sample mask of the frames of mono-or-[C, N] ``x`` louder than ``rel_db`` below
    its loudest frame (all False for digital silence)."""
    mono = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1]).mean(axis=0)
    hop = max(1, int(frame_s * sr))
    n = -(-mono.size // hop)
    padded = np.zeros(n * hop)
    padded[:mono.size] = mono
    rms = np.sqrt(np.mean(padded.reshape(n, hop) ** 2, axis=1))
    if rms.max() <= 0:
        return np.zeros(mono.size, dtype=bool)
    on = rms > rms.max() * 10 ** (rel_db / 20)
    return np.repeat(on, hop)[:mono.size]


def mix_at_snr(vocals: np.ndarray, accompaniment: np.ndarray, snr_db: float, sr: int,
               peak_dbfs: float = -1.0) -> Dict[str, np.ndarray]:
    """{"vocals", "accompaniment", "mix", "gain"}: the vocals scaled so that, over the samples where
    they are audible, vocal power / accompaniment power = ``snr_db``; then all three scaled together
    so the mix peaks at ``peak_dbfs``. Same shapes in and out ([C, N], equal); mix == vocals +
    accompaniment exactly (float64). Raises ValueError on shape mismatch or silent input."""
    v = np.asarray(vocals, dtype=np.float64)
    a = np.asarray(accompaniment, dtype=np.float64)
    if v.shape != a.shape:
        raise ValueError(f"stem shapes differ: {v.shape} vs {a.shape}")
    on = active_mask(v, sr)
    if not on.any():
        raise ValueError("vocals are silent")
    p_v = np.mean(v[..., on] ** 2)
    p_a = np.mean(a[..., on] ** 2)
    if p_a <= 0:
        raise ValueError("accompaniment is silent where the vocals are")
    g = np.sqrt(p_a / p_v * 10 ** (snr_db / 10))
    v = v * g
    peak = np.max(np.abs(v + a))
    norm = 10 ** (peak_dbfs / 20) / peak
    v, a = v * norm, a * norm
    return {"vocals": v, "accompaniment": a, "mix": v + a, "gain": np.float64(g * norm)}


def measured_snr_db(vocals: np.ndarray, accompaniment: np.ndarray, sr: int) -> float:
    """Vocal-to-accompaniment power ratio (dB) over the samples where the vocals are audible."""
    on = active_mask(vocals, sr)
    return float(10 * np.log10(np.mean(np.asarray(vocals, float)[..., on] ** 2)
                               / np.mean(np.asarray(accompaniment, float)[..., on] ** 2)))


# ---------------------------------------------------------------- key, lyric layout
def estimate_key(chroma_mean: Sequence[float]) -> Tuple[int, str]:
    """(tonic pitch class 0-11, "major"|"minor") best correlated with a 12-bin mean chroma."""
    c = np.asarray(chroma_mean, dtype=np.float64)
    best = max(((np.corrcoef(c, np.roll(prof, tonic))[0, 1], tonic, mode)
                for mode, prof in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)) for tonic in range(12)))
    return best[1], best[2]


def line_slot_beats(bpm: float) -> int:
    """Beats per sung line: 8 at moderate tempi, 16 above 140 bpm (a line lasts 2.6-5 s)."""
    return 16 if bpm > 140 else 8


def lyric_layout(n_lines: int, first: float, slot: float, lines_per_section: int = 4,
                 gap_slots: int = 1) -> List[Tuple[float, int]]:
    """[(start seconds, section index)] of ``n_lines`` sung lines: sections of ``lines_per_section``
    lines, one slot after another, with ``gap_slots`` empty slots between sections."""
    out, t = [], first
    for k in range(n_lines):
        if k and k % lines_per_section == 0:
            t += gap_slots * slot
        out.append((round(t, 6), k // lines_per_section))
        t += slot
    return out


# ---------------------------------------------------------------- truth record
def truth_record(*, name: str, file: str, duration: float, source: dict, has_vocals: bool,
                 vocals_kind: str, gender: Optional[str] = None, language: Optional[str] = None,
                 lyrics: Optional[List[dict]] = None, genre: Optional[str] = None, genre_basis: str = "",
                 bpm: Optional[float] = None, bpm_basis: str = "", beats: Optional[List[float]] = None,
                 downbeats: Optional[List[float]] = None, stems: Optional[Dict[str, str]] = None, extra: Optional[dict] = None) -> dict:
    """The NAME.truth.json record (what an evaluator compares against; never read by songshard).

    ``vocals_kind``: "none", "real" (a recorded singer) or "synthetic" (festival / espeak-ng over a
    real instrumental). ``source``: {"package", "files", "licence", "copyright", ...}. ``lyrics``:
    [{"start", "end", "text"}] when known. Raises ValueError on an unknown coarse genre, a vocal
    song without a vocals kind, or a gender on an instrumental."""
    if genre is not None and genre not in COARSE_GENRES:
        raise ValueError(f"genre {genre!r} is not one of {COARSE_GENRES}")
    if has_vocals != (vocals_kind != "none"):
        raise ValueError("has_vocals and vocals_kind disagree")
    if gender is not None and not has_vocals:
        raise ValueError("an instrumental has no vocal gender")
    rec = {"version": TRUTH_VERSION, "name": name, "file": file, "duration": round(float(duration), 3),
           "has_vocals": bool(has_vocals), "vocals_kind": vocals_kind, "gender": gender, "language": language,
           "lyrics": lyrics or [], "lyrics_text": " ".join(ln["text"] for ln in lyrics or []),
           "genre": genre, "genre_basis": genre_basis, "bpm": None if bpm is None else round(float(bpm), 3),
           "bpm_basis": bpm_basis, "beats": beats or [], "downbeats": downbeats or [], "licence": source.get("licence", ""),
           "source": source, "stems": stems or {}}
    rec.update(extra or {})
    return rec
