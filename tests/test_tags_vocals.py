"""The vocal decision: VAD share, ASR words and the tagger's vocal score weighed together (pure)."""

from __future__ import annotations

import pytest

from transforms.tags.vocals import decide_vocals, vocal_presence


def test_vocal_presence_rule():
    full = vocal_presence(0.3, asr_words=0)  # VAD 30 %, ASR heard nothing
    assert full["present"] and full["score"] == pytest.approx(0.35 / 0.6, abs=1e-3)
    hallucinated = vocal_presence(0.0, asr_words=80)  # Whisper's text over an instrumental
    assert not hallucinated["present"] and hallucinated["score"] == pytest.approx(0.25 / 0.6, abs=1e-3)
    sustained = vocal_presence(0.0, asr_words=40, tagger_vocal_score=1.0)  # VAD misses long notes
    assert sustained["present"] and sustained["evidence"]["asr_words"] == 40
    outvoted = vocal_presence(0.3, asr_words=0, tagger_vocal_score=0.0, stem=0.0)
    assert not outvoted["present"] and outvoted["score"] == pytest.approx(0.35, abs=1e-3)
    growled = vocal_presence(0.04, asr_words=39, tagger_vocal_score=0.5, stem=0.4)  # a sung stem, VAD deaf
    assert growled["present"] and growled["evidence"]["stem_evidence"] == 1.0
    leaky = vocal_presence(0.0, asr_words=0, tagger_vocal_score=0.2, stem=0.2)  # an instrumental's leakage
    assert not leaky["present"]
    leak = vocal_presence(0.01, asr_words=3, tagger_vocal_score=0.1)
    assert not leak["present"] and leak["evidence"]["vad_evidence"] == 0.0
    alone = vocal_presence(0.1)  # only the VAD: 10 % of the song
    assert alone["present"] and "asr_evidence" not in alone["evidence"]
    for bad in ((1.5, None, None), (-0.1, None, None), (0.5, None, 1.5)):
        with pytest.raises(ValueError):
            vocal_presence(*bad)


def test_decide_vocals_uses_the_vad_timeline_when_there_is_one():
    sung = {"transcribed": True, "words": [{"text": "la"}] * 25, "vocal_activity": {"source": "vad", "share": 0.4}}
    quiet = {"transcribed": True, "words": [], "vocal_activity": {"source": "vad", "share": 0.0}}
    assert decide_vocals(0.9, sung, 0.8)["present"] is True
    decided = decide_vocals(0.9, quiet, 0.2)  # a leaky stem is outvoted by VAD, ASR and tagger
    assert decided["present"] is False and decided["rule"] == "vad_asr_tagger" and decided["stem_presence"] == 0.9
    # without a VAD timeline the stem rule decides, as with --lyrics_vad none
    energy = {"transcribed": True, "words": [], "vocal_activity": {"source": "energy_gate", "share": 0.5}}
    assert decide_vocals(0.9, energy)["evidence"] == ["asr_no_words"]
    assert decide_vocals(None, sung)["present"] is True  # the VAD decides even without a stem measure
