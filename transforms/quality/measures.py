"""Technical quality of a song and its musicality score and tier.

Pure functions of float arrays shaped ``[channels, samples]`` (no I/O, no Beam).
:func:`measure_quality` gives the measures of ``labels["quality"]``;
:func:`technical_score` folds them into a score in [0, 1]; :func:`quality_label`
adds the tier (``transforms.core.tiers``) and the conditioning tokens.

The score, documented
---------------------
Each measure is mapped to a sub-score in [0, 1] by a linear ramp (``SUBSCORES``):

=================  ======  ==============================================  =====================
measure            weight  1.0 (fine) ... 0.0 (defect)                      catches
=================  ======  ==============================================  =====================
loudness_lufs      1.5     -24..-7 LUFS fine; 0 at -42 and at -2 LUFS      quiet / crushed mixes
clipping_ratio     2.0     1 at 0; 0 at 0.5 % of samples clipped           hard clipping
true_peak_dbfs     0.5     1 at <= -0.5 dBTP; 0 at +4 dBTP                 inter-sample overs
bandwidth_hz       2.0     1 at >= 15 kHz; 0 at <= 4 kHz                   low bit rate, upsampled
silence_ratio      1.0     1 at <= 10 %; 0 at >= 60 % of 100 ms frames    dead air, broken files
dc_offset          0.5     1 at <= 0.005; 0 at >= 0.1                      DC-biased converters
stereo (fake)      0.5     1 for real stereo; 0.5 for mono / fake stereo   mono sources
stem_overlap       0.5     1 at <= 0.35; 0 at >= 0.9 (when stems exist)     separation leakage
=================  ======  ==============================================  =====================

The technical score is the weighted geometric mean of the sub-scores (each
floored at 0.01), so one bad defect pulls a song down more than a weighted
average would: a fully clipped song scores at most 0.01 ** (2 / 8.5) = 0.34.
With a learned aesthetic scorer (``--quality_scorer_weights``) the musicality
score is the mean of the technical score and the scorer's output.

Tiers come from ``--quality_tiers`` (four descending thresholds, default
``0.85,0.7,0.5,0.3``): score >= 0.85 is ``[Musicality-very-high]``, >= 0.7
``high``, >= 0.5 ``medium``, >= 0.3 ``low``, below that ``very-low``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from transforms.core.audio import FrameRms, as_2d
from transforms.core.sections import is_wordless, section_tag
from transforms.core.tiers import DEFAULT_THRESHOLDS, PURE_MUSIC, tier_for_score
from transforms.quality import blockwise as bw

LOUDNESS_FLOOR = -70.0  # BS.1770's absolute gate: anything quieter reads as -70 LUFS
SILENCE_DB = -60.0  # a 100 ms frame below this RMS (dBFS) is silent
CLIP_FULL_SCALE = 0.999  # |x| at or above this is clipped at full scale
CLIP_PLATEAU = 3  # or a run of this many equal samples at the song's own peak (clipped, then scaled)
BANDWIDTH_FLOOR_DB = 60.0  # bandwidth: last frequency within this many dB of the music band's level
FAKE_STEREO_WIDTH = 1e-4  # side / mid energy below this (-40 dB): the channels carry the same signal
LOSSY_CODECS = ("mp3", "aac", "vorbis", "opus", "wma", "ac3", "eac3", "amr", "mp2")

# measure -> (weight, x at sub-score 0, x at sub-score 1) for rising ramps; falling ramps swap the ends.
SUBSCORES = {
    "clipping_ratio": (2.0, 0.005, 0.0),
    "true_peak_dbfs": (0.5, 4.0, -0.5),
    "bandwidth_hz": (2.0, 4000.0, 15000.0),
    "silence_ratio": (1.0, 0.6, 0.1),
    "dc_offset": (0.5, 0.1, 0.005),
    "stem_overlap": (0.5, 0.9, 0.35),
}
LOUDNESS_WEIGHT, LOUDNESS_ZERO, LOUDNESS_FULL = 1.5, -42.0, -24.0
STEREO_WEIGHT, FAKE_STEREO_SCORE = 0.5, 0.5


# ------------------------------------------------------------------ measures
def _db(power: float, floor: float = -200.0) -> float:
    return bw.db(power, floor)


def _loudness(value: Optional[float]) -> float:
    return max(LOUDNESS_FLOOR, float(value)) if value is not None and np.isfinite(value) else LOUDNESS_FLOOR


def _peak_db(peak: float) -> float:
    return round(20.0 * math.log10(peak), 3) if peak > 0 else -200.0


def _feed(audio: np.ndarray, *accumulators) -> None:
    for acc in accumulators:
        acc.add(audio)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness in LUFS (pyloudnorm's filters and gating), floored at -70
    (silence, < 0.4 s)."""
    audio = as_2d(audio)
    meter = bw.Loudness(sample_rate, audio.shape[0], audio.shape[1])
    meter.add(audio)
    return _loudness(meter.result())


