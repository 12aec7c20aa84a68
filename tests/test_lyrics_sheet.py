"""The lyric-sheet parser (transforms/lyrics/sheet.py): headings, repeats, credits, LRC, caps, Chinese."""

from __future__ import annotations

import random
import time

import pytest

from transforms.lyrics import sheet as sh
from transforms.lyrics.sheet_text import classify, section_word


def _names(sheet):
    return [(b.name, b.section, b.times, b.repeat_of, [ln.text for ln in b.lines]) for b in sheet.blocks]


@pytest.mark.parametrize("heading, name, section", [
    ("[Chorus]", "Chorus", "chorus"), ("[Verse 2]", "Verse 2", "verse"), ("Verse 1:", "Verse 1", "verse"),
    ("CHORUS", "CHORUS", "chorus"), ("(Chorus)", "Chorus", "chorus"), ("Pre-Chorus", "Pre-Chorus", "verse"),
    ("Bridge", "Bridge", "bridge"), ("Intro", "Intro", "intro"), ("[Outro]", "Outro", "outro"),
    ("Hook:", "Hook", "chorus"), ("[Instrumental]", "Instrumental", "inst"), ("{Refrain}", "Refrain", "chorus"),
    ("[Verse 1: Jay & Bey]", "Verse 1: Jay & Bey", "verse"), ("[Guitar Solo]", "Guitar Solo", "inst"),
    ("*Post-Chorus*", "Post-Chorus", "chorus"), ("[Part II]", "Part II", ""),
])
def test_headings_in_every_form_name_a_block_and_its_section(heading, name, section):
    sheet = sh.parse_sheet(f"{heading}\nwe run along the night\n")
    assert _names(sheet) == [(name, section, 1, None, ["we run along the night"])]


def test_lyrics_that_look_like_headings_stay_lyrics():
    text = "Bridge over troubled water\n(ooh yeah)\nrepeat after me\nI said it twice\nCatch 22 x nothing"
    sheet = sh.parse_sheet(text)
    assert [ln.text for b in sheet.blocks for ln in b.lines] == text.splitlines()
    assert classify("Verse 1: I walk alone") == ("heading", "Verse 1", 1, "I walk alone")


def test_repeat_marks_are_recorded_not_expanded():
    text = ("[Verse]\nhold on (x2)\nwe run\n\n[Chorus x2]\nla di da\n\n[Bridge]\nbridge words\n(x3)\n")
    sheet = sh.parse_sheet(text)
    assert _names(sheet) == [("Verse", "verse", 1, None, ["hold on", "we run"]),
                             ("Chorus", "chorus", 2, None, ["la di da"]),
                             ("Bridge", "bridge", 3, None, ["bridge words"])]
    assert sheet.blocks[0].lines[0].times == 2
    assert [w.text for w in sh.words(sheet)] == "hold on we run la di da bridge words".split()
    assert [w.text for w in sh.expanded_words(sheet)] == (
        "hold on hold on we run la di da la di da bridge words bridge words bridge words".split())


@pytest.mark.parametrize("again", ["[Chorus]", "Repeat chorus", "(Repeat Chorus)", "Chorus (repeat)", "CHORUS"])
def test_a_chorus_written_once_is_a_repeat_of_that_block(again):
    text = f"[Verse 1]\nfirst verse\n\n[Chorus]\nhold me now\n\n[Verse 2]\nsecond verse\n\n{again}\n\n[Outro]\nbye now\n"
    sheet = sh.parse_sheet(text)
    assert sheet.blocks[3].repeat_of == 1 and sheet.blocks[3].lines == [] and sheet.blocks[3].section == "chorus"
    assert " ".join(w.text for w in sh.words(sheet)) == "first verse hold me now second verse bye now"
    expanded = sh.expanded_words(sheet)
    assert " ".join(w.text for w in expanded) == "first verse hold me now second verse hold me now bye now"
    again_words = [w for w in expanded if w.block == 3]
    assert {(w.source_block, w.repeat) for w in again_words} == {(1, 1)}


