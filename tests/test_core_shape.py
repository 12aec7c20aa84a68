"""Section shaping: each rule on hand-made analyser outputs, the bad lines seen on real music, and
seeded random section lists (the output always passes check_shape, tiles the song, is a fixed point)."""

import numpy as np
import pytest

from transforms.core import sections as sec
from transforms.core import shape

BAR = 2.0  # 120 bpm, 4/4
DOWNBEATS = list(np.arange(0.0, 400.0, BAR))
BEATS = list(np.arange(0.0, 400.0, BAR / 4))


def secs(*spec):
    """Sections from (end, label) pairs, starting at 0."""
    out, t = [], 0.0
    for end, label in spec:
        out.append({"start": t, "end": float(end), "label": label})
        t = float(end)
    return out


def tags(sections):
    return [s["tag"] for s in sec.with_tags(sections)]


def run(sections, duration, **kw):
    kw.setdefault("beats", BEATS)
    kw.setdefault("downbeats", DOWNBEATS)
    kw.setdefault("bpm", 120.0)
    return shape.shape_sections(sections, duration, **kw)


def assert_tiles(out, duration):
    assert out[0]["start"] == 0.0 and out[-1]["end"] == pytest.approx(duration, abs=1e-3)
    for a, b in zip(out[:-1], out[1:]):
        assert a["end"] == b["start"]
    assert all(s["end"] > s["start"] for s in out)


# ---- the bad lines seen on real music ---------------------------------------------------------

def test_three_short_intros_in_a_row_become_one_intro():
    song = secs((6.1, "intro"), (12.3, "intro"), (16.6, "intro"), (48, "verse"), (70, "chorus"), (100, "verse"),
                (122, "chorus"), (150, "inst"), (172, "chorus"), (200, "outro"))
    assert shape.check_shape(tags(song)[:4]) != []
    out = run(song, 200.0)
    assert tags(out)[:2] == ["intro-medium", "verse"]  # one intro: 0-16 s, 16.6 snapped to the downbeat at 16
    assert out[0]["end"] == 16.0
    assert shape.check_shape(tags(out)) == []


def test_outro_medium_outro_medium_outro_short_become_one_outro():
    song = secs((20, "intro"), (60, "verse"), (90, "chorus"), (160, "verse"), (174, "outro"), (188, "outro"),
                (195, "outro"))
    before = tags(song)
    assert before[-3:] == ["outro-medium", "outro-medium", "outro-short"]
    problems = shape.check_shape(before)
    assert any(p.startswith("repeated outro") for p in problems)
    assert any(p.startswith("adjacent same kind") for p in problems)
    out = run(song, 195.0)
    assert tags(out)[-1] == "outro-long" and [t.split("-")[0] for t in tags(out)].count("outro") == 1
    assert out[-1]["start"] == 160.0
    assert shape.check_shape(tags(out)) == []


@pytest.mark.parametrize("vocals", [None, []])
def test_fifteen_inst_sections_over_200s_are_a_few_long_ones(vocals):
    rng = np.random.default_rng(3)
    inner = np.sort(rng.uniform(8.0, 192.0, 14))
    bounds = [0.0, *inner, 200.0]
    song = [{"start": a, "end": b, "label": "inst"} for a, b in zip(bounds[:-1], bounds[1:])]
    song[0]["label"], song[-1]["label"] = "intro", "outro"
    assert len(song) == 15 and "too many sections" in " ".join(shape.check_shape(tags(song)))
    out = run(song, 200.0, vocals=vocals)
    assert 1 <= len(out) <= 3
    assert all(shape.tag_family(t) in ("intro", "inst", "outro") for t in tags(out))
    assert any(t == "inst-long" for t in tags(out))
    assert shape.check_shape(tags(out)) == []


def test_an_instrumental_analysed_as_a_song_loses_its_words():
    song = secs((8, "intro"), (40, "verse"), (60, "chorus"), (90, "verse"), (110, "chorus"), (150, "solo"),
                (170, "chorus"), (185, "outro"))
    out = run(song, 185.0, vocals=[(50.0, 52.0)])  # 2 s of "voice": a VAD slip, not a song
    assert tags(out) == ["intro-short", "inst-long", "outro-medium"]


