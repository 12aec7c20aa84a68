"""Pure parts of the lyrics stage: gt_lyric formatting, chunks, cleaning, guards, alignment."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from transforms.lyrics import format as fmt
from transforms.lyrics import guards
from transforms.lyrics.align import alignment_scores, ipa_symbols, word_error_rate


def _line(start, texts, step=0.5):
    words = [{"start": start + k * step, "end": start + (k + 1) * step - 0.05, "text": t, "probability": 0.9}
             for k, t in enumerate(texts)]
    return {"start": words[0]["start"], "end": words[-1]["end"], "text": " ".join(texts), "words": words}


SECTIONS = [
    {"start": 0.0, "end": 8.0, "label": "intro", "tag": "intro-short"},
    {"start": 8.0, "end": 20.0, "label": "verse", "tag": "verse"},
    {"start": 20.0, "end": 30.0, "label": "chorus", "tag": "chorus"},
    {"start": 30.0, "end": 45.0, "label": "outro", "tag": "outro-medium"},
]


def test_gt_lyric_matches_the_training_format():
    lines = [_line(9.0, ["The", "night", "is", "young."]), _line(12.0, ["We", "run", "along"]),
             _line(21.0, ["Hold", "on!", "Hold", "on"])]
    gt = fmt.build_gt_lyric(SECTIONS, lines, "en")
    assert gt["gt_lyric"] == ("[intro-short] ; [verse] the night is young. we run along. ; "
                              "[chorus] hold on. hold on. ; [outro-medium]")
    assert "\n" not in gt["gt_lyric"] and gt["gt_lyric"].isascii()
    assert gt["gt_lyric_timed"] == ("[intro-short][0.00:8.00] ; [verse][8.00:20.00]the night is young. we run along. ; "
                                    "[chorus][20.00:30.00]hold on. hold on. ; [outro-medium][30.00:45.00]")
    assert [s["num_words"] for s in gt["sections"]] == [0, 7, 4, 0]


def test_words_in_instrumental_sections_are_left_out_and_wordless_verses_retagged():
    sections = SECTIONS + [{"start": 45.0, "end": 60.0, "label": "verse", "tag": "verse"}]
    lines = [_line(2.0, ["credits", "roll"]), _line(21.0, ["hold", "on"])]
    gt = fmt.build_gt_lyric(sections, lines, "en")
    assert gt["dropped_words"] == 2
    # the verse without words after the last sung section is an outro by position
    assert gt["gt_lyric"] == "[intro-medium] ; [chorus] hold on. ; [outro-long]"


def test_chinese_sections_have_no_trailing_period_and_ascii_punctuation():
    words = [{"start": 1.0 + 0.3 * k, "end": 1.25 + 0.3 * k, "text": ch} for k, ch in enumerate("我爱你，中国。你好")]
    line = {"start": 1.0, "end": 4.0, "text": "", "words": words}
    gt = fmt.build_gt_lyric([{"start": 0.0, "end": 10.0, "label": "verse", "tag": "verse"}], [line], "zh")
    assert gt["gt_lyric"] == "[verse] 我爱你,中国.你好"


def test_section_tag_maps_analyser_labels():
    assert fmt.section_tag({"start": 0, "end": 25, "label": "solo"}) == "inst-long"
    assert fmt.section_tag({"start": 0, "end": 5, "label": "intro"}) == "intro-short"
    assert fmt.section_tag({"start": 0, "end": 5, "label": "start"}) == "silence"
    assert fmt.section_tag({"start": 0, "end": 5, "label": "chorus", "tag": "chorus"}) == "chorus"


def test_chunks_cut_past_30s_never_over_40s_and_count_words():
    lines = [_line(t, [f"w{t}x{k}" for k in range(8)], step=0.6) for t in range(0, 120, 6)]
    chunks, rejected = fmt.chunk_lines(lines, "en")
    assert chunks and rejected <= 1
    for c in chunks:
        assert c["end"] - c["start"] <= 40.0
        assert 20 <= c["num_units"] <= 200
        assert c["frame_start"] == round(c["start"] * 25) and c["frame_end"] == round(c["end"] * 25)
    # every chunk but possibly the last passed 30 s before it was cut
    assert all(c["end"] - c["start"] > 30.0 for c in chunks[:-1])
    few, rejected_few = fmt.chunk_lines([_line(0.0, ["only", "five", "words", "in", "here"])], "en")
    assert few == [] and rejected_few == 1


def test_credit_lines_and_speaker_prefixes():
    for credit in ["Lyrics by John Smith", "Mixed and mastered by Jo", "作词：林夕", "Composer: A. B.",
                   "(c) 2021 Some Records", "All rights reserved", "Music & Lyrics: X", "词曲：某人"]:
        assert fmt.is_credit_line(credit), credit
    for lyric in ["the music plays all night", "hold on to me", "words can not say", "我爱你"]:
        assert not fmt.is_credit_line(lyric), lyric
    assert fmt.strip_speaker_prefix("John: hello there") == "hello there"
    assert fmt.speaker_prefix_length(["Mary:", "come", "home"]) == 1
    assert fmt.speaker_prefix_length(["come", "home"]) == 0
    assert fmt.clean_reference_lines(["Lyrics by X", "[Chorus]", "A: la la", "", "sing it"]) == ["la la", "sing it"]


def test_repetition_is_collapsed_but_choruses_survive():
    tokens = ["hold", "on"] * 2 + ["la"] * 9
    keep = fmt.collapse_repeats(tokens, max_repeats=4)
    assert [tokens[i] for i in keep] == ["hold", "on", "hold", "on", "la", "la", "la", "la"]
    loop = ["thank", "you", "so", "much"] * 6
    assert len(fmt.collapse_repeats(loop)) == 16
    flags = fmt.repeated_line_flags(["Hold on", "hold on!", "hold on", "HOLD ON", "hold on", "go"])
    assert flags == [False, False, False, True, True, False]


def test_active_regions_find_the_voice_and_ignore_silence():
    sr = 16000
    t = np.arange(20 * sr) / sr
    audio = 1e-4 * np.random.default_rng(0).standard_normal(t.size)
    voice = (t >= 5) & (t < 9) | (t >= 12) & (t < 15)
    audio = (audio + 0.3 * np.sin(2 * np.pi * 220 * t) * voice).astype(np.float32)
    regions = guards.active_regions(audio, sr)
    assert len(regions) == 2
    (s1, e1), (s2, e2) = regions
    assert abs(s1 - 5) < 0.4 and abs(e1 - 9) < 0.4 and abs(s2 - 12) < 0.4 and abs(e2 - 15) < 0.4
    assert guards.active_regions(np.zeros(sr * 5, np.float32), sr) == []
    masked = guards.mask_outside(audio, sr, regions)
    assert np.all(masked[: 4 * sr] == 0) and np.all(masked[16 * sr:] == 0)
    assert np.array_equal(masked[6 * sr:8 * sr], audio[6 * sr:8 * sr])


def test_language_packs_and_vote():
    sr = 16000
    audio = np.ones(100 * sr, np.float32)
    packs = guards.language_packs(audio, sr, [(0.0, 20.0), (30.0, 55.0), (70.0, 70.5)])
    assert [round(sec, 1) for sec, _ in packs] == [30.0, 15.5]  # 45.5 s sung; the 0.5 s tail joins the last pack
    assert all(len(clip) <= 30 * sr for _, clip in packs)
    judged = [(30.0, {"en": 0.95, "de": 0.05}), (10.0, {"de": 0.7, "en": 0.3})]
    lang, prob, cov = guards.vote_language(judged)
    assert lang == "en" and prob == pytest.approx((30 * 0.95 + 10 * 0.3) / 40) and cov == pytest.approx(0.75)
    lang, prob, cov = guards.vote_language(judged, language="de")
    assert lang == "de" and cov == pytest.approx(0.25)
    assert guards.vote_language([]) == ("", 0.0, 0.0)


def test_segment_verdicts():
    ok = {"text": "hold on", "avg_logprob": -0.3, "compression_ratio": 1.2, "no_speech_prob": 0.1}
    assert guards.segment_verdict(ok) is None
    assert guards.segment_verdict({**ok, "compression_ratio": 3.1}) == "compression_ratio"
    assert guards.segment_verdict({**ok, "avg_logprob": -1.4}) == "avg_logprob"
    assert guards.segment_verdict({**ok, "no_speech_prob": 0.9, "avg_logprob": -0.8}) == "no_speech"
    assert guards.segment_verdict({**ok, "no_speech_prob": 0.9, "avg_logprob": -0.1}) is None
    assert guards.segment_verdict({**ok, "text": "Thanks for watching!"}) == "hallucination_phrase"
    words = [{"start": 1.0, "end": 1.4}, {"start": 9.0, "end": 9.5}]
    assert guards.words_in_regions(words, [(0.5, 2.0)]) == [True, False]


def test_word_error_rate():
    assert word_error_rate("Hold on, hold on!", "hold on hold on") == 0.0
    assert word_error_rate("the night is young", "the night is old") == pytest.approx(0.25)
    assert word_error_rate("", "anything") is None
    assert word_error_rate("some words", "") == 1.0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_phoneme_error_rate_forgives_spelling_more_than_words():
    scores = alignment_scores("the knight is young", "the night is young", "en")
    assert scores["wer"] == pytest.approx(0.25)
    assert scores["per"] == 0.0  # knight and night sound the same
    wrong = alignment_scores("the night is young", "a day was old", "en")
    assert wrong["per"] > 0.5 and wrong["phonemizer"].startswith("eSpeak")
    assert ipa_symbols("hˈoʊld ˈɔn") == ["h", "o", "ʊ", "l", "d", "ɔ", "n"]
    assert re.fullmatch(r"\S+", "".join(ipa_symbols("nˈaɪt")))


def test_a_line_a_word_over_a_boundary_stays_whole():
    sections = [{"start": 0.0, "end": 10.0, "tag": "verse"}, {"start": 10.0, "end": 20.0, "tag": "chorus"}]
    words = [{"start": 6.0 + i, "end": 6.5 + i, "text": t} for i, t in enumerate("come home come home to".split())]
    line = {"start": 6.0, "end": 10.5, "text": "come home come home to", "words": words}
    out = fmt.build_gt_lyric(sections, [line], "en")
    assert out["gt_lyric"].startswith("[verse] come home come home to")
    half = [{"start": 7.0 + i, "end": 7.5 + i, "text": t} for i, t in enumerate("a b c d e f".split())]
    split = fmt.build_gt_lyric(sections, [{"start": 7.0, "end": 12.5, "text": "a b c d e f", "words": half}], "en")
    assert split["gt_lyric"] == "[verse] a b c. ; [chorus] d e f."


def test_a_song_without_words_is_intro_inst_outro():
    sections = [{"start": 0.0, "end": 8.0, "tag": "intro-short"}, {"start": 8.0, "end": 30.0, "tag": "verse"},
                {"start": 30.0, "end": 45.0, "tag": "chorus"}, {"start": 45.0, "end": 50.0, "tag": "verse"}]
    out = fmt.build_gt_lyric(sections, [], "")
    assert out["gt_lyric"] == "[intro-short] ; [inst-long] ; [outro-short]"