def test_a_bare_heading_without_an_earlier_block_stays_an_empty_block():
    sheet = sh.parse_sheet("[Intro]\n\n[Verse]\nwords here\n\n[Instrumental]\n[Chorus]\nhook line\n")
    assert _names(sheet) == [("Intro", "intro", 1, None, []), ("Verse", "verse", 1, None, ["words here"]),
                             ("Instrumental", "inst", 1, None, []), ("Chorus", "chorus", 1, None, ["hook line"])]
    dropped = sh.parse_sheet("Repeat chorus\nwords\n").dropped
    assert [(d.line, d.reason) for d in dropped] == [(1, "repeat_of_unknown_block")]


def test_credit_lines_are_dropped_with_their_reason():
    text = "Lyrics by Jane Doe\n作词：某人\nComposer: Bob\n(c) 2021 Label\nJohn: the night is young\nwe run"
    sheet = sh.parse_sheet(text)
    assert [ln.text for b in sheet.blocks for ln in b.lines] == ["the night is young", "we run"]
    assert [(d.line, d.reason) for d in sheet.dropped] == [(1, "credit_line"), (2, "credit_line"),
                                                          (3, "credit_line"), (4, "credit_line"),
                                                          (5, "speaker_prefix")]


def test_lrc_line_times_tags_and_several_times_on_a_line():
    text = ("[ar:Some One]\n[ti:A Song]\n[length:03:20]\n[00:12.50]hold on tight\n"
            "[00:20.00][01:05.00]the night is young\n[00:30:25]third line\n[00:40.00]\n")
    sheet = sh.parse_sheet(text)
    assert sheet.meta == {"ar": "Some One", "ti": "A Song", "length": "03:20"} and sheet.timed
    lines = [ln for b in sheet.blocks for ln in b.lines]
    assert [(ln.start, ln.text) for ln in lines] == [(12.5, "hold on tight"), (20.0, "the night is young"),
                                                    (30.25, "third line"), (65.0, "the night is young")]
    assert [ln.end for ln in lines] == [None, None, 40.0, None]  # the empty timed line closes the one before
    assert sh.sheet_format(text) == "lrc" and sh.sheet_format("plain\nwords") == "txt"


@pytest.mark.parametrize("offset, shift", [("+500", -0.5), ("-250", 0.25), ("0", 0.0)])
def test_the_offset_tag_is_applied_to_line_and_word_times(offset, shift):
    sheet = sh.parse_sheet(f"[offset:{offset}]\n[00:10.00]<00:10.00>hold <00:10.80>on\n")
    line = sheet.blocks[0].lines[0]
    assert line.start == pytest.approx(10.0 + shift)
    assert [w.start for w in line.words] == pytest.approx([10.0 + shift, 10.8 + shift])
    assert sheet.offset == pytest.approx(-shift)


def test_enhanced_lrc_gives_every_word_its_time():
    text = "[00:10.00]<00:10.00>Hold <00:10.50>me <00:11.00>clo<00:11.20>ser <00:12.00>\n"
    sheet = sh.parse_sheet(text)
    words = sheet.blocks[0].lines[0].words
    assert [(w.text, w.start, w.end) for w in words] == [("Hold", 10.0, 10.5), ("me", 10.5, 11.0),
                                                         ("closer", 11.0, 12.0)]
    assert sheet.word_timed and sheet.blocks[0].lines[0].text == "Hold me closer"
    flat = sh.words(sheet)
    assert [(w.block, w.line, w.word, w.start) for w in flat] == [(0, 0, 0, 10.0), (0, 0, 1, 10.5), (0, 0, 2, 11.0)]


@pytest.mark.parametrize("bad", ["[" + "9" * 400 + ":00.00]", "[-00:01.00]", "[00:ab.cd]", "[00:75.00]",
                                 "[+1:00.00]"])