def test_an_instrumental_labelled_verse_and_chorus_throughout_becomes_intro_inst_outro():
    # the dsp analyser's labels on a real 206 s instrumental whose separated "vocals" were bleed
    labels = ("verse verse verse chorus verse verse verse verse verse verse chorus bridge chorus bridge "
              "verse verse verse verse").split()
    bounds = np.linspace(0.0, 206.0, len(labels) + 1)
    song = [{"start": a, "end": b, "label": lab} for a, b, lab in zip(bounds[:-1], bounds[1:], labels)]
    assert "too many sections" in " ".join(shape.check_shape(tags(song)))
    out = run(song, 206.0, vocals=[])
    assert tags(out) == ["intro-medium", "inst-long", "outro-medium"]


# ---- one rule at a time -----------------------------------------------------------------------

def test_intro_and_outro_in_the_middle_become_inst():
    song = secs((16, "intro"), (48, "verse"), (64, "intro"), (96, "chorus"), (112, "outro"), (144, "verse"),
                (160, "outro"))
    out = run(song, 160.0)
    assert [s["label"] for s in out] == ["intro", "verse", "inst", "chorus", "inst", "verse", "outro"]


def test_boundaries_sit_on_downbeats_and_favour_eight_bar_phrases():
    # 15.0 s lies halfway between 14 (7 bars) and 16 (8 bars): the 8-bar phrase wins
    out = run(secs((15.0, "verse"), (47.3, "chorus"), (80.0, "verse")), 80.0)
    assert [s["end"] for s in out] == [16.0, 48.0, 80.0]
    # 14.2 s is clearly nearer 14: nearness wins over the phrase
    assert run(secs((14.2, "verse"), (48.0, "chorus")), 48.0)[0]["end"] == 14.0
    # a downbeat grid with an offset: boundaries move onto it
    grid = list(np.arange(0.37, 100.0, 2.0))
    out = run(secs((33.0, "verse"), (61.0, "chorus"), (100.0, "verse")), 100.0, downbeats=grid, beats=())
    assert all(any(abs(s["end"] - g) < 1e-3 for g in grid) for s in out[:-1])


def test_a_section_under_two_bars_joins_its_more_similar_neighbour():
    # a one-bar chorus scrap between a verse and a chorus joins the chorus
    out = run(secs((32, "verse"), (34, "chorus"), (64, "chorus"), (96, "verse")), 96.0)
    assert [(s["start"], s["end"], s["label"]) for s in out] == [
        (0.0, 32.0, "verse"), (32.0, 64.0, "chorus"), (64.0, 96.0, "verse")]
    # a one-bar inst between two sung sections is alike to neither: it joins the shorter one
    out = run(secs((32, "verse"), (33.2, "inst"), (50, "chorus"), (96, "verse")), 96.0)
    assert [(s["start"], s["end"], s["label"]) for s in out] == [
        (0.0, 32.0, "verse"), (32.0, 50.0, "chorus"), (50.0, 96.0, "verse")]
    # a two-bar inst is long enough to stay
    out = run(secs((32, "verse"), (36, "inst"), (50, "chorus"), (96, "verse")), 96.0)
    assert [s["label"] for s in out] == ["verse", "inst", "chorus", "verse"]


