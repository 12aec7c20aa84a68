"""Metrical level of a beat grid: is the tracker's tempo the one people count, or a half, 2/3... of it?

Beat trackers lock onto a periodic level of the music, not always the beat:
170 bpm metal comes out at 85 or 113 (2:3), a 70 bpm ballad at 140 or 93
(4:3). Given a tracker's beats and onset envelopes of the song (full band,
below 200 Hz where kick and bass land, below 4 kHz where the snare lands and
hi-hats do not), :func:`decide` scores the candidate levels x1/2, x2/3, x3/4,
x1, x4/3, x3/2, x2 of the tracker's tempo on

* periodicity: autocorrelation of the onset envelopes at the candidate period
  and at twice and four times it (half bar, bar);
* contrast: pulses stronger than the points half-way between them (a level
  whose off-beats are as strong as its beats is too slow);
* uniformity: every pulse strong, not every other one (a level whose pulses
  alternate strong / weak is too fast);
* dominance: each pulse the strongest onset of its span (a grid at 2:3 or
  3:4 of the beat has stronger onsets between its pulses);
* downbeat: a bar-long accent pattern (3 or 4 pulses) on the candidate grid;
* prior: log-normal tempo prior of popular music centred on 120 bpm;
* tempo CNN (when given, :class:`ModelEvidence`): the mass a tempo classifier
  trained on annotated songs (``transforms.structure.tempo_cnn``) puts within
  2 % of the candidate; its peak also joins the candidates when no ratio of
  the tracker's tempo lies near it (a tracker locked 5 % off the beat);
* genre: metal is counted fast. The tagger's "metal" score tilts the prior
  towards faster levels (``metal x log2(bpm / 120)``);
* (salience, the mean accent on the pulses, is measured but weighted 0);

and re-derives the beat times at the chosen level. :func:`score_levels` is the
decision on numbers alone (no audio), :func:`level_evidence` the measurements,
:func:`apply_level` the whole step for a backend's (beats, downbeats, meter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# candidate ratio -> phases (in tracker beats) its grid may start at
RATIOS: Dict[float, Tuple[float, ...]] = {
    0.5: (0.0, 1.0), 2 / 3: (0.0, 0.5, 1.0), 0.75: (0.0, 1 / 3, 2 / 3, 1.0), 1.0: (0.0,),
    4 / 3: (0.0, 0.25, 0.5), 1.5: (0.0, 1 / 3, 2 / 3), 2.0: (0.0,)}
PRIOR_CENTRE = 120.0
PRIOR_SIGMA = 0.7  # octaves; popular music mostly lies in 70-200 bpm
MIN_BPM, MAX_BPM = 50.0, 230.0  # candidates outside are dropped
LOW_FMAX = 200.0
BODY_FMAX = 4000.0
LOW_WEIGHT = 1.0  # the pulse accent is LOW_WEIGHT x low band + full band
HOP = 512
COMB = (1, 2, 4)  # multiples of the candidate period whose autocorrelation counts
# Weights of the log-evidence terms: a grid search over 24 synthetic drum songs (12 tempi / styles, 2 seeds)
# and 13 real songs (/work/data/realmusic), each with dsp and beatnet beats. Salience and "stay" (a bonus for
# the tracker's own level) earned nothing there and are kept at 0 for experiments. See benchmarks/eval_tempo.py.
# "cnn" and "metal" (model evidence, :class:`ModelEvidence`): a grid search with the others fixed on 39 real songs
# of known tempo (benchmarks/tempo_level_cv.py, which also prints the leave-one-out estimate).
WEIGHTS = {"periodicity": 2.0, "salience": 0.0, "contrast": 0.5, "uniformity": 0.5, "dominance": 2.0,
           "downbeat": 0.1, "prior": 0.5, "stay": 0.0, "cnn": 0.5, "metal": 4.0}
CNN_FLOOR = 1e-4  # the tempo CNN's support is clipped to [CNN_FLOOR, 1] before the log
CONTRAST_SLOPE = 1.5  # contrast -> credit 0.5 + 1.5 x contrast: full credit from 1/3 up
FLOOR = 0.05  # evidence values are clipped to [FLOOR, 1] before the log: one bad term cannot veto alone


@dataclass(frozen=True)
class Envelopes:
    """Onset envelopes of one song, ``fps`` frames a second: ``full`` band, ``low`` band (<= 200 Hz:
    kick, bass), ``body`` (<= 4 kHz: kick, snare, bass, voices; not the hi-hats and cymbals)."""

    full: np.ndarray
    low: np.ndarray
    fps: float
    body: Optional[np.ndarray] = None


@dataclass(frozen=True)
class ModelEvidence:
    """Song-level evidence from models: ``tempo`` a tempo distribution over 30-285 bpm (one class a bpm,
    ``transforms.structure.tempo_cnn``), ``metal`` the tagger's metal score (0-1). Either may be None."""

    tempo: Optional[np.ndarray] = None
    metal: Optional[float] = None