def true_peak_dbfs(audio: np.ndarray) -> float:
    """Peak of the 4x oversampled signal in dBFS (dBTP), window by window to bound memory."""
    audio = as_2d(audio)
    peak = bw.TruePeak(audio.shape[1])
    peak.add(audio)
    return _peak_db(peak.result())


def clipping_ratio(audio: np.ndarray) -> float:
    """Share of samples that are clipped: at full scale, or in flat runs at the song's own peak.

    The second case catches audio that was clipped and then turned down: a run of
    ``CLIP_PLATEAU`` or more equal samples at >= 99.9 % of the peak. Near-silent
    audio (peak < 0.05) has no clipping by definition.
    """
    audio = as_2d(audio)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 0.05:
        return 0.0
    count = bw.ClipCount(audio.shape[0], peak, CLIP_FULL_SCALE, CLIP_PLATEAU)
    count.add(audio)
    return float(count.ratio())


def long_term_spectrum(audio: np.ndarray, sample_rate: int) -> Tuple[np.ndarray, np.ndarray]:
    """(frequencies, power in dB) of the mono mixdown's long-term average spectrum (Welch)."""
    spectrum = bw.Spectrum(sample_rate)
    spectrum.add(as_2d(audio).mean(axis=0))
    return spectrum.result()