def test_sung_stretches_are_verse_and_vocal_free_stretches_inst():
    song = secs((200, "verse"))  # one analyser section over the whole song
    vocals = [(20.3, 50.0), (52.5, 80.1), (100.2, 160.4)]  # a 2.5 s breath at 50 s, a 20 s break at 80 s
    out = run(song, 200.0, vocals=vocals)
    assert [(s["start"], s["end"], s["label"]) for s in out] == [
        (0.0, 20.0, "intro"), (20.0, 80.0, "verse"), (80.0, 100.0, "inst"), (100.0, 160.0, "verse"),
        (160.0, 200.0, "outro")]
    # no analyser sections at all: the vocal timeline alone makes the line
    out = run([], 60.0, vocals=[(10.0, 40.0)])
    assert [(s["start"], s["end"], s["label"]) for s in out] == [(0.0, 10.0, "intro"), (10.0, 40.0, "verse"),
                                                                 (40.0, 60.0, "outro")]
    assert [s["label"] for s in run([], 60.0)] == [s["label"] for s in run([], 60.0, vocals=[])] == ["inst"]
    # an inst-labelled stretch full of singing becomes a sung section
    out = run(secs((40, "intro"), (80, "inst"), (120, "outro")), 120.0, vocals=[(40.0, 80.0)])
    assert [s["label"] for s in out] == ["intro", "verse", "outro"]


def test_chorus_is_the_most_repeated_loudest_group_when_features_are_given():
    song = secs((16, "intro"), (48, "verse"), (64, "verse"), (96, "verse"), (112, "verse"), (144, "bridge"),
                (160, "verse"), (176, "outro"))
    vocals = [(16.0, 160.0)]
    feats = [{}, {"group": 0, "energy": -14}, {"group": 1, "energy": -8}, {"group": 0, "energy": -14},
             {"group": 1, "energy": -8}, {"group": 2, "energy": -11}, {"group": 1, "energy": -7}, {}]
    out = run(song, 176.0, vocals=vocals, features=feats)
    assert [s["label"] for s in out] == ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"]
    # without features the analyser's sung labels stand
    assert [s["label"] for s in run(song, 176.0, vocals=vocals)][1:7] == ["verse"] * 4 + ["bridge", "verse"]
    # repetition counts alone, and loudness alone, also tell the chorus
    reps = [{"repetition": r} for r in (1, 2, 3, 2, 3, 1, 3, 1)]
    assert [s["label"] for s in run(song, 176.0, vocals=vocals, features=reps)][2] == "chorus"
    loud = [{"energy": e} for e in (-20, -14, -8, -14, -8, -11, -7, -20)]
    assert [s["label"] for s in run(song, 176.0, vocals=vocals, features=loud)][1:7] == [
        "verse", "chorus", "verse", "chorus", "bridge", "chorus"]


def test_silence_at_the_edges_stays_when_long_and_is_absorbed_when_short():
    song = [{"start": 6.0, "end": 30.0, "label": "intro"}, {"start": 30.0, "end": 90.0, "label": "verse"},
            {"start": 90.0, "end": 98.5, "label": "outro"}]  # 6 s before, 1.5 s after: gaps
    out = run(song, 100.0)
    assert [s["label"] for s in out] == ["silence", "intro", "verse", "outro"]
    assert out[-1]["end"] == 100.0
    song = [{"start": 0.0, "end": 1.2, "label": "start"}, {"start": 1.2, "end": 30.0, "label": "intro"},
            {"start": 30.0, "end": 90.0, "label": "verse"}]
    assert [(s["start"], s["label"]) for s in run(song, 90.0)] == [(0.0, "intro"), (30.0, "verse")]


