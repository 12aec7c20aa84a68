"""The lab's lyrics in the lyrics stage (transforms/lyrics/reference.py): sung orders, lines, sections,
and the stage's decision with the real Whisper base model on speech whose words are known."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.lyrics import format as fmt
from transforms.lyrics import reference as ref
from transforms.lyrics import sheet as sh

from test_lyrics_backends import espeak_16k, fw_backend, needs_espeak  # noqa: F401 - fixture

SHEET = """[Verse 1]
the night is young
we run along
[Chorus]
hold on to me (x2)
"""


def test_the_sheet_as_written_comes_first_then_its_repeats_then_a_chorus_sung_again():
    words, orders = ref.sung_orders(sh.parse_sheet(SHEET))
    texts = [w.text for w in words]
    names = [n for n, _ in orders]
    assert names[:2] == ["sheet", "sheet repeats"]
    written = [texts[i] for i in orders[0][1]]
    assert " ".join(written) == "the night is young we run along hold on to me"
    assert " ".join(texts[i] for i in orders[1][1]).endswith("hold on to me hold on to me")
    assert all(max(o) < len(words) for _, o in orders) and len(orders) >= 3  # the chorus again, too


def test_unplaced_words_get_times_between_their_placed_neighbours():
    units = [{"start": 1.0, "end": 1.5}, {"start": None, "end": None}, {"start": None, "end": None},
             {"start": 4.0, "end": 4.4}]
    ref._fill_times(units, 10.0)
    assert 1.5 < units[1]["start"] < units[2]["start"] < 4.0


def _line(block, start, texts):
    words = [{"text": t, "start": start + i, "end": start + i + 0.5, "probability": 0.9, "placed": True, "word": i}
             for i, t in enumerate(texts)]
    return {"block": block, "words": words, "start": words[0]["start"], "end": words[-1]["end"],
            "text": " ".join(texts)}


def test_sections_holding_reference_words_are_lyric_sections_named_by_the_sheet():
    sheet = sh.parse_sheet(SHEET)
    sections = [{"start": 0.0, "end": 10.0, "tag": "intro-short"}, {"start": 10.0, "end": 30.0, "tag": "verse"},
                {"start": 30.0, "end": 45.0, "tag": "outro-medium"}]
    lines = [_line(1, 2.0, ["hold", "on", "to", "me"]), _line(0, 12.0, ["the", "night", "is", "young"]),
             _line(0, 33.0, ["we", "run", "along"])]
    tagged = ref.reference_sections(sections, lines, sheet)
    assert [s["tag"] for s in tagged] == ["chorus", "verse", "verse"]
    gt = fmt.build_gt_lyric(tagged, lines, "en")
    assert gt["dropped_words"] == 0  # no reference word falls in an intro, inst or outro
    assert gt["gt_lyric"] == "[chorus] hold on to me. ; [verse] the night is young. ; [verse] we run along."
    # the structure's own tags would have dropped two of the three lines
    assert fmt.build_gt_lyric(sections, lines, "en")["dropped_words"] == 7


def test_lines_a_plain_sheet_writes_out_twice_make_a_chorus():
    plain = "the night is young\nhold on to me\nwe run along\nhold on to me\n"
    sheet = sh.parse_sheet(plain)
    sections = [{"start": 0.0, "end": 10.0, "tag": "verse"}, {"start": 10.0, "end": 20.0, "tag": "verse"},
                {"start": 20.0, "end": 30.0, "tag": "verse"}, {"start": 30.0, "end": 40.0, "tag": "verse"}]
    lines = [_line(0, 1.0, ["the", "night", "is", "young"]), _line(0, 11.0, ["hold", "on", "to", "me"]),
             _line(0, 21.0, ["we", "run", "along"]), _line(0, 31.0, ["hold", "on", "to", "me"])]
    assert [s["tag"] for s in ref.reference_sections(sections, lines, sheet)] == ["verse", "chorus", "verse", "chorus"]
    mixed = [{"start": 0.0, "end": 20.0, "tag": "bridge"}, {"start": 20.0, "end": 40.0, "tag": "verse"}]
    verse_heavy = [_line(0, 1.0, ["the", "night", "is", "young", "and", "we", "run", "along"]),
                   _line(0, 11.0, ["hold", "on", "to", "me"]), _line(0, 31.0, ["hold", "on", "to", "me"])]
    # a section mostly of lines written once keeps its lyric tag: one chorus line does not make a chorus
    assert [s["tag"] for s in ref.reference_sections(mixed, verse_heavy, sheet)] == ["bridge", "chorus"]


@needs_espeak
def test_the_stage_takes_a_reference_that_agrees_and_refuses_one_that_does_not(fw_backend, tmp_path):  # noqa: F811
    from transforms.lyrics.stage import lyrics_label

    said = "my heart is beating like a drum calling out your name"
    speech = espeak_16k(said, tmp_path / "s.wav")
    audio = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
    duration = audio.size / 16000
    right = lyrics_label(fw_backend, audio, duration, sheet=sh.parse_sheet(said))
    assert right["words_source"] == "reference" and right["agreement"]["decision"] == "reference"
    assert fmt.normalize_key(" ".join(w["text"] for w in right["words"])) == said
    placed = [w for w in right["reference_alignment"]["words"] if w["placed"]]
    assert len(placed) >= 0.8 * len(said.split())
    assert all(0.5 < w["start"] < duration - 0.5 for w in placed)  # in the speech, not the silence around it

    other = "the snow falls down on the quiet street tonight and nobody knows"
    wrong = lyrics_label(fw_backend, audio, duration, sheet=sh.parse_sheet(other))
    assert wrong["words_source"] == "asr" and wrong["agreement"]["decision"] == "asr"
    assert wrong["agreement"]["reason"] and "snow" not in wrong["gt_lyric"]


@needs_espeak
def test_a_chinese_song_with_its_chinese_reference_gets_a_chinese_gt_lyric(fw_backend, tmp_path):  # noqa: F811
    import subprocess

    import soundfile as sf

    from transforms.core import audio as au
    from transforms.lyrics.stage import lyrics_label

    lines = ["我们在夜里唱歌", "风吹过城市的街道", "明天还会再见面"]
    clips = []
    for k, text in enumerate(lines):
        wav = tmp_path / f"l{k}.wav"
        subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "130", "-w", str(wav), text], check=True)
        x, rate = sf.read(str(wav), dtype="float32")
        clips += [au.resample(x[None, :], rate, au.ASR_RATE)[0], np.zeros(8000, np.float32)]
    audio = np.concatenate([np.zeros(16000, np.float32), *clips, np.zeros(16000, np.float32)])
    label = lyrics_label(fw_backend, audio, audio.size / 16000, sheet=sh.parse_sheet("\n".join(lines)),
                         forced_language="zh")
    assert label["words_source"] == "reference", label.get("agreement")
    body = label["gt_lyric"].split("] ", 1)[-1]
    assert "".join(lines) in body.replace(".", "").replace(" ", "")  # every character, in order
    assert all(not part.rstrip().endswith(".") for part in label["gt_lyric"].split(" ; "))  # no trailing "."