@dataclass(frozen=True)
class TempoDecision:
    """The chosen level: ``bpm``, ``confidence`` (0-1), ``ratio`` to the tracker, its ``beats``,
    and every candidate's evidence and score (``candidates``, best first)."""

    bpm: float
    confidence: float
    ratio: float
    beats: np.ndarray
    candidates: List[dict] = field(default_factory=list)


def accent_envelopes(y: np.ndarray, sample_rate: int, hop: int = HOP) -> Envelopes:
    """Full-band, low-band (<= 200 Hz) and body (<= 4 kHz) onset strength of mono audio ``y``, each
    scaled to mean 1, at ``sample_rate / hop`` frames a second."""
    from transforms.core import spectral

    # librosa's onset_strength for the three bands, from one blockwise pass over the STFT
    full, low, body = spectral.onset_strengths(y, sample_rate, hop, [{}, {"fmax": LOW_FMAX, "n_mels": 32},
                                                                     {"fmax": BODY_FMAX}])
    return Envelopes(*(e / (e.mean() + 1e-9) for e in (full, low)), sample_rate / hop, body / (body.mean() + 1e-9))


def pulse_accent(env: Envelopes) -> np.ndarray:
    """The envelope the pulse-level evidence samples: low band (kick, bass) weighted in with the full band."""
    return LOW_WEIGHT * env.low + env.full


def tempo_prior(bpm: float, centre: float = PRIOR_CENTRE, sigma: float = PRIOR_SIGMA) -> float:
    """Log-normal prior of a tempo, 1.0 at ``centre``; ``sigma`` in octaves."""
    return float(np.exp(-0.5 * (np.log2(bpm / centre) / sigma) ** 2))


def level_grid(beats: Sequence[float], ratio: float, phase: float = 0.0) -> np.ndarray:
    """Pulse times at ``ratio`` x the tracker's tempo: beat index ``phase + n / ratio`` mapped to time.

    Time follows the tracker's beats piecewise linearly (tempo drift is kept);
    pulses stay within the tracked span. Fewer than 2 beats give an empty grid.
    """
    beats = np.asarray(beats, dtype=float)
    if len(beats) < 2:
        return np.array([])
    index = np.arange(phase, len(beats) - 1 + 1e-9, 1.0 / ratio)
    return np.interp(index, np.arange(len(beats)), beats)


def periodicity(env: np.ndarray, fps: float, period: float, tolerance: float = 0.03) -> float:
    """Normalised autocorrelation (-1..1) of ``env`` at lag ``period`` s, best within +-``tolerance``."""
    x = np.asarray(env, dtype=float) - np.mean(env)
    energy = float(x @ x)
    lo, hi = int(np.floor(period * fps * (1 - tolerance))), int(np.ceil(period * fps * (1 + tolerance)))
    if energy <= 0 or lo < 1 or hi >= len(x) // 2:
        return 0.0
    return max(float(x[:-lag] @ x[lag:]) / energy * len(x) / (len(x) - lag) for lag in range(lo, hi + 1))


def accents_at(env: np.ndarray, fps: float, times: np.ndarray, reach: int = 1) -> np.ndarray:
    """Envelope maximum within +-``reach`` frames of each time (0 beyond the envelope)."""
    frames = np.round(np.asarray(times) * fps).astype(int)
    out = np.zeros(len(frames))
    for k, f in enumerate(frames):
        if 0 <= f < len(env):
            out[k] = float(np.max(env[max(f - reach, 0):f + reach + 1]))
    return out


def dominance(env: np.ndarray, fps: float, times: np.ndarray, reach: int = 1) -> float:
    """Mean over pulses of min(1, accent at the pulse / strongest accent strictly between it and the next).

    1.0 when every pulse is the loudest onset of its span; low when stronger
    onsets fall between pulses, as on a grid running at 2:3 or 3:4 of the beat.
    """
    frames = np.round(np.asarray(times) * fps).astype(int)
    at = accents_at(env, fps, times, reach)
    ratios = []
    for k in range(len(frames) - 1):
        a, b = max(frames[k] + reach + 1, 0), frames[k + 1] - reach  # a grid shifted before 0 s starts at 0
        if a < b <= len(env):
            ratios.append(min(1.0, at[k] / max(float(env[a:b].max()), 1e-9)))
    return float(np.mean(ratios)) if ratios else 0.0


