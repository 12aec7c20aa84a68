"""The pure parts of the real-music evaluation set builder (benchmarks/realmusic_truth.py and the
catalogue): MIDI / tracker tempo, mixing at a vocal-to-accompaniment ratio, key estimate, lyric
layout, truth records. Tiny synthetic inputs; no apt package, no audio tool needed."""

from __future__ import annotations

import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import realmusic_truth as rt  # noqa: E402


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _midi(division: int, tempo_events, notes_ticks: int) -> bytes:
    """A format-1 MIDI file: a tempo track with (tick, bpm) events and a meter, and a note track
    holding one long note (running status on the note-off) that ends at ``notes_ticks``."""
    tr, last = b"", 0
    tr += _vlq(0) + b"\xff\x58\x04\x03\x02\x18\x08"  # 3/4
    for tick, bpm in tempo_events:
        tr += _vlq(tick - last) + b"\xff\x51\x03" + int(round(60e6 / bpm)).to_bytes(3, "big")
        last = tick
    tr += _vlq(0) + b"\xff\x2f\x00"
    notes = (_vlq(0) + b"\xc0\x05" + _vlq(0) + b"\x90\x3c\x64" + _vlq(notes_ticks) + b"\x3c\x00"
             + _vlq(0) + b"\xff\x2f\x00")
    chunks = b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in (tr, notes))
    return b"MThd" + struct.pack(">IHHH", 6, 1, 2, division) + chunks


def test_midi_tempo_map_and_beats():
    data = _midi(480, [(0, 150.0), (480 * 8, 75.0)], notes_ticks=480 * 12)
    tmap = rt.midi_tempo_map(data)
    assert tmap["division"] == 480 and tmap["last_tick"] == 480 * 12
    assert [round(b, 3) for _, b in tmap["tempos"]] == [150.0, 75.0]
    assert tmap["meters"] == [(0, 3, 4)]
    beats = rt.midi_beats(tmap, until_s=100.0)
    # 8 beats at 0.4 s then 4 at 0.8 s (beat 12 sits on the last tick)
    assert len(beats) == 13
    assert beats[:3] == pytest.approx([0.0, 0.4, 0.8])
    assert beats[8] == pytest.approx(3.2) and beats[12] == pytest.approx(6.4)
    assert rt.midi_beats(tmap, until_s=1.0) == pytest.approx([0.0, 0.4, 0.8])
    # 150 bpm rules 3.2 s, 75 bpm 3.2 s to the last event then on: the longest span wins
    assert rt.dominant_bpm(tmap, until_s=3.0) == pytest.approx(150.0)
    assert rt.dominant_bpm(tmap, until_s=60.0) == pytest.approx(75.0)


