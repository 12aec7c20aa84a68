"""Forced alignment of reference lyrics (transforms/lyrics/forced.py) and the reference / audio agreement
(transforms/lyrics/agreement.py).

Songs are made here with the evaluation set's builder (``benchmarks/eval_alignment.py``): each word
(each character in Mandarin) spoken alone by espeak-ng at a known time over a bed, the bed 20 dB
below the voice, so every unit's true onset is known. The backend is faster-whisper on the shipped
Whisper base weights; the vocal regions come from the stage's VAD (silero-vad's shipped weights).
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

from transforms.lyrics import agreement as agr
from transforms.lyrics import forced
from transforms.lyrics.backend import AlignmentNotSupported, AlignWindow, NoAsr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import eval_alignment as ev  # noqa: E402

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
SR = 16000


# ---------------------------------------------------------------- pure functions

def test_match_units_in_order_with_misheard_spellings():
    ref = "my heart is beating like a drum".split()
    hyp = "heart was beatin like the drums".split()
    pairs = agr.match_units(ref, hyp)
    assert [(ref[i], hyp[j]) for i, j in pairs] == [("heart", "heart"), ("beating", "beatin"), ("like", "like"),
                                                    ("drum", "drums")]
    assert agr.match_units(ref, []) == [] and not agr.similar("the", "thy")


def test_vocal_coverage_counts_confident_units_inside_regions():
    words = [{"start": 1.0, "end": 2.0, "confident": True}, {"start": 2.0, "end": 3.0, "confident": False},
             {"start": 10.0, "end": 11.0, "confident": True}]
    assert agr.vocal_coverage(words, [(1.0, 3.0)], pad=0.0) == pytest.approx(0.5)
    assert agr.vocal_coverage(words, [], pad=0.0) == 0.0


def test_agreement_decides_and_says_why():
    words = [{"text": w, "start": float(k), "end": k + 0.8, "placed": True, "confident": True}
             for k, w in enumerate("we walk the long road home tonight".split())]
    asr = [{"text": w, "start": float(k), "end": k + 0.5} for k, w in enumerate("we walk the long road home".split())]
    good = agr.agreement(words, asr, [(0.0, 7.0)], "en")
    assert good["decision"] == "reference" and good["parts"]["asr_match"] == 1.0 and ">=" in good["reason"]
    other = [{"text": w, "start": float(k), "end": k + 0.5} for k, w in enumerate("a silver coin by the sea".split())]
    bad = agr.agreement([dict(w, confident=False) for w in words], other, [(0.0, 7.0)], "en")
    assert bad["decision"] == "asr" and "weakest" in bad["reason"]
    assert agr.agreement(words, asr, [], "en")["decision"] == "asr"  # nowhere to place it
    few = agr.agreement(words, asr[:2], [(0.0, 7.0)], "en")  # too few ASR units: that part is left out
    assert few["parts"]["asr_match"] is None and few["decision"] == "reference"
    partial = agr.agreement(words, asr, [(0.0, 21.0)], "en")  # the song sings on for 14 s more
    assert partial["score"] >= partial["threshold"] and partial["decision"] == "asr"
    assert "partial" in partial["reason"]


def test_chinese_characters_match_by_sound():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    sheet = agr.sound_keys(list("月亮想起在海边"), "zh")
    heard = agr.sound_keys(list("月亮相其在海邊"), "zh")  # Whisper: homophones, traditional characters
    assert len(agr.match_units(sheet, heard)) == 7
    assert agr.match_units(sheet, agr.sound_keys(list("我们走过那条长街"), "zh")) == []


def test_windows_fit_whisper_and_cover_every_region():
    regions = [(1.0, 5.0), (6.0, 20.0), (24.0, 70.0), (80.0, 81.0)]
    windows = forced.plan_windows(regions, 90.0)
    assert all(e - s <= 30.0 for s, e in windows)
    for s, e in regions:
        covered = sum(max(0.0, min(e, we) - max(s, ws)) for ws, we in windows)
        assert covered >= e - s - 1e-6
    assert forced.plan_windows([], 10.0) == []


def test_coarse_times_spread_over_vocal_time_between_anchors():
    regions = [(0.0, 10.0), (20.0, 30.0)]
    times = forced.coarse_times(4, [], regions)  # no anchors: even over the 20 s of singing, not the gap
    assert np.all((times < 10.0) | (times >= 20.0)) and times[0] < times[-1]
    anchored = forced.coarse_times(4, [(2, 25.0)], regions)
    assert anchored[2] == pytest.approx(25.0) and anchored[1] < 25.0
    assert np.isnan(forced.coarse_times(3, [], [])).all()


def test_lrc_anchors_outside_the_voice_are_not_trusted():
    regions = [(10.0, 20.0), (30.0, 40.0)]
    merged = forced.merge_anchors([(5, 15.0)], [(0, 11.0), (8, 25.0), (9, 12.0), (12, 31.0)], regions)
    assert merged == [(0, 11.0), (5, 15.0), (12, 31.0)]  # 25.0 is in no region; (9, 12.0) goes back in time


def test_repeat_orders_expand_a_chorus_written_once():
    blocks = [forced.Block("verse", 0, 3), forced.Block("chorus", 3, 5), forced.Block("verse", 5, 8)]
    orders = dict(forced.repeat_orders(blocks))
    assert orders["sheet"] == list(range(8))
    assert [0, 1, 2, 3, 4, 5, 6, 7, 3, 4] in orders.values()  # after each later verse
    assert [0, 1, 2, 3, 4, 3, 4, 5, 6, 7] in orders.values()  # twice in a row


def test_reference_units_are_characters_in_chinese_words_in_english():
    assert forced.reference_units(["Hold", "on,", "--", "me!"], "en") == (["Hold", "on", "me"], [0, 1, 3])
    units, owner = forced.reference_units(["我们在一起", "baby", "唱歌。"], "zh")
    assert units == ["我", "们", "在", "一", "起", "baby", "唱", "歌"] and owner == [0, 0, 0, 0, 0, 1, 2, 2]


def test_backends_without_alignment_say_so():
    backend = NoAsr({})
    assert not backend.does_align
    with pytest.raises(AlignmentNotSupported, match="faster-whisper"):
        backend.align(np.zeros(SR, np.float32), [AlignWindow(0.0, 1.0, ("la",))], "en")


# ---------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def backend():
    from transforms.lyrics.faster_whisper_backend import FasterWhisperBackend

    b = FasterWhisperBackend({"threads": 2})
    b.load()
    return b


@pytest.fixture(scope="module")
def vad():
    from transforms.core import vad as vad_mod

    return vad_mod.shared_vad()


def vocal_regions(vad, audio):
    from transforms.core import vad as vad_mod

    return vad_mod.vocal_regions(vad, audio, vad_mod.VadConfig(threshold=0.3))


@pytest.fixture(scope="module")
def songs():
    """Three short songs (~25 s: verse, chorus, verse, chorus of one line each): two English, one Mandarin."""
    used: set = set()
    beds = [b for b in ev.BEDS if os.path.isfile(b)] or [None]
    return [ev.build_song(seed, lang, beds[k % len(beds)], used=used, verse_lines=1, chorus_lines=1, intro=3.0)
            for k, (seed, lang) in enumerate(((11, "en"), (12, "en"), (13, "zh")))]


def onset_errors(result: dict, song: dict) -> np.ndarray:
    assert [w["text"] for w in result["words"]] == [t["text"] for t in song["words"]]
    return np.array([abs(w["start"] - t["start"]) for w, t in zip(result["words"], song["words"]) if w["placed"]])


@needs_espeak
def test_aligns_known_words_at_known_times(backend, vad, songs):
    song = songs[0]
    regions = vocal_regions(vad, song["audio"])
    res = forced.align_reference(backend, song["audio"], song["sung_words"], "en", regions)  # no ASR anchors
    errors = onset_errors(res, song)
    assert len(errors) >= 0.9 * len(song["words"])
    assert np.median(errors) <= 0.15 and np.percentile(errors, 90) <= 0.5, errors
    placed = [w for w in res["words"] if w["placed"]]
    assert all(0.0 <= w["probability"] <= 1.0 and w["start"] <= w["end"] for w in placed)
    # LRC line starts as anchors: the true ones are taken, one in the instrumental intro is not
    firsts = {}
    for k, t in enumerate(song["words"]):
        firsts.setdefault((t["section"], t["line"]), (k, t["start"]))
    line_starts = list(firsts.values())[1:] + [(len(song["words"]) - 1, 0.5)]
    lrc = forced.align_reference(backend, song["audio"], song["sung_words"], "en", regions, line_starts=line_starts)
    assert lrc["anchors"]["lrc"] == len(line_starts) - 1
    assert np.median(onset_errors(lrc, song)) <= 0.15


@needs_espeak
def test_chinese_characters_align(backend, vad, songs):
    song = songs[2]
    res = forced.align_reference(backend, song["audio"], song["sung_words"], "zh", vocal_regions(vad, song["audio"]))
    assert all(len(w["text"]) == 1 for w in res["words"])
    errors = onset_errors(res, song)
    assert len(errors) >= 0.9 * len(song["words"])
    assert np.median(errors) <= 0.15 and np.percentile(errors, 90) <= 0.5, errors


def test_tokens_are_whispers_own_and_map_back_to_units(backend):
    from transforms.lyrics.faster_whisper_backend import join_units, unit_tokens

    tok = backend.model.hf_tokenizer
    text, ranges = join_units(["the", "night", "is", "young"], char_language=False)
    ids, owners = unit_tokens(tok, text, ranges)
    assert text == " the night is young" and ids[0] == tok.token_to_id("\u0120the")  # one token, as Whisper decodes
    assert owners == [[0], [1], [2], [3]]
    text, ranges = join_units(["我", "们", "在", "一", "起"], char_language=True)
    ids, owners = unit_tokens(tok, text, ranges)
    assert text == "我们在一起" and sorted({u for o in owners for u in o}) == [0, 1, 2, 3, 4]


@needs_espeak
def test_agreement_separates_true_from_swapped_references(backend, vad, songs):
    true_scores, swapped_scores = [], []
    for k, song in enumerate(songs[:2]):
        regions = vocal_regions(vad, song["audio"])
        segments = backend.transcribe(song["audio"], [(max(0.0, regions[0][0] - 1.0), regions[-1][1])], "en")
        asr = [w for seg in segments for w in seg["words"]]
        mine = forced.align_reference(backend, song["audio"], song["sung_words"], "en", regions, asr)
        other = forced.align_reference(backend, song["audio"], songs[1 - k]["sung_words"], "en", regions, asr)
        assert mine["agreement"]["decision"] == "reference", mine["agreement"]
        assert other["agreement"]["decision"] == "asr", other["agreement"]
        true_scores.append(mine["agreement"]["score"])
        swapped_scores.append(other["agreement"]["score"])
    assert min(true_scores) > max(swapped_scores) + 0.2


@needs_espeak
def test_repeat_expansion_chooses_the_order_sung(backend, vad, songs):
    song = songs[0]  # the chorus is sung twice, the sheet writes it once
    regions = vocal_regions(vad, song["audio"])
    res = forced.align_reference(backend, song["audio"], song["sheet"], "en", regions,
                                 orders=forced.repeat_orders(song["blocks"]))
    assert res["order"] != "sheet" and len(res["orders"]) > 1, res["orders"]
    assert [w["text"] for w in res["words"]] == [t["text"] for t in song["words"]]
    assert np.median(onset_errors(res, song)) <= 0.15
    # the text as sung leaves no vocal time unexplained: no other order is tried
    blocks = song["blocks"] + [forced.Block("chorus", len(song["sheet"]), len(song["sung_words"]))]
    full = forced.align_reference(backend, song["audio"], song["sung_words"], "en", regions,
                                  orders=forced.repeat_orders(blocks))
    assert full["order"] == "sheet" and list(full["orders"]) == ["sheet"]


@needs_espeak
def test_words_outside_any_vocal_region_are_not_placed(backend, vad, songs):
    song = songs[1]
    regions = vocal_regions(vad, song["audio"])
    cut = 0.5 * (song["words"][0]["start"] + song["words"][-1]["end"])
    kept = [(s, min(e, cut)) for s, e in regions if s < cut]  # the second half is not vocal for the aligner
    res = forced.align_reference(backend, song["audio"], song["sung_words"], "en", kept)
    for w, truth in zip(res["words"], song["words"]):
        if w["placed"]:
            mid = 0.5 * (w["start"] + w["end"])
            assert any(s - 0.3 <= mid <= e + 0.3 for s, e in kept), w
        if truth["start"] > cut + 0.5:
            assert not w["confident"], (w, truth)
    late = [w for w, t in zip(res["words"], song["words"]) if t["start"] > cut + 0.5]
    assert late and sum(not w["placed"] for w in late) >= len(late) // 2
    nothing = forced.align_reference(backend, song["audio"], song["sung_words"], "en", [])
    assert not any(w["placed"] for w in nothing["words"])
    assert {w["reason"] for w in nothing["words"]} == {"no_vocal_region"}
    assert nothing["agreement"]["decision"] == "asr"
