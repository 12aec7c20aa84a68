"""Does anybody sing? The tags stage's vocal decision, from every piece of evidence the song has.

Evidence, each optional: the lyrics stage's voice-activity timeline (a VAD
model on the vocal stem) and its ASR words, the tagger's vocal / no-vocal
score, and the vocal stem's presence (share of 100 ms frames where the stem is
loud and a real part of the mix). The decision feeds ``[Pure-Music]``
(quality stage) and whether a vocal gender may be given (tags stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from transforms.core.activity import stem_presence  # noqa: F401 - re-exported

PURE_MUSIC_MAX_PRESENCE = 0.05  # below this share of active vocal frames a song is pure music


@dataclass(frozen=True)
class PresenceRule:
    """How :func:`vocal_presence` weighs its evidence (each scaled to [0, 1] first).

    VAD: the share of the song in voice-activity regions, 0 at or below
    ``vad_floor`` (stray detections), 1 at ``vad_full`` or more. ASR: the word
    count, 0 at or below ``words_floor`` (Whisper's stock hallucinations are a few
    words), 1 at ``words_full``. Tagger: its vocal probability as given. Stem: the
    vocal stem's presence, 0 at ``stem_floor``, 1 at ``stem_full``. The score is
    the weighted mean over the evidence that exists; vocals are present when it
    reaches ``present_at``. No single source decides alone: a full VAD share with
    no ASR words scores 0.58 (present), ASR words with no VAD 0.42 (absent:
    Whisper invents text over instrumentals), ASR and tagger agreeing without the
    VAD 0.53 (present: the VAD misses growled and long sustained notes).
    The stem thresholds were set on the real-music evaluation set (Spleeter stems:
    instrumentals 0-0.21, sung songs 0.28-0.64), so they are in-sample figures.
    """

    vad_floor: float = 0.02
    vad_full: float = 0.15
    words_floor: int = 3
    words_full: int = 30
    stem_floor: float = 0.15  # Spleeter stems: instrumentals measured 0-0.21, sung songs 0.28-0.64
    stem_full: float = 0.30
    weights: Tuple[float, float, float, float] = (0.35, 0.25, 0.15, 0.25)  # VAD, ASR, tagger, stem
    present_at: float = 0.45


def _ramp(x: float, low: float, high: float) -> float:
    return float(min(1.0, max(0.0, (x - low) / (high - low))))


def vocal_presence(vad_share: float, asr_words: Optional[int] = None, tagger_vocal_score: Optional[float] = None,
                   stem: Optional[float] = None, rule: PresenceRule = PresenceRule()) -> dict:
    """``{"present": bool, "score": float, "evidence": {...}}`` from the VAD share, ASR words, tagger score
    and the vocal stem's presence.

    ``asr_words`` None: no ASR ran; ``tagger_vocal_score`` / ``stem`` None: no such evidence.
    Raises ValueError for a share or score outside [0, 1].
    """
    if not 0.0 <= vad_share <= 1.0 or (tagger_vocal_score is not None and not 0.0 <= tagger_vocal_score <= 1.0):
        raise ValueError(f"vocal_presence: need values in [0, 1], got {vad_share}, {tagger_vocal_score}")
    w_vad, w_asr, w_tag, w_stem = rule.weights
    parts = {"vad": (_ramp(vad_share, rule.vad_floor, rule.vad_full), w_vad)}
    if asr_words is not None:
        parts["asr"] = (_ramp(asr_words, rule.words_floor, rule.words_full), w_asr)
    if tagger_vocal_score is not None:
        parts["tagger"] = (float(tagger_vocal_score), w_tag)
    if stem is not None:
        parts["stem"] = (_ramp(stem, rule.stem_floor, rule.stem_full), w_stem)
    score = sum(e * w for e, w in parts.values()) / sum(w for _, w in parts.values())
    evidence = {"vad_share": round(vad_share, 4), "asr_words": asr_words, "tagger_vocal_score": tagger_vocal_score,
                **{f"{k}_evidence": round(e, 4) for k, (e, _) in parts.items()}}
    return {"present": bool(score >= rule.present_at), "score": round(score, 4), "evidence": evidence}


def decide_vocals(presence: Optional[float], lyrics: Optional[dict], tagger_vocal: Optional[float] = None) -> dict:
    """``{"present": bool | None, "score", "stem_presence", "evidence", "rule"}`` for a song.

    With the lyrics stage's voice-activity timeline from a VAD model, the VAD
    share, the ASR's word count and the tagger's vocal score decide
    (:func:`vocal_presence`, rule "vad_asr_tagger"). Without one (``--lyrics_vad
    none``), the stem rule: pure music when the stem's presence is below
    ``PURE_MUSIC_MAX_PRESENCE`` or ASR over the gated stem kept no word. Without
    a vocal stem nothing is decided (``present`` None).
    """
    lyrics = lyrics or {}
    activity = lyrics.get("vocal_activity") or {}
    stem = None if presence is None else round(float(presence), 4)
    if activity.get("source") == "vad":
        words = len(lyrics.get("words", [])) if lyrics.get("transcribed") else None
        found = vocal_presence(min(1.0, float(activity.get("share", 0.0))), words, tagger_vocal, stem)
        return {**found, "stem_presence": stem, "rule": "vad_asr_tagger"}
    if presence is None:
        return {"present": None, "score": None, "stem_presence": None, "evidence": [], "rule": "none"}
    evidence = []
    if presence < PURE_MUSIC_MAX_PRESENCE:
        evidence.append("vocal_stem")
    if lyrics.get("transcribed") and not lyrics.get("words"):
        evidence.append("asr_no_words")
    return {"present": not evidence, "score": None, "stem_presence": stem, "evidence": evidence, "rule": "stem"}