def test_midi_downbeats_follow_the_time_signatures():
    tmap = rt.midi_tempo_map(_midi(480, [(0, 150.0), (480 * 8, 75.0)], notes_ticks=480 * 12))
    # 3/4 throughout: bars start on beats 0, 3, 6, 9, 12 (0.4 s beats, then 0.8 s from beat 8)
    assert rt.midi_downbeats(tmap, 100.0) == pytest.approx([0.0, 1.2, 2.4, 4.0, 6.4])
    assert rt.midi_downbeats(tmap, 2.0) == pytest.approx([0.0, 1.2])
    # 4/4 until a change to 2/4 at beat 6 (mid-bar: a new bar starts there), then 2/4
    changed = dict(tmap, meters=[(0, 4, 4), (480 * 6, 2, 4)], tempos=[(0, 120.0)])
    assert rt.midi_downbeats(changed, 100.0) == pytest.approx([0.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert rt.midi_downbeats(dict(changed, meters=[]), 100.0) == pytest.approx([0.0, 2.0, 4.0, 6.0])


def test_midi_without_tempo_defaults_to_120_and_rejects_non_midi():
    tmap = rt.midi_tempo_map(_midi(96, [], notes_ticks=96 * 4))
    assert tmap["tempos"] == [(0, 120.0)]
    assert rt.midi_beats(tmap, 10.0) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    with pytest.raises(ValueError):
        rt.midi_tempo_map(b"RIFF" + bytes(20))


def test_module_headers():
    xm = bytearray(b"Extended Module: " + bytes(80))
    xm[76:78], xm[78:80] = (3).to_bytes(2, "little"), (150).to_bytes(2, "little")
    assert rt.module_header(bytes(xm)) == {"format": "xm", "speed": 3, "tempo": 150}
    it = bytearray(b"IMPM" + bytes(60))
    it[0x32], it[0x33] = 5, 110
    assert rt.module_header(bytes(it)) == {"format": "it", "speed": 5, "tempo": 110}
    mod = bytearray(1200)
    mod[1080:1084] = b"M.K."
    assert rt.module_header(bytes(mod))["tempo"] == 125
    with pytest.raises(ValueError):
        rt.module_header(bytes(2000))
    assert rt.tracker_bpm(6, 125) == pytest.approx(125.0)
    assert rt.tracker_bpm(3, 150) == pytest.approx(300.0)
    assert rt.tracker_bpm(3, 150, rows_per_beat=8) == pytest.approx(150.0)


def _stems(sr=8000, seconds=4.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    acc = 0.3 * rng.standard_normal((2, n)) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    voc = np.zeros(n)
    voc[n // 4: 3 * n // 4] = np.sin(2 * np.pi * 220 * t[n // 4: 3 * n // 4])
    return np.stack([voc, voc]), acc, sr


@pytest.mark.parametrize("snr_db", [-3.0, 0.0, 4.5])
def test_mix_at_snr_hits_the_ratio_and_sums(snr_db):
    voc, acc, sr = _stems()
    out = rt.mix_at_snr(voc, acc, snr_db, sr)
    assert np.array_equal(out["mix"], out["vocals"] + out["accompaniment"])
    assert rt.measured_snr_db(out["vocals"], out["accompaniment"], sr) == pytest.approx(snr_db, abs=0.01)
    assert np.max(np.abs(out["mix"])) == pytest.approx(10 ** (-1 / 20))
    # the accompaniment is only scaled, never reshaped
    ratio = out["accompaniment"] / acc
    assert np.allclose(ratio, ratio.flat[0])
    # the ratio is measured where the vocals sound: silent vocal parts stay silent
    assert not out["vocals"][:, : sr // 2].any()


def test_mix_at_snr_rejects_bad_input():
    voc, acc, sr = _stems()
    with pytest.raises(ValueError):
        rt.mix_at_snr(voc[:, :-1], acc, 0.0, sr)
    with pytest.raises(ValueError):
        rt.mix_at_snr(np.zeros_like(voc), acc, 0.0, sr)


def test_estimate_key_from_profiles():
    e_minor = np.roll(rt.MINOR_PROFILE, 4)
    assert rt.estimate_key(e_minor) == (4, "minor")
    g_major = np.roll(rt.MAJOR_PROFILE, 7)
    assert rt.estimate_key(g_major) == (7, "major")


def test_comb_phase_finds_the_grid_offset():
    rate, period = 100.0, 0.5  # onsets every 0.5 s, starting 0.2 s after the grid
    env = np.zeros(1000)
    env[np.round((np.arange(0.2, 9.9, period)) * rate).astype(int)] = 1.0
    grid = list(np.arange(0.0, 9.0, period))
    assert rt.comb_phase(env, rate, grid, period) == pytest.approx(0.2, abs=period / 40)
    assert rt.comb_phase(env, rate, [g + 0.2 for g in grid], period) == pytest.approx(0.0, abs=period / 40)


def test_lyric_layout_and_slots():
    lay = rt.lyric_layout(6, first=2.0, slot=3.0, lines_per_section=4, gap_slots=1)
    assert [t for t, _ in lay] == pytest.approx([2.0, 5.0, 8.0, 11.0, 17.0, 20.0])
    assert [s for _, s in lay] == [0, 0, 0, 0, 1, 1]
    assert rt.line_slot_beats(120) == 8 and rt.line_slot_beats(170) == 16


def test_truth_record_contents_and_checks():
    lyrics = [{"start": 1.0, "end": 2.0, "text": "hold on"}, {"start": 3.0, "end": 4.0, "text": "to me"}]
    rec = rt.truth_record(name="s", file="s.flac", duration=61.23456, source={"package": "p", "licence": "MIT"},
                          has_vocals=True, vocals_kind="synthetic", gender="female", language="en", lyrics=lyrics,
                          genre="rock", bpm=135.0, beats=[0.0, 0.444], stems={"vocals": "_stems/s/vocals.flac"})
    assert rec["lyrics_text"] == "hold on to me" and rec["licence"] == "MIT" and rec["duration"] == 61.235
    assert rec["has_vocals"] and rec["stems"]["vocals"].startswith("_stems/")
    with pytest.raises(ValueError):
        rt.truth_record(name="s", file="s.flac", duration=1, source={}, has_vocals=False, vocals_kind="none",
                        genre="synthwave-ish")
    with pytest.raises(ValueError):
        rt.truth_record(name="s", file="s.flac", duration=1, source={}, has_vocals=False, vocals_kind="none",
                        gender="male")


def test_catalogue_is_consistent():
    from realmusic_sources import CATALOGUE, apt_packages

    names = [e["name"] for e in CATALOGUE]
    assert len(names) == len(set(names)) and 12 <= len(names) <= 20
    assert all(not n.startswith(("_", ".")) for n in names)
    kinds = {e["vocals_kind"] for e in CATALOGUE}
    assert kinds == {"none", "real", "synthetic"}
    sung = [e for e in CATALOGUE if e["kind"] == "sung"]
    assert len(sung) >= 4 and {e["gender"] for e in sung} == {"male", "female"}
    assert {"festival", "espeak-ng", "timidity", "ffmpeg"} <= set(apt_packages())
    for e in CATALOGUE:
        src = e.get("bed", e)["source"]
        assert src["licence"] in ("CC-BY-SA-3.0", "MIT", "GPL-2.0", "GPL-2.0-or-later", "Zlib")
        if e["vocals_kind"] == "none":
            assert e.get("gender") is None


def test_eval_real_pure_figures():
    import eval_real as ev

    assert ev.normalise_words("[verse] Über die Brücke, we're GOING!") == "ueber die bruecke were going"
    assert ev.lyric_words("[intro-short] ; [inst-medium]") == 0
    assert ev.lyric_words("[verse] hold on ; to me") == 4
    assert ev.wer("hold on to me", "Hold on, to me!") == 0.0
    assert ev.wer("hold on to me", "hold to me") == pytest.approx(0.25)
    assert ev.wer("hold on", "") == 1.0
    assert ev.tempo_hits(200.0, 100.0) == {"2%": False, "4%": False, "4% any level": True}
    assert ev.tempo_hits(120.0, 122.0)["2%"] and not ev.tempo_hits(120.0, 125.5)["4%"]
    assert ev.tempo_hits(120.0, None) == {"2%": False, "4%": False, "4% any level": False}
    assert ev.confusion([(True, False), (True, True), (False, True)]) == {
        "vocal->vocal": 1, "vocal->pure": 1, "instrumental->pure": 1, "instrumental->vocal": 0}
    assert ev.genre_hit("metal", "Heavy Metal") and not ev.genre_hit("rock", "")
