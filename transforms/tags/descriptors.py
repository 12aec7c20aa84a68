"""Signal descriptors for tagging: key and mode, vocal pitch -> gender, energy, brightness, tempo.

Pure functions of float arrays (``[channels, samples]`` or 1-D); librosa is
imported inside the functions. Every descriptor says how sure it is, and the
tag it feeds stays empty when it is not sure: gender comes only from a steady,
clearly periodic vocal pitch over several seconds, never from a single frame.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from transforms.core import spectral

PITCH_RATE = 16000
PITCH_HOP = 320  # 20 ms
PITCH_FRAME = 1024
F0_MIN, F0_MAX = 70.0, 900.0
MIN_PERIODICITY = 0.8  # normalised autocorrelation at the period for a frame to count as voiced
MIN_VOICED_SECONDS = 3.0
MALE_BELOW_HZ = 165.0  # median sung f0 below this: male
FEMALE_ABOVE_HZ = 230.0  # above this: female; in between (tenors, altos) pitch alone cannot tell
MIXED_LOW_HZ, MIXED_HIGH_HZ = 160.0, 230.0
MIN_GENDER_SHARE = 0.65  # this share of voiced frames must sit on the chosen side of the middle (197 Hz) ...
MAX_OTHER_SHARE = 0.15  # ... and fewer than this clearly in the other register
VOCAL_DOMINANT_DB = -6.0  # with the mix given, only frames where the stem is within this of the mix count
MIXED_SHARE = 0.3  # both a low (< 160 Hz) and a high (> 230 Hz) cluster this large: mixed
MIN_KEY_CORRELATION = 0.5

# Krumhansl-Kessler key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def estimate_key(mono: np.ndarray, sample_rate: int) -> Dict[str, object]:
    """Key and mode by Krumhansl-Schmuckler on the mean chroma; "" when the best match is weak.

    Returns {"key": "A", "mode": "minor", "key_correlation": r} (r: Pearson correlation
    of the chroma with the best of the 24 rotated profiles).
    """
    import librosa

    mono = _mono(mono)
    if mono.size < sample_rate or not np.any(mono):
        return {"key": "", "mode": "", "key_correlation": 0.0}
    chroma = spectral.chroma(mono, sample_rate, hop=2048, n_fft=4096)  # librosa's chroma_stft, blockwise
    profile = chroma.mean(axis=1)
    best = ("", "", -1.0)
    for tonic in range(12):
        for mode, ref in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            r = float(np.corrcoef(profile, np.roll(ref, tonic))[0, 1])
            if np.isfinite(r) and r > best[2]:
                best = (PITCH_NAMES[tonic], mode, r)
    key, mode, r = best
    if r < MIN_KEY_CORRELATION:
        key = mode = ""
    return {"key": key, "mode": mode, "key_correlation": round(max(r, 0.0), 3)}


def periodicity(frames: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of each frame (columns of ``frames``) at its own lag."""
    out = np.zeros(frames.shape[1], dtype=np.float64)
    width = frames.shape[0]
    for i, lag in enumerate(lags):
        lag = int(lag)
        if lag <= 0 or lag >= width // 2:
            continue
        a, b = frames[:width - lag, i], frames[lag:, i]
        denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
        out[i] = float(np.dot(a, b)) / denom if denom > 0 else 0.0
    return out


FRAME_CHUNK = 2000  # frames (40 s) per step of the per-frame maths: bounded memory, the same values


def frame_rms_of(frames: np.ndarray, chunk: int = FRAME_CHUNK) -> np.ndarray:
    """RMS (float64) of each column of ``frames``, ``chunk`` columns at a time (each column's sum runs
    over its rows in the same order whatever the chunk, so the values equal one whole-array pass)."""
    out = np.empty(frames.shape[1], dtype=np.float64)
    for a in range(0, frames.shape[1], chunk):
        out[a:a + chunk] = np.sqrt(np.mean(frames[:, a:a + chunk].astype(np.float64) ** 2, axis=0))
    return out