def bar_strength(accents: np.ndarray, meters: Sequence[int] = (3, 4)) -> Tuple[float, int, int]:
    """(strength 0..1, meter, phase) of the best bar-long accent pattern among ``meters``.

    Strength is how much the best phase's mean exceeds the mean of all pulses,
    relative to it (0: no pattern; 1: best phase twice the mean or more).
    """
    best = (0.0, 4, 0)
    mean = float(np.mean(accents)) if len(accents) else 0.0
    for meter in meters:
        if len(accents) < 2 * meter or mean <= 0:
            continue
        means = [float(np.mean(accents[p::meter])) for p in range(meter)]
        phase = int(np.argmax(means))
        strength = min(max(means[phase] / mean - 1.0, 0.0), 1.0)
        if strength > best[0] * 1.1:  # 3/4 must beat 4/4 clearly: 4/4 is far more common
            best = (strength, meter, phase)
    return best


def grid_shift(beats: Sequence[float], accent: np.ndarray, fps: float, max_shift: float = 0.08) -> float:
    """Seconds to add to ``beats`` so they sit on the accent envelope's peaks (best within +-max_shift).

    Trackers place beats a few tens of ms before or after the envelope's peak
    (network latency, onset lag); the level evidence samples the envelope at
    the grid and must not miss the peaks.
    """
    steps = np.arange(-int(max_shift * fps), int(max_shift * fps) + 1)
    means = [float(accents_at(accent, fps, np.asarray(beats) + k / fps, reach=0).mean()) for k in steps]
    return float(steps[int(np.argmax(means))] / fps)


def level_evidence(beats: Sequence[float], env: Envelopes, ratio: float, shift: float = 0.0) -> dict:
    """Evidence for one candidate level: its grid (best phase) and each term in 0..1 (prior excluded).

    ``shift`` (s, from :func:`grid_shift`) aligns the grid with the envelope;
    the returned ``beats`` are unshifted. Returns {"ratio", "phase", "beats",
    "periodicity", "salience", "contrast", "uniformity", "dominance",
    "downbeat"}; terms are 0 when the grid has under 4 pulses. Salience is the
    raw mean accent; contrast may be negative.
    """
    accent = pulse_accent(env)
    best = None
    for phase in RATIOS.get(ratio, (0.0,)):
        grid = level_grid(beats, ratio, phase)
        a = accents_at(accent, env.fps, grid + shift)
        if best is None or (len(a) and a.mean() > best[2].mean()):
            best = (phase, grid, a)
    phase, grid, a = best
    out = {"ratio": ratio, "phase": phase, "beats": grid, "periodicity": 0.0, "salience": 0.0,
           "contrast": 0.0, "uniformity": 0.0, "dominance": 0.0, "downbeat": 0.0}
    if len(grid) < 4:
        return out
    period = float(np.median(np.diff(grid)))
    # contrast on the body band: a snare half-way between kicks is the backbeat of a faster level; the low
    # band (where the kick outweighs the snare) would hide it and hi-hats on every 8th would drown it
    body = env.body if env.body is not None else env.full
    full_at = accents_at(body, env.fps, grid + shift)
    mid = accents_at(body, env.fps, grid[:-1] + np.diff(grid) / 2 + shift)
    ranked = np.sort(a)
    half = len(ranked) // 2
    # uniformity: weaker half of the pulses against the stronger half. Low when every other pulse is weak
    # (too fast) or when the grid drifts through the bar's pattern (a 2:3 or 3:4 error).
    # periodicity at the pulse, half-bar and bar lags: a grid at 2:3 of the beat repeats at none of them
    comb = [max(periodicity(e, env.fps, m * period) for e in (env.full, env.low)) for m in COMB]
    out.update(periodicity=float(np.mean(comb)),
               salience=float(a.mean()), contrast=float(1.0 - mid.mean() / max(full_at.mean(), 1e-9)),
               uniformity=float(ranked[:half].mean() / max(ranked[half:].mean(), 1e-9)),
               dominance=dominance(accent, env.fps, grid + shift), downbeat=bar_strength(a)[0])
    return out