def over_segmented_song(bar, rng):
    """A typical song (intro, verse, chorus, verse, chorus, solo, bridge, chorus x2, outro) in bars,
    cut by an analyser into 2-3 pieces a section, boundaries jittered; plus its sung regions."""
    plan = [("intro", 8, 3), ("verse", 16, 2), ("chorus", 8, 2), ("verse", 16, 2), ("chorus", 8, 2),
            ("solo", 8, 3), ("bridge", 8, 1), ("chorus", 8, 2), ("chorus", 8, 2), ("outro", 8, 3)]
    song, vocals, t = [], [], 0.0
    for label, bars, pieces in plan:
        cuts = [t + bar * bars * k / pieces for k in range(pieces + 1)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            song.append({"start": a, "end": b, "label": label})
        if label in ("verse", "chorus", "bridge"):  # lines of 2 bars with a half-bar breath
            vocals += [(x + 0.1, x + 1.5 * bar) for x in np.arange(t, t + bars * bar, 2 * bar)]
        t += bar * bars
    for s, nxt in zip(song[:-1], song[1:]):
        s["end"] = nxt["start"] = s["end"] + float(rng.uniform(-0.3, 0.3)) * bar
    return song, vocals, t


@pytest.mark.parametrize("bpm", [120.0, 96.0])  # 192 s and 240 s
def test_a_typical_song_cut_in_pieces_gives_5_to_12_sections(bpm):
    bar = 240.0 / bpm
    song, vocals, duration = over_segmented_song(bar, np.random.default_rng(int(bpm)))
    assert len(song) == 22 and shape.check_shape(tags(song)) != []
    grid = list(np.arange(0.0, duration, bar))
    out = shape.shape_sections(song, duration, downbeats=grid, bpm=bpm, vocals=vocals)
    assert 5 <= len(out) <= 12
    collapsed = [lab for k, lab in enumerate(s["label"] for s in out) if k == 0 or lab != out[k - 1]["label"]]
    assert collapsed == ["intro", "verse", "chorus", "verse", "chorus", "inst", "bridge", "chorus", "outro"]
    assert shape.check_shape(tags(out)) == []


def test_section_caps():
    assert shape.section_limit(60.0) == 4 and shape.section_limit(200.0) == 10
    assert shape.section_limit(240.0) == 12 and shape.section_limit(360.0) == 14
    # 15 alternating sections: the soft cap never merges a verse into a chorus, the hard cap of 14
    # does (the first pair, into a verse, which then joins the next verse under the soft cap)
    song = secs(*[(16.0 * (k + 1), ("verse", "chorus")[k % 2]) for k in range(15)])
    out = run(song, 240.0)
    assert len(out) == 13 and shape.check_shape(tags(out)) == []
    assert [s["label"] for s in out] == ["verse"] + ["chorus", "verse"] * 6
    song = secs(*[(16.0 * (k + 1), ("verse", "chorus")[k % 2]) for k in range(6)])
    assert [s["label"] for s in run(song, 96.0)] == ["verse", "chorus"] * 3  # 6 > 4 for 96 s, kept
    # the same label cut in pieces merges down to the soft cap
    song = secs(*[(16.0 * (k + 1), "verse") for k in range(8)])
    assert len(run(song, 128.0)) == shape.section_limit(128.0) == 6


def test_no_grid_still_shapes():
    out = shape.shape_sections(secs((5, "intro"), (6, "intro"), (40, "verse"), (41, "verse"), (60, "outro")), 60.0)
    assert [s["label"] for s in out] == ["intro", "verse", "outro"]
    assert shape.bar_grid([], [], 0.0, 60.0) == (pytest.approx([]), 2.0)
    grid, bar = shape.bar_grid(list(np.arange(0.5, 60, 0.5)), [], 0.0, 60.0)
    assert bar == pytest.approx(2.0) and grid[0] == 0.5
    grid, bar = shape.bar_grid([], [], 90.0, 60.0)
    assert bar == pytest.approx(240 / 90) and grid[0] == pytest.approx(240 / 90, abs=1e-3)


def test_overlaps_and_holes_tile_and_cleaning_twice_is_cleaning_once():
    song = [{"start": 0.0, "end": 20.0, "label": "intro"}, {"start": 18.0, "end": 50.0, "label": "verse"},
            {"start": 51.2, "end": 80.0, "label": "chorus"}, {"start": 79.0, "end": 95.0, "label": "break"},
            {"start": 95.0, "end": 130.0, "label": "chorus"}, {"start": 130.0, "end": 131.0, "label": "end"}]
    out = run(song, 140.0, vocals=[(20.5, 79.0), (96.0, 129.0)])
    assert_tiles(out, 140.0)
    # the 10 s after the music ("end" plus a hole) is a silence long enough to stay
    assert [s["label"] for s in out] == ["intro", "verse", "chorus", "inst", "chorus", "silence"]
    assert run(out, 140.0, vocals=[(20.5, 79.0), (96.0, 129.0)]) == out
    for bad in (secs((6.1, "intro"), (12.3, "intro"), (16.6, "intro"), (60, "verse"), (100, "outro")),
                secs((40, "verse"), (174, "outro"), (188, "outro"), (195, "outro"))):
        once = run(bad, bad[-1]["end"])
        assert run(once, bad[-1]["end"]) == once


# ---- checks on finished lines ----------------------------------------------------------------

@pytest.mark.parametrize("seq,rule", [
    (["intro-short", "intro-short", "intro-short", "verse"], "repeated intro"),
    (["verse", "intro-short", "chorus"], "intro not first"),
    (["verse", "outro-medium", "outro-medium", "outro-short"], "repeated outro"),
    (["intro-short", "outro-short", "verse"], "outro not last"),
    (["verse", "inst-medium", "inst-medium", "chorus"], "adjacent same kind"),
    (["intro-short"] + ["verse", "chorus"] * 7 + ["outro-short"], "too many sections"),
    (["intro-short", "pre-chorus"], "unknown tag"),
    ([], "no sections"),
])
def test_check_shape_names_each_broken_rule(seq, rule):
    problems = shape.check_shape(seq)
    assert any(p.startswith(rule) for p in problems), problems


def test_check_shape_passes_good_lines():
    good = ["[intro-short]", "[verse]", "[chorus]", "[inst-long]", "[chorus]", "[outro-medium]"]
    assert shape.check_shape(good) == []
    assert shape.check_shape(["silence", "intro-long", "verse", "verse", "outro-short", "silence"]) == []


def test_shape_ok_reads_plain_and_timed_lines():
    good = "[intro-short] ; [verse] the night is young. we run along ; [chorus] hold on. hold on ; [outro-medium]"
    assert shape.shape_ok(good)
    timed = "[intro-short][0.00:8.00] ; [verse][8.00:31.05]the night is young. ; [outro-medium][31.05:45.00]"
    assert shape.shape_ok(timed)
    assert shape.parse_gt_lyric(timed)[1] == {"tag": "verse", "start": 8.0, "end": 31.05, "text": "the night is young."}
    assert not shape.shape_ok("[intro-short] ; [intro-short] ; [intro-short] ; [verse] la la")
    assert not shape.shape_ok("[verse] a b ; [outro-medium] ; [outro-medium] ; [outro-short]")
    assert not shape.shape_ok("[intro-short] hello there ; [verse] a b")  # words in the intro
    assert not shape.shape_ok("[intro-short][0.00:8.00] ; [verse][9.00:31.05]a b")  # a gap in the timing
    assert not shape.shape_ok("[verse] a b ; chorus c d")
    assert not shape.shape_ok("")


def test_settle_tags_merges_wordless_runs_left_by_lyric_placement():
    # a song nobody sings in, after sung sections were retagged by position
    placed = [{"start": 0.0, "end": 8.0, "tag": "intro-short", "num_words": 0},
              {"start": 8.0, "end": 30.0, "tag": "inst-long", "num_words": 0},
              {"start": 30.0, "end": 45.0, "tag": "inst-medium", "num_words": 0},
              {"start": 45.0, "end": 50.0, "tag": "outro-short", "num_words": 0}]
    assert [(s["start"], s["end"], s["tag"]) for s in shape.settle_tags(placed)] == [
        (0.0, 8.0, "intro-short"), (8.0, 45.0, "inst-long"), (45.0, 50.0, "outro-short")]
    # an inst before the first sung section is part of the intro
    placed = [{"start": 0.0, "end": 6.0, "tag": "intro-short"}, {"start": 6.0, "end": 12.0, "tag": "inst-short"},
              {"start": 12.0, "end": 40.0, "tag": "verse"}, {"start": 40.0, "end": 50.0, "tag": "outro-medium"}]
    assert [s["tag"] for s in shape.settle_tags(placed)] == ["intro-medium", "verse", "outro-medium"]
    # a chunk inside the song has no intro or outro of its own (and its two inst pieces are one)
    assert [s["tag"] for s in shape.settle_tags(placed, opens=False, closes=False)] == [
        "inst-medium", "verse", "inst-medium"]
    assert shape.position_labels(["intro", "intro", "inst", "outro"], opens=False) == ["inst", "inst", "inst", "outro"]


def test_window_sections_clip_a_chunk():
    shaped = sec.with_tags(secs((16, "intro"), (48, "verse"), (64, "chorus"), (84, "inst"), (120, "verse")))
    win = shape.window_sections(shaped, 46.5, 86.0)  # 1.5 s and 2 s of verse at the edges: sung, kept
    assert [(s["start"], s["end"], s["tag"]) for s in win] == [
        (0.0, 1.5, "verse"), (1.5, 17.5, "chorus"), (17.5, 37.5, "inst-medium"), (37.5, 39.5, "verse")]
    win = shape.window_sections(shaped, 14.0, 66.0)  # 2 s of intro and 2 s of inst: wordless, absorbed
    assert [(s["start"], s["end"], s["tag"]) for s in win] == [(0.0, 34.0, "verse"), (34.0, 52.0, "chorus")]
    assert shape.check_shape([s["tag"] for s in win]) == []


# ---- properties on random section lists ----------------------------------------------------------

LABELS = ("intro", "outro", "verse", "chorus", "bridge", "inst", "solo", "break", "start", "end", "silence")


def random_song(rng):
    duration = float(rng.uniform(20.0, 360.0))
    n = int(rng.integers(1, 30))
    cuts = np.sort(rng.uniform(0.0, duration, n - 1))
    bounds = [0.0, *cuts, duration]
    song = [{"start": float(a), "end": float(b), "label": str(rng.choice(LABELS))}
            for a, b in zip(bounds[:-1], bounds[1:])]
    if rng.random() < 0.3:  # holes and overlaps, as analysers leave them
        for s in song:
            s["start"] += float(rng.uniform(-1.0, 2.0))
    bar = 240.0 / float(rng.uniform(60.0, 190.0))
    grid_kind = rng.integers(0, 4)
    downbeats = list(np.arange(rng.uniform(0, bar), duration, bar)) if grid_kind == 0 else []
    beats = list(np.arange(rng.uniform(0, bar / 4), duration, bar / 4)) if grid_kind == 1 else []
    bpm = 240.0 / bar if grid_kind == 2 else 0.0
    vocals = None
    if rng.random() < 0.7:
        starts = np.sort(rng.uniform(0, duration, int(rng.integers(0, 12))))
        vocals = [(float(s), float(min(duration, s + rng.uniform(0.5, 40.0)))) for s in starts]
    features = None
    if rng.random() < 0.4:
        features = [{"group": int(rng.integers(0, 4)), "energy": float(rng.uniform(-30, -5)),
                     "repetition": int(rng.integers(1, 5))} for _ in song]
    return song, duration, dict(beats=beats, downbeats=downbeats, bpm=bpm, vocals=vocals, features=features)


@pytest.mark.parametrize("seed", range(300))
def test_random_sections_come_out_shaped_tiled_and_stable(seed):
    rng = np.random.default_rng(seed)
    song, duration, kw = random_song(rng)
    out = shape.shape_sections(song, duration, **kw)
    assert_tiles(out, duration)
    assert shape.check_shape(tags(out)) == []
    assert len(out) <= shape.MAX_SECTIONS
    grid, bar = shape.bar_grid(kw["beats"], kw["downbeats"], kw["bpm"], duration)
    if len(out) > 1:
        assert min(s["end"] - s["start"] for s in out) >= 2 * bar - 1e-2
    for s in out[:-1]:  # every inner boundary on a downbeat when one lies within a bar
        if len(grid) and np.min(np.abs(grid - s["end"])) <= bar:
            assert np.min(np.abs(grid - s["end"])) < 2e-3
    again = shape.shape_sections(out, duration, **{**kw, "features": None})
    assert again == out
    lyric = " ; ".join(f"[{t}] la la." if t in ("verse", "chorus", "bridge") else f"[{t}]" for t in tags(out))
    assert shape.shape_ok(lyric), lyric