def test_a_bad_timestamp_drops_its_line_with_a_reason_and_keeps_the_song(bad):
    sheet = sh.parse_sheet(f"[00:01.00]first line\n{bad}broken line\n[00:09.00]last line\n")
    assert [ln.text for b in sheet.blocks for ln in b.lines] == ["first line", "last line"]
    assert [(d.line, d.reason) for d in sheet.dropped] == [(2, "bad_timestamp")]
    word = sh.parse_sheet("[00:01.00]<" + "9" * 30 + ":00>word <00:02.00>two")
    assert [w.start for w in word.blocks[0].lines[0].words] == [None, 2.0]
    assert [d.reason for d in word.dropped] == ["bad_word_timestamp"]


def test_a_hostile_sheet_is_cut_and_the_cut_recorded():
    text = ("[Chorus]\n" + "na na na hey hey goodbye " * 4 + "\n") * 45_000  # about 10 MB
    start = time.time()
    sheet = sh.parse_sheet(text)
    assert time.time() - start < 5.0
    cut = sheet.truncated
    assert cut and cut.original_chars == len(text) and cut.kept_chars <= sh.MAX_SHEET_CHARS
    assert cut.kept_lines <= sh.MAX_SHEET_LINES and sheet.dropped[0].reason == "truncated"
    assert sum(len(b.lines) for b in sheet.blocks) == cut.kept_lines // 2
    one_line = sh.parse_sheet("x" * 10_000_000)
    assert one_line.truncated and [d.reason for d in one_line.dropped] == ["truncated", "line_too_long"]
    many = sh.parse_sheet("la\n" * 5000)
    assert many.truncated.kept_lines == sh.MAX_SHEET_LINES
    hinted = sh.parse_sheet("short text", original_chars=50_000)  # a caller cut it already
    assert hinted.truncated.original_chars == 50_000


def test_chinese_text_keeps_its_characters_one_word_each():
    sheet = sh.parse_sheet("[副歌]\n我爱你，中国！\n[00:05.00]<00:05.00>我<00:05.40>们\n")
    lines = [ln for b in sheet.blocks for ln in b.lines]
    assert lines[0].text == "我爱你,中国!"  # ASCII punctuation, characters kept
    assert [w.text for w in lines[0].words] == list("我爱你中国")
    assert [(w.text, w.start) for w in lines[1].words] == [("我", 5.0), ("们", 5.4)]
    assert sheet.blocks[0].name == "副歌" and sheet.blocks[0].section == ""


def test_text_is_cleaned_to_ascii_punctuation():
    sheet = sh.parse_sheet("“Don’t stop” — it’s…\n")
    line = sheet.blocks[0].lines[0]
    assert line.text == '"Don\'t stop" - it\'s...' and [w.text for w in line.words] == ["Don't", "stop", "it's"]


def test_blank_lines_separate_stanzas_without_headings():
    sheet = sh.parse_sheet("one line\ntwo line\n\n\nthree line\n")
    assert [[ln.text for ln in b.lines] for b in sheet.blocks] == [["one line", "two line"], ["three line"]]
    assert sh.plain_lines(sheet) == [{"time": None, "text": t} for t in ("one line", "two line", "three line")]


def test_section_words_map_onto_songshards_sections():
    assert {section_word(n) for n in ("Verse 3", "PRE-CHORUS", "Refrain", "Middle 8", "Coda", "Interlude",
                                      "Chorus x2", "Final Chorus", "Breakdown")} == {"verse", "chorus", "bridge",
                                                                                    "outro", "inst"}
    assert section_word("Part II") == "" and section_word("silence") == ""


def test_no_text_makes_the_parser_raise():
    rng = random.Random(7)
    alphabet = "[]()<>:.-+x0123456789 \n\tabcXYZ我，：©\u3000\ufeff"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        sheet = sh.parse_sheet(text)
        sh.expanded_words(sheet)
    assert sh.parse_sheet(None).blocks == [] and sh.parse_sheet(b"\xff\xfeab").blocks