def score_levels(candidates: Sequence[dict], weights: Dict[str, float] = WEIGHTS) -> List[dict]:
    """Candidates (dicts with "bpm" and the evidence terms) scored and sorted best first.

    Salience is taken relative to the most salient candidate and contrast
    mapped to 0.5 + CONTRAST_SLOPE x contrast; each term is clipped to
    [FLOOR, 1] and the score is the weighted sum of their logs plus the
    weighted log prior (and ``weights["stay"]`` for ratio 1), plus the model evidence a candidate carries:
    ``weights["cnn"]`` x log of its "cnn" support and ``weights["metal"]`` x "metal" x log2(bpm / 120). Adds "score" and "probability" (softmax of the scores) to
    copies of the dicts. Candidates outside 50-230 bpm are dropped; an empty
    list gives an empty list.
    """
    cands = [dict(c) for c in candidates if MIN_BPM <= c["bpm"] <= MAX_BPM]
    if not cands:
        return []
    top = max(c.get("salience", 0.0) for c in cands) or 1.0
    for c in cands:
        terms = {k: c.get(k, 0.0) for k in ("periodicity", "uniformity", "dominance", "downbeat")}
        # contrast: off-beats a third weaker than the pulses is full credit (8th-note bass and hi-hats are
        # normal at the beat level); off-beats as strong as the pulses or stronger mark a slow level
        terms["contrast"] = 0.5 + CONTRAST_SLOPE * c.get("contrast", 0.0)
        terms["salience"] = c.get("salience", 0.0) / top
        c["score"] = sum(weights.get(k, 0.0) * np.log(np.clip(v, FLOOR, 1.0)) for k, v in terms.items())
        c["score"] += weights["prior"] * np.log(max(tempo_prior(c["bpm"]), 1e-12))
        if c.get("cnn") is not None:
            c["score"] += weights.get("cnn", 0.0) * np.log(np.clip(c["cnn"], CNN_FLOOR, 1.0))
        if c.get("metal") is not None:
            c["score"] += weights.get("metal", 0.0) * c["metal"] * np.log2(c["bpm"] / PRIOR_CENTRE)
        if c.get("ratio") == 1.0:  # the tracker's own level: a change must win by a margin
            c["score"] += weights.get("stay", 0.0)
    scores = np.array([c["score"] for c in cands])
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    for c, p in zip(cands, probs):
        c["probability"] = float(p)
    return sorted(cands, key=lambda c: -c["score"])


def tempo_from_beats(beat_times: np.ndarray) -> float:
    """bpm from the least-squares beat period over the longest steady run of beats (0.0 if too few).

    The tracker's own tempo and single inter-beat intervals are quantised to
    analysis frames (23 ms); a straight line through many beats is not.
    """
    if len(beat_times) < 4:
        return 0.0
    intervals = np.diff(beat_times)
    median = float(np.median(intervals))
    steady = np.abs(intervals - median) < 0.25 * median
    best, run_start, longest = (0, 0), 0, 0
    for i, ok in enumerate(np.append(steady, False)):
        if not ok:
            if i - run_start > longest:
                longest, best = i - run_start, (run_start, i)
            run_start = i + 1
    a, b = best
    if longest < 3:
        return 60.0 / median
    slope = np.polyfit(np.arange(b - a + 1), beat_times[a:b + 1], 1)[0]
    return 60.0 / float(slope)


def decide(beats: Sequence[float], env: Envelopes, tracker_bpm: float = 0.0,
           evidence: Optional[ModelEvidence] = None) -> TempoDecision:
    """The metrical level of a tracker's ``beats`` (seconds) given the song's onset envelopes.

    ``tracker_bpm`` defaults to the least-squares tempo of ``beats``;
    ``evidence`` adds the model terms (see :func:`score_levels`) and the tempo
    CNN's peak as a candidate of its own. Returns the tracker's own level with
    confidence 0 when there are under 8 beats.
    """
    beats = np.asarray(beats, dtype=float)
    bpm = tracker_bpm or tempo_from_beats(beats)
    if len(beats) < 8 or bpm <= 0:
        return TempoDecision(bpm=float(bpm), confidence=0.0, ratio=1.0, beats=beats)
    shift = grid_shift(beats, pulse_accent(env), env.fps)
    cands = [{**level_evidence(beats, env, r, shift), "bpm": bpm * r} for r in RATIOS]
    cands += model_candidates(cands, env, bpm, evidence)
    ranked = score_levels(cands)
    if not ranked:
        return TempoDecision(bpm=float(bpm), confidence=0.0, ratio=1.0, beats=beats)
    best = ranked[0]
    beats_out = beats if best["ratio"] == 1.0 else best["beats"]
    summary = [{k: (round(float(v), 4) if isinstance(v, (int, float)) else v) for k, v in c.items() if k != "beats"}
               for c in ranked]
    return TempoDecision(bpm=float(best["bpm"]), confidence=float(best["probability"]),
                         ratio=float(best["ratio"]), beats=beats_out, candidates=summary)