def yin_chunked(mono: np.ndarray, chunk: int = FRAME_CHUNK) -> np.ndarray:
    """``librosa.yin`` (centred, zero-padded) of the 16 kHz mono signal, ``chunk`` frames at a time:
    each frame sees the same samples, and YIN's maths is per frame."""
    import librosa

    padded = np.pad(mono, (PITCH_FRAME // 2, PITCH_FRAME // 2))
    count = 1 + (padded.size - PITCH_FRAME) // PITCH_HOP
    parts = []
    for a in range(0, count, chunk):
        b = min(count, a + chunk)
        seg = padded[a * PITCH_HOP:(b - 1) * PITCH_HOP + PITCH_FRAME]
        parts.append(librosa.yin(seg, fmin=F0_MIN, fmax=F0_MAX, sr=PITCH_RATE, frame_length=PITCH_FRAME,
                                 hop_length=PITCH_HOP, center=False))
    return np.concatenate(parts) if parts else np.zeros(0)


def vocal_pitch(vocals: np.ndarray, sample_rate: int, mix: Optional[np.ndarray] = None) -> np.ndarray:
    """f0 (Hz) of the confidently voiced 20 ms frames of a vocal stem (possibly empty).

    YIN on the 16 kHz mono stem; a frame counts when it is loud (within 25 dB of
    the stem's 95th-percentile level, above -50 dBFS) and clearly periodic
    (normalised autocorrelation >= ``MIN_PERIODICITY`` at the found period). With
    ``mix`` (same rate), a frame must also carry the vocal stem within
    ``VOCAL_DOMINANT_DB`` of the mix: a leaky stem's quiet bass and pads do not count.
    """
    import librosa

    from transforms.core.audio import resample

    mono = resample(_mono(vocals)[None, :], sample_rate, PITCH_RATE)[0] if sample_rate != PITCH_RATE \
        else _mono(vocals)
    if mono.size < PITCH_FRAME * 2:
        return np.zeros(0)
    frames = librosa.util.frame(np.pad(mono, (PITCH_FRAME // 2, PITCH_FRAME // 2)),
                                frame_length=PITCH_FRAME, hop_length=PITCH_HOP)
    rms = frame_rms_of(frames)
    if not np.any(rms > 0):
        return np.zeros(0)
    loud = (rms > 10 ** (-50 / 20)) & (rms >= np.percentile(rms, 95) * 10 ** (-25 / 20))
    if mix is not None:
        m = resample(_mono(mix)[None, :], sample_rate, PITCH_RATE)[0] if sample_rate != PITCH_RATE else _mono(mix)
        m = np.pad(m[:mono.size], (PITCH_FRAME // 2, PITCH_FRAME // 2 + max(0, mono.size - m.size)))
        mix_rms = frame_rms_of(librosa.util.frame(m, frame_length=PITCH_FRAME, hop_length=PITCH_HOP))[:rms.size]
        loud &= rms >= mix_rms * 10 ** (VOCAL_DOMINANT_DB / 20)
    if not loud.any():
        return np.zeros(0)
    f0 = yin_chunked(mono)
    n = min(f0.size, frames.shape[1])
    f0, frames, loud = f0[:n], frames[:, :n], loud[:n]
    idx = np.flatnonzero(loud)
    per = np.concatenate([periodicity(frames[:, part].astype(np.float64), np.round(PITCH_RATE / f0[part]))
                          for part in np.array_split(idx, max(1, -(-idx.size // FRAME_CHUNK)))])
    return f0[idx][per >= MIN_PERIODICITY]


def gender_from_pitch(f0: np.ndarray, hop_seconds: float = PITCH_HOP / PITCH_RATE) -> Dict[str, object]:
    """{"gender": "male"|"female"|"mixed"|"", "median_f0_hz", "voiced_seconds", "confidence"}.

    Empty gender when fewer than ``MIN_VOICED_SECONDS`` are voiced, the median
    sits between ``MALE_BELOW_HZ`` and ``FEMALE_ABOVE_HZ``, fewer than
    ``MIN_GENDER_SHARE`` of the frames are on the median's side of the middle, or
    ``MAX_OTHER_SHARE`` or more sit clearly in the other register. "mixed" when a low and a
    high cluster each hold at least ``MIXED_SHARE`` of the voiced frames.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = float(f0.size * hop_seconds)
    out: Dict[str, object] = {"gender": "", "median_f0_hz": None, "f0_p10_hz": None, "f0_p90_hz": None,
                              "voiced_seconds": round(voiced, 2), "confidence": 0.0}
    if voiced < MIN_VOICED_SECONDS:
        return out
    median = float(np.median(f0))
    low, high = float(np.mean(f0 < MIXED_LOW_HZ)), float(np.mean(f0 > MIXED_HIGH_HZ))
    out.update(median_f0_hz=round(median, 1), f0_p10_hz=round(float(np.percentile(f0, 10)), 1),
               f0_p90_hz=round(float(np.percentile(f0, 90)), 1))
    if low >= MIXED_SHARE and high >= MIXED_SHARE:
        out.update(gender="mixed", confidence=round(min(low, high) * 2, 3))
    elif median < MALE_BELOW_HZ or median > FEMALE_ABOVE_HZ:
        male = median < MALE_BELOW_HZ
        middle = 0.5 * (MALE_BELOW_HZ + FEMALE_ABOVE_HZ)
        agree = float(np.mean(f0 < middle)) if male else float(np.mean(f0 > middle))
        other = high if male else low  # frames clearly in the other register
        out["confidence"] = round(agree, 3)
        if agree >= MIN_GENDER_SHARE and other < MAX_OTHER_SHARE:
            out["gender"] = "male" if male else "female"
    return out


def energy_and_brightness(mono: np.ndarray, sample_rate: int) -> Dict[str, object]:
    """Loudness of the active frames, onset rate, spectral centroid and roll-off; coarse words.

    "energy": "high" with >= 3 onsets/s and active RMS >= -18 dBFS, "low" under 1 onset/s
    or active RMS < -30 dBFS, else "medium". "brightness": "bright" when the centroid
    is above 2.5 kHz, "dark" under 1.2 kHz, else "". Measured on the given mono signal.
    """
    import librosa

    mono = _mono(mono)
    if mono.size < sample_rate // 2 or not np.any(mono):
        return {"energy": "", "active_rms_db": None, "onset_rate": None, "brightness": "",
                "spectral_centroid_hz": None, "spectral_rolloff_hz": None}
    hop = 512
    # librosa's rms, onset strength, spectral centroid and roll-off, a block of STFT frames at a time
    rms = spectral.rms(mono, hop, 2048)[0]
    active = rms[rms > 10 ** (-60 / 20)]
    active_db = float(20 * np.log10(np.sqrt(np.mean(active ** 2)))) if active.size else -120.0
    (envelope,) = spectral.onset_strengths(mono, sample_rate, hop, [{}])
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=hop, units="time")
    rate = len(onsets) / (mono.size / sample_rate)
    centroid, rolloff = spectral.centroid_rolloff(mono, sample_rate, 2048, hop)
    weights = rms[:centroid.size] ** 2
    c = float(np.average(centroid, weights=weights)) if weights.sum() > 0 else float(np.mean(centroid))
    r = float(np.average(rolloff, weights=weights)) if weights.sum() > 0 else float(np.mean(rolloff))
    energy = "high" if rate >= 3.0 and active_db >= -18.0 else "low" if rate < 1.0 or active_db < -30.0 \
        else "medium"
    brightness = "bright" if c > 2500.0 else "dark" if c < 1200.0 else ""
    return {"energy": energy, "active_rms_db": round(active_db, 2), "onset_rate": round(rate, 3),
            "brightness": brightness, "spectral_centroid_hz": round(c, 1), "spectral_rolloff_hz": round(r, 1)}


def tempo(structure: Optional[dict], declared_bpm: Optional[float] = None) -> Dict[str, object]:
    """{"bpm": int | None, "source": "structure" | "metadata" | ""}: the measured tempo first."""
    bpm = (structure or {}).get("bpm")
    try:
        if bpm is not None and 20.0 <= float(bpm) <= 300.0:
            return {"bpm": int(round(float(bpm))), "source": "structure"}
    except (TypeError, ValueError):
        pass
    if declared_bpm is not None:
        return {"bpm": int(round(float(declared_bpm))), "source": "metadata"}
    return {"bpm": None, "source": ""}


def describe(mix16k: np.ndarray, vocals: Optional[np.ndarray], vocal_rate: int,
             structure: Optional[dict] = None, declared_bpm: Optional[float] = None,
             pure_music: bool = False, mix: Optional[np.ndarray] = None) -> Dict[str, object]:
    """All signal descriptors of a song: key, gender from pitch, energy, brightness, tempo.

    ``mix16k`` is the 16 kHz mono mix; ``vocals`` the vocal stem at ``vocal_rate``
    (None when separation did not run: then no gender), ``mix`` the mix at
    ``vocal_rate`` (gates the pitch frames to those the vocal stem dominates). A
    song judged pure music gets no gender either.
    """
    out: Dict[str, object] = {}
    out.update(estimate_key(mix16k, PITCH_RATE))
    out.update(energy_and_brightness(mix16k, PITCH_RATE))
    if vocals is not None and not pure_music:
        out["pitch"] = gender_from_pitch(vocal_pitch(vocals, vocal_rate, mix))
    else:
        out["pitch"] = gender_from_pitch(np.zeros(0))
    out["tempo"] = tempo(structure, declared_bpm)
    return out