def bandwidth_from_spectrum(freqs: np.ndarray, level: np.ndarray, floor_db: float = BANDWIDTH_FLOOR_DB) -> float:
    """Highest frequency whose long-term level is within ``floor_db`` of the music band's level.

    The reference is the median level from 200 Hz to 4 kHz; the spectrum is smoothed
    over about 200 Hz so a single tone or a noise bump does not count. Low-bit-rate
    encoders and upsampled files leave nothing above their cut-off, so this reads the
    cut-off (16 kHz for a 128 kbit/s MP3, 11 kHz for a 22.05 kHz source).
    """
    width = max(1, int(round(200.0 / (freqs[1] - freqs[0]))))
    padded = np.pad(level, (width // 2, width - 1 - width // 2), mode="edge")  # dB: zero padding would be loud
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")
    band = (freqs >= 200.0) & (freqs <= 4000.0)
    ref = float(np.median(smooth[band])) if band.any() else float(smooth.max())
    above = np.flatnonzero(smooth >= max(ref - floor_db, -250.0))
    return round(float(freqs[above[-1]]), 1) if above.size else 0.0


def bandwidth_hz(audio: np.ndarray, sample_rate: int, floor_db: float = BANDWIDTH_FLOOR_DB) -> float:
    """:func:`bandwidth_from_spectrum` of the audio's long-term spectrum."""
    return bandwidth_from_spectrum(*long_term_spectrum(audio, sample_rate), floor_db=floor_db)


def silence_from_rms(rms: np.ndarray, threshold_db: float = SILENCE_DB) -> float:
    """Share of frames whose RMS is below ``threshold_db`` dBFS (1.0 without frames)."""
    return float(np.mean(rms < 10.0 ** (threshold_db / 20.0))) if rms.size else 1.0


def silence_ratio(audio: np.ndarray, sample_rate: int, threshold_db: float = SILENCE_DB,
                  hop_s: float = 0.1) -> float:
    """Share of 100 ms frames (mono mixdown) whose RMS is below ``threshold_db`` dBFS."""
    from transforms.core.audio import frame_rms

    return silence_from_rms(frame_rms(audio, sample_rate, hop_s), threshold_db)


def dc_offset(audio: np.ndarray) -> float:
    """Largest absolute channel mean."""
    moments = bw.Moments(as_2d(audio).shape[0])
    moments.add(as_2d(audio))
    return moments.dc()


def stereo_from_moments(m: bw.Moments, channels: int) -> Dict[str, float]:
    """Side / mid energy ("stereo_width"), the channels' correlation, and the fake-stereo flag."""
    if channels < 2:
        return {"stereo_width": 0.0, "stereo_correlation": 1.0, "fake_stereo": True}
    width = m.side / m.mid if m.mid > 0 else (0.0 if m.side == 0 else float("inf"))
    denom = math.sqrt(m.left * m.right)
    corr = m.cross / denom if denom > 0 else 1.0
    width = min(width, 1e6)
    return {"stereo_width": round(width, 6), "stereo_correlation": round(corr, 6),
            "fake_stereo": bool(width < FAKE_STEREO_WIDTH)}


def stereo_measures(audio: np.ndarray) -> Dict[str, float]:
    """:func:`stereo_from_moments` of an array."""
    audio = as_2d(audio)
    moments = bw.Moments(audio.shape[0])
    moments.add(audio)
    return stereo_from_moments(moments, audio.shape[0])


def overlap_window(n: int, sample_rate: int, max_seconds: float = 120.0) -> Tuple[int, int]:
    """(start, length) of the middle ``max_seconds`` of ``n`` samples: what :func:`stem_overlap` uses."""
    keep = int(max_seconds * sample_rate)
    return max(0, (n - keep) // 2), keep


def stem_overlap(vocals: np.ndarray, accompaniment: np.ndarray, sample_rate: int, n_fft: int = 2048,
                 max_seconds: float = 120.0) -> Optional[float]:
    """Separation leakage: spectral similarity of the vocal and accompaniment stems, 0..1.

    Per STFT frame, the cosine similarity of the two magnitude spectra, averaged with
    the vocal frame's energy as weight. Clean stems occupy different bins (low
    overlap); a vocal stem that carries the accompaniment (or the reverse) scores
    high. The middle ``max_seconds`` are used. None when the vocal stem is silent.
    """
    v = as_2d(vocals).mean(axis=0)
    a = as_2d(accompaniment).mean(axis=0)
    start, keep = overlap_window(min(v.size, a.size), sample_rate, max_seconds)
    return overlap_score(v[start:start + keep], a[start:start + keep], n_fft)


def overlap_score(v: np.ndarray, a: np.ndarray, n_fft: int = 2048) -> Optional[float]:
    """:func:`stem_overlap` of two mono windows of the same length (1-D)."""
    import librosa

    if v.size < n_fft:
        return None
    sv = np.abs(librosa.stft(v, n_fft=n_fft, hop_length=n_fft))
    sa = np.abs(librosa.stft(a, n_fft=n_fft, hop_length=n_fft))
    nv, na = np.linalg.norm(sv, axis=0), np.linalg.norm(sa, axis=0)
    weight = nv ** 2
    ok = (nv > 0) & (na > 0)
    if weight[ok].sum() <= 0:
        return None
    cos = np.sum(sv * sa, axis=0)[ok] / (nv[ok] * na[ok])
    return round(float(np.sum(cos * weight[ok]) / weight[ok].sum()), 4)


def _section_kind(section: dict) -> str:
    """"vocal" for verse / chorus / bridge sections, "instrumental" for the wordless ones."""
    return "instrumental" if is_wordless(section_tag(section)) else "vocal"


def section_spans(sections: Sequence[dict], sample_rate: int, n: int) -> list:
    """[(kind, first sample, end sample)] of the sections, clipped to ``n`` samples."""
    spans = []
    for sec in sections or []:
        kind = _section_kind(sec)
        a = max(0, int(float(sec["start"]) * sample_rate))
        b = min(n, int(float(sec["end"]) * sample_rate))
        if kind and b > a:
            spans.append((kind, a, b))
    return spans


def leakage_from_energy(energy: dict, sample_rate: int, min_seconds: float = 2.0) -> Optional[float]:
    """Vocal-stem level in instrumental sections minus its level in sung sections (dB), from
    :class:`blockwise.SectionEnergy`'s sums; None without at least ``min_seconds`` of each."""
    vocal, inst = energy.get("vocal", [0.0, 0]), energy.get("instrumental", [0.0, 0])
    if min(vocal[1], inst[1]) < min_seconds * sample_rate or vocal[0] <= 0:
        return None
    inst_db = max(_db(inst[0] / inst[1], floor=-120.0), -120.0)
    sung_db = max(_db(vocal[0] / vocal[1], floor=-120.0), -120.0)
    return round(inst_db - sung_db, 2)


def section_leakage_db(vocals: np.ndarray, sample_rate: int, sections: Sequence[dict],
                       min_seconds: float = 2.0) -> Optional[float]:
    """Vocal-stem level in instrumental sections minus its level in sung sections (dB).

    Around -30 dB or lower for clean stems; near 0 when the vocal stem carries the
    band through the intro and the outro. None without at least ``min_seconds`` of each.
    """
    mono = as_2d(vocals).mean(axis=0)
    energy = bw.SectionEnergy(section_spans(sections, sample_rate, mono.size))
    energy.add(mono)
    return leakage_from_energy(energy.energy, sample_rate, min_seconds)


def _source_fields(out: dict, sample_rate: int, source: Optional[dict]) -> None:
    source = source or {}
    src_rate = int(source.get("sample_rate") or 0)
    codec = str(source.get("codec") or "")
    if int(source.get("channels") or 0) == 1:
        out["fake_stereo"] = True
    nyquist = min(src_rate or sample_rate, sample_rate) / 2.0
    out.update({
        "source_sample_rate": src_rate,
        "source_codec": codec,
        "lossy_source": any(codec.lower().startswith(c) for c in LOSSY_CODECS),
        "bandwidth_ratio": round(out["bandwidth_hz"] / nyquist, 4) if nyquist > 0 else 0.0,
    })


def _mix_measures(blocks, sample_rate: int, channels: int, total: int) -> dict:
    """Every mix measure in one pass over ``blocks()`` (an iterable of [channels, n] blocks), plus a
    second pass for the clipping plateaus when the mix is loud enough to have any."""
    loudness, peak = bw.Loudness(sample_rate, channels, total), bw.TruePeak(total)
    moments, spectrum, frames = bw.Moments(channels), bw.Spectrum(sample_rate), FrameRms(sample_rate)
    for block in blocks():
        _feed(block, loudness, peak, moments)
        mono = block.mean(axis=0)
        spectrum.add(mono)
        frames.add(mono[None, :])
    clipping = 0.0
    if moments.peak >= 0.05:
        count = bw.ClipCount(channels, moments.peak, CLIP_FULL_SCALE, CLIP_PLATEAU)
        for block in blocks():
            count.add(block)
        clipping = float(count.ratio())
    out: Dict[str, Any] = {
        "loudness_lufs": round(_loudness(loudness.result()), 2),
        "true_peak_dbfs": _peak_db(peak.result()),
        "sample_peak_dbfs": round(20 * math.log10(max(moments.peak, 1e-10)), 3),
        "clipping_ratio": round(clipping, 6),
        "bandwidth_hz": bandwidth_from_spectrum(*spectrum.result()),
        "silence_ratio": round(silence_from_rms(frames.result()), 4),
        "dc_offset": round(moments.dc(), 6),
    }
    out.update(stereo_from_moments(moments, channels))
    return out


def measure_quality(mix: np.ndarray, sample_rate: int, vocals: Optional[np.ndarray] = None,
                    accompaniment: Optional[np.ndarray] = None, source: Optional[dict] = None,
                    sections: Sequence[dict] = ()) -> dict:
    """The measures of ``labels["quality"]`` (without score and tier; see :func:`quality_label`).

    ``mix``, ``vocals`` and ``accompaniment`` share ``sample_rate``; ``source`` is a dict
    with the source file's "sample_rate", "codec" and "channels" (may be empty).
    Whether the song has vocals is the tags stage's decision (``labels["tags"]["vocals"]``).
    """
    mix = as_2d(mix)
    out = _mix_measures(lambda: iter([mix]), sample_rate, mix.shape[0], mix.shape[1])
    _source_fields(out, sample_rate, source)
    if vocals is not None:
        vocals = as_2d(vocals)
        out["vocal_leakage_db"] = section_leakage_db(vocals, sample_rate, sections)
        out["stem_overlap"] = (stem_overlap(vocals, accompaniment, sample_rate)
                               if accompaniment is not None else None)
    else:
        out.update({"vocal_leakage_db": None, "stem_overlap": None})
    return out


def ramp(x: float, zero_at: float, one_at: float) -> float:
    """Linear 0..1 between ``zero_at`` and ``one_at`` (either order), clipped."""
    if zero_at == one_at:
        return 1.0 if x >= one_at else 0.0
    return float(min(1.0, max(0.0, (x - zero_at) / (one_at - zero_at))))


def subscores(measures: dict) -> Dict[str, Tuple[float, float]]:
    """{name: (sub-score, weight)} for the measures present (see the module docstring)."""
    out: Dict[str, Tuple[float, float]] = {}
    lufs = measures.get("loudness_lufs")
    if lufs is not None:
        out["loudness"] = (min(ramp(lufs, LOUDNESS_ZERO, LOUDNESS_FULL), ramp(lufs, -2.0, -7.0)), LOUDNESS_WEIGHT)
    for name, (weight, zero_at, one_at) in SUBSCORES.items():
        value = measures.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            out[name] = (ramp(float(value), zero_at, one_at), weight)
    if "fake_stereo" in measures:
        out["stereo"] = (FAKE_STEREO_SCORE if measures["fake_stereo"] else 1.0, STEREO_WEIGHT)
    return out


def technical_score(measures: dict) -> float:
    """Weighted geometric mean of the sub-scores (each floored at 0.01), in [0, 1]."""
    parts = subscores(measures)
    total = sum(w for _, w in parts.values())
    if total <= 0:
        return 0.0
    return round(math.exp(sum(w * math.log(max(s, 0.01)) for s, w in parts.values()) / total), 4)


def quality_label(measures: dict, tiers: Sequence[float] = DEFAULT_THRESHOLDS,
                  learned_score: Optional[float] = None) -> dict:
    """``labels["quality"]``: the measures plus sub-scores, score, tier, conditioning tags."""
    tech = technical_score(measures)
    score = tech if learned_score is None else round(0.5 * (tech + float(learned_score)), 4)
    tier = tier_for_score(score, tiers)
    label = dict(measures)
    label.update({
        "subscores": {k: round(s, 4) for k, (s, _) in subscores(measures).items()},
        "technical_score": tech,
        "learned_score": None if learned_score is None else round(float(learned_score), 4),
        "musicality_score": score,
        "musicality": tier,
        "tiers": list(tiers),
        "conditioning": [tier] + ([PURE_MUSIC] if measures.get("pure_music") else []),
    })
    return label