def model_candidates(cands: List[dict], env: Envelopes, tracker_bpm: float,
                     evidence: Optional[ModelEvidence]) -> List[dict]:
    """Adds the model evidence to ``cands`` (in place) and returns the extra candidate it brings, if any.

    Each candidate gets "cnn" (the tempo CNN's mass within 2 % of its bpm) and
    "metal". When no candidate lies within 2 % of the CNN's peak, a beat grid at
    the peak tempo, placed on the onsets by dynamic programming, is one more
    candidate ("source": "tempo_cnn"; its ratio is peak / tracker tempo).
    """
    if evidence is None:
        return []
    from transforms.structure import tempo_cnn

    extra = []
    dist = None if evidence.tempo is None else np.asarray(evidence.tempo, dtype=float)
    if dist is not None:
        peak = tempo_cnn.peak_bpm(dist)
        if MIN_BPM <= peak <= MAX_BPM and all(abs(c["bpm"] / peak - 1) > 0.02 for c in cands):
            grid = beats_at_tempo(env, peak)
            if len(grid) >= 8:
                shift = grid_shift(grid, pulse_accent(env), env.fps)
                extra.append({**level_evidence(grid, env, 1.0, shift), "bpm": tempo_from_beats(grid) or peak,
                              "ratio": peak / tracker_bpm, "source": "tempo_cnn"})
    for c in cands + extra:
        c["cnn"] = None if dist is None else tempo_cnn.support(dist, c["bpm"])
        c["metal"] = None if evidence.metal is None else float(evidence.metal)
    return extra


def beats_at_tempo(env: Envelopes, bpm: float) -> np.ndarray:
    """Beat times (s) at a given tempo, placed on the full-band onsets by librosa's dynamic programming."""
    import librosa

    _, frames = librosa.beat.beat_track(onset_envelope=env.full, sr=int(round(env.fps * HOP)), hop_length=HOP,
                                        bpm=float(bpm), units="frames")
    return np.asarray(frames, dtype=float) / env.fps


def downbeats_from_accents(beats: Sequence[float], env: Envelopes,
                           change: Optional[np.ndarray] = None) -> Tuple[np.ndarray, int]:
    """(downbeat times, beats per bar) of a beat grid: the phase of 3 or 4 with the most low-band accent,
    plus the harmonic change at the beats (``bars.harmonic_change``) when given, each relative to its mean."""
    beats = np.asarray(beats, dtype=float)
    if len(beats) < 8:
        return np.array([]), 4
    strength = accents_at(env.low, env.fps, beats)
    if change is not None and np.mean(change) > 0:
        strength = strength / max(float(strength.mean()), 1e-9) + np.asarray(change) / float(np.mean(change))
    _, meter, phase = bar_strength(strength)
    return beats[phase::meter], meter


def apply_level(y: np.ndarray, sample_rate: int, beats: Sequence[float], downbeats: Sequence[float],
                meter: int, evidence: Optional[ModelEvidence] = None) -> Tuple[np.ndarray, np.ndarray, int, TempoDecision]:
    """A tracker's (beats, downbeats, meter) moved to the chosen metrical level, plus the decision.

    ``y`` is the mono mix at ``sample_rate``; ``evidence`` as in :func:`decide`. When the tracker's level stands
    its output is returned unchanged; otherwise beats come from the chosen grid
    and downbeats / meter from the low-band accents and the harmonic change on it.
    """
    env = accent_envelopes(y, sample_rate)
    decision = decide(beats, env, evidence=evidence)
    if decision.ratio == 1.0:
        return np.asarray(beats, dtype=float), np.asarray(downbeats, dtype=float), meter, decision
    from transforms.structure.bars import harmonic_change

    change = harmonic_change(y, sample_rate, decision.beats)
    new_downbeats, new_meter = downbeats_from_accents(decision.beats, env, change)
    return decision.beats, new_downbeats, new_meter, decision
