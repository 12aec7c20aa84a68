"""Does anybody sing? The tags stage's vocal decision, from every piece of evidence the song has.

Evidence, each optional: the vocal stem's presence (share of 100 ms frames where
the stem is loud and a real part of the mix) and the lyrics stage's ASR (it ran
over the gated stem and kept no word). The decision feeds ``[Pure-Music]``
(quality stage) and whether a vocal gender may be given (tags stage).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from transforms.core.audio import frame_rms

PURE_MUSIC_MAX_PRESENCE = 0.05  # below this share of active vocal frames a song is pure music
VOCAL_ACTIVE_DB = -70.0  # a vocal frame is active above this RMS (dBFS) ...
VOCAL_SHARE_DB = -15.0  # ... and no more than this far below the mix frame


def stem_presence(vocals: np.ndarray, mix: np.ndarray, sample_rate: int, hop_s: float = 0.1) -> float:
    """Share of ``hop_s`` frames where the vocal stem is active: loud enough, and a real part of the mix.

    Active: vocal RMS above ``VOCAL_ACTIVE_DB`` dBFS and no more than
    ``-VOCAL_SHARE_DB`` dB below the mix in that frame (a separator's faint
    leakage on an instrumental stays below that). Both arrays share ``sample_rate``.
    """
    v = frame_rms(vocals, sample_rate, hop_s)
    m = frame_rms(mix, sample_rate, hop_s)
    n = min(v.size, m.size)
    if n == 0:
        return 0.0
    v, m = v[:n].astype(np.float64), m[:n].astype(np.float64)
    active = (v > 10.0 ** (VOCAL_ACTIVE_DB / 20.0)) & (v >= m * 10.0 ** (VOCAL_SHARE_DB / 20.0))
    return float(np.mean(active))


def decide_vocals(presence: Optional[float], lyrics: Optional[dict]) -> dict:
    """``{"present": bool | None, "stem_presence", "evidence": [...]}`` for a song.

    ``evidence`` lists what points to pure music: "vocal_stem" (stem presence
    below ``PURE_MUSIC_MAX_PRESENCE``) and "asr_no_words" (ASR ran over the whole
    gated stem and kept no word). Any such evidence makes the song instrumental.
    Without a vocal stem nothing is decided (``present`` None): a song is never
    called pure music without evidence, and ASR alone is not enough.
    """
    if presence is None:
        return {"present": None, "stem_presence": None, "evidence": []}
    evidence = []
    if presence < PURE_MUSIC_MAX_PRESENCE:
        evidence.append("vocal_stem")
    if lyrics and lyrics.get("transcribed") and not lyrics.get("words"):
        evidence.append("asr_no_words")
    return {"present": not evidence, "stem_presence": round(float(presence), 4), "evidence": evidence}
