"""The sample corpus: files, formats, sidecars, bad files and ground truth that holds for the audio.

One corpus of 5 short songs (every container but opus) is generated once for the module; the
tests check the ground truth against the written audio, not against the generator's own numbers.
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from pipeline import sample_corpus as sc

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or not (shutil.which("text2wave") or shutil.which("espeak-ng")),
    reason="the sample corpus needs ffmpeg and festival (text2wave) or espeak-ng")

SEED = 3
SECONDS = 30.0
AUDIO_EXT = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    truth = sc.make_sample_corpus(str(d), n_songs=5, seed=SEED, song_seconds=SECONDS)
    return d, truth


def read_any(path):
    """[C, N] float32 and rate: soundfile, else ffmpeg at 48 kHz stereo."""
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return x.T, sr
    except Exception:  # noqa: BLE001 - m4a / opus go through ffmpeg
        out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2", "-ar", "48000",
                              "-"], capture_output=True, check=True).stdout
        return np.frombuffer(out, dtype="<f4").reshape(-1, 2).T, 48000


def stems(d, song):
    voc, sr1 = sf.read(str(d / song["truth_stems"]["vocals"]), dtype="float32", always_2d=True)
    acc, sr2 = sf.read(str(d / song["truth_stems"]["accompaniment"]), dtype="float32", always_2d=True)
    assert sr1 == sr2 == 48000 and voc.shape == acc.shape and voc.shape[1] == 2
    return voc.T, acc.T


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


# ---------------------------------------------------------------- pure parts
@pytest.mark.parametrize("bpm", sc.TEMPOS)
@pytest.mark.parametrize("seconds", [20.0, 40.0, 70.0, 180.0])
def test_section_plan_covers_the_length_in_whole_bars(bpm, seconds):
    plan = sc.section_plan(bpm, seconds)
    assert [label for label, _ in plan] == ["intro", "verse", "chorus", "verse", "chorus", "outro"]
    bars = dict(enumerate(b for _, b in plan))
    assert all(b >= 1 for b in bars.values()) and all(bars[i] % 2 == 0 and bars[i] >= 2 for i in (1, 2, 3, 4))
    total = sum(bars.values()) * 4 * 60.0 / bpm
    assert total >= seconds and (total < seconds + 8 * 60.0 / bpm or sum(bars.values()) == 10)


def test_synthesis_parts_are_deterministic_and_in_key():
    assert sc.triad(60, "major", 0) == [60, 64, 67] and sc.triad(57, "minor", 0) == [57, 60, 64]
    assert sc.scale_midi(60, "major", 7) == 72 and sc.scale_midi(60, "major", -1) == 59
    for kind in ("kick", "snare", "hat", "open_hat", "crash"):
        a, b = sc.drum_hit(kind, seed=1), sc.drum_hit(kind, seed=1)
        assert np.array_equal(a, b) and abs(np.max(np.abs(a)) - 1.0) < 1e-9
    dark, bright = sc.pad_chord([60, 64, 67], 48000, 3), sc.pad_chord([60, 64, 67], 48000, 10)
    spec = lambda x: np.abs(np.fft.rfft(x[0]))  # noqa: E731
    f = np.fft.rfftfreq(48000, 1 / 48000)
    assert (spec(bright) * f).sum() / spec(bright).sum() > 1.5 * (spec(dark) * f).sum() / spec(dark).sum()
    notes = sc.melody("the night is young and we run", sc.CONTOURS["verse"][0], 0.5)
    assert [w for w, _, _ in notes] == "the night is young and we run".split()
    assert abs(sum(d for _, d, _ in notes) - 7 * 0.5) < 1e-9


@pytest.mark.parametrize("fmt", sc.FORMATS)
def test_encode_every_format_round_trips(tmp_path, fmt):
    t = np.arange(48000) / 48000
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    path = tmp_path / f"tone.{fmt}"
    sc.encode(x, str(path), fmt, {"artist": "A", "title": "T", "genre": "pop"})
    y, sr = read_any(path)
    assert sr == 48000 and y.shape[0] == 2 and abs(y.shape[1] - 48000) < 3000
    n = min(y.shape[1], 48000) - 4000
    lag = int(np.argmax(np.correlate(y[0, 2000:2000 + 2000], x[0, 2000:6000], "valid")))
    assert rms(y[0, 2000:2000 + n]) == pytest.approx(rms(x[0]), rel=0.1) and lag < 2001


# ---------------------------------------------------------------- the corpus
def test_song_files_decode_with_the_truth_duration(corpus):
    d, truth = corpus
    assert [s["format"] for s in truth["songs"].values()] == ["wav", "flac", "mp3", "ogg", "m4a"]
    for name, song in truth["songs"].items():
        assert song["file"] == f"{name}.{song['format']}"
        audio, sr = read_any(d / song["file"])
        assert sr == 48000 and audio.shape[0] == 2
        assert abs(audio.shape[1] / sr - song["duration"]) < 0.1, name
        peak = float(np.max(np.abs(audio)))
        assert 0.8 < peak <= 1.0, (name, peak)
        assert song["duration"] >= SECONDS


def test_mix_is_vocals_plus_accompaniment(corpus):
    d, truth = corpus
    for song in truth["songs"].values():
        voc, acc = stems(d, song)
        mix, _ = read_any(d / song["file"])
        n = min(mix.shape[1], voc.shape[1])
        err = mix[:, :n] - (voc + acc)[:, :n]
        if song["format"] in ("wav", "flac"):  # 16-bit: within one quantisation step
            assert np.max(np.abs(err)) < 2.0 / 32768
        elif song["format"] == "mp3":  # lossy but sample-aligned
            assert 20 * np.log10(rms(mix[:, :n]) / rms(err)) > 15
        assert np.max(np.abs(voc + acc)) == pytest.approx(10 ** (-1 / 20), abs=1e-3)


def test_sections_tile_the_song_on_the_bar_grid(corpus):
    _, truth = corpus
    for song in truth["songs"].values():
        secs = song["sections"]
        assert [s["label"] for s in secs] == ["intro", "verse", "chorus", "verse", "chorus", "outro"]
        assert secs[0]["start"] == 0.0 and secs[-1]["end"] == pytest.approx(song["duration"], abs=1e-5)
        assert all(a["end"] == b["start"] for a, b in zip(secs, secs[1:]))
        bar = 4 * 60.0 / song["bpm"]
        downbeats = np.array(song["downbeats"])
        for s in secs[1:]:
            assert np.min(np.abs(downbeats - s["start"])) < 1e-5  # every section after the intro starts on a bar
        for s in secs[1:-1]:
            bars = (s["end"] - s["start"]) / bar
            assert abs(bars - round(bars)) < 1e-4
        assert secs[2]["end"] - secs[2]["start"] == pytest.approx(secs[4]["end"] - secs[4]["start"], abs=1e-5)


def test_beats_follow_the_tempo_and_are_audible(corpus):
    d, truth = corpus
    bpms = [s["bpm"] for s in truth["songs"].values()]
    assert len(set(bpms)) == len(bpms)
    for a in bpms:
        for b in bpms:
            assert a == b or abs(a / b - 2) > 0.1 and abs(a / b - 1.5) > 0.06
    for song in truth["songs"].values():
        beats = np.array(song["beats"])
        assert np.allclose(np.diff(beats), 60.0 / song["bpm"], atol=2e-6)
        assert song["downbeats"] == song["beats"][::4] and song["meter"] == 4
        assert beats[-1] < song["duration"]
        _, acc = stems(d, song)
        mono = acc.mean(axis=0)
        w = int(0.02 * 48000)
        edge = np.diff(mono)  # a hit on every beat: high-passed energy jumps in the 20 ms after it
        onset = [rms(edge[int(t * 48000):int(t * 48000) + w]) > 1.5 * rms(edge[int(t * 48000) - w:int(t * 48000)])
                 for t in beats[1:]]
        assert np.mean(onset) > 0.95
        # downbeats are accented: louder attack than the other beats
        attack = [rms(mono[int(t * 48000):int(t * 48000) + w]) for t in beats]
        assert np.mean(attack[::4]) > 1.2 * np.mean([a for i, a in enumerate(attack) if i % 4])


def test_vocals_sing_only_in_verse_and_chorus(corpus):
    d, truth = corpus
    for song in truth["songs"].values():
        voc, acc = stems(d, song)
        for s in song["sections"]:
            seg = voc[:, int(s["start"] * 48000):int(s["end"] * 48000)]
            if s["label"] in ("intro", "outro"):
                assert rms(seg) < 1e-6
            else:
                assert rms(seg) > 0.02
        for line in song["lyrics"]:
            sec = song["sections"][line["section_index"]]
            assert sec["label"] in ("verse", "chorus") and sec["start"] <= line["start"] < line["end"] <= sec["end"]
            sung = voc[0, int(line["start"] * 48000):int(line["end"] * 48000)]
            under = acc[:, int(line["start"] * 48000):int(line["end"] * 48000)]
            assert rms(sung) > rms(under)  # clearly audible over the accompaniment
        by_sec = {}
        for line in song["lyrics"]:
            by_sec.setdefault(line["section_index"], []).append(line["text"])
        assert by_sec[2] == by_sec[4] and by_sec[1] != by_sec[3]
        assert song["lyrics_text"] == " ".join(ln["text"] for ln in song["lyrics"])
        assert all(re.fullmatch(r"[A-Za-z' ]+", ln["text"]) for ln in song["lyrics"])


def test_voice_register_matches_the_recorded_gender(corpus):
    d, truth = corpus
    genders = [s["gender"] for s in truth["songs"].values()]
    assert {"male", "female"} <= set(genders)
    for song in truth["songs"].values():
        lo, hi = (100, 150) if song["gender"] == "male" else (200, 300)
        assert lo <= song["vocal_f0_hz"] <= hi
        voc, _ = stems(d, song)
        assert sc.median_f0(voc[0].astype(np.float64)) == pytest.approx(song["vocal_f0_hz"], rel=0.1)
        assert song["vocal_engine"] in ("festival-singing", "espeak-ng")


def test_sidecars_and_tags(corpus):
    import mutagen

    d, truth = corpus
    songs = truth["songs"]
    artists = [s["artist"] for s in songs.values()]
    assert len(set(artists)) < len(artists)
    assert any(not s["sidecars"] for s in songs.values()) and any("lrc" in s["sidecars"] for s in songs.values())
    for name, song in songs.items():
        present = {ext for ext in ("json", "txt", "lrc") if (d / f"{name}.{ext}").exists()}
        assert present == set(song["sidecars"])
        if "json" in present:
            meta = json.loads((d / f"{name}.json").read_text())
            assert meta == {"artist": song["artist"], "title": song["title"], "genre": song["genre"],
                            "language": "en", "bpm": song["bpm"]}
        if "txt" in present:
            assert (d / f"{name}.txt").read_text().splitlines() == [ln["text"] for ln in song["lyrics"]]
        if "lrc" in present:
            rows = re.findall(r"^\[(\d+):(\d+\.\d+)\] (.+)$", (d / f"{name}.lrc").read_text(), re.M)
            assert [r[2] for r in rows] == [ln["text"] for ln in song["lyrics"]]
            assert all(abs(int(m) * 60 + float(s) - ln["start"]) < 0.01 for (m, s, _), ln in zip(rows, song["lyrics"]))
        if song["embedded_tags"] and song["format"] != "wav":
            tags = mutagen.File(str(d / song["file"]), easy=True).tags
            assert [tags[k][0] for k in ("artist", "title", "genre")] == [song["artist"], song["title"], song["genre"]]
        if not song["sidecars"]:
            assert song["embedded_tags"]


def test_bad_files_are_what_they_claim(corpus):
    d, truth = corpus
    exp = truth["expected"]
    assert {k: v["outcome"] for k, v in exp.items() if v["outcome"] == "dead_letter"} == {
        "empty.wav": "dead_letter", "truncated.flac": "dead_letter", "not_audio.mp3": "dead_letter",
        "silent.wav": "dead_letter", "zero_length.wav": "dead_letter"}
    assert (d / "empty.wav").stat().st_size == 0
    trunc = (d / "truncated.flac").read_bytes()
    assert len(trunc) == 2048 and trunc[:4] == b"fLaC"
    with pytest.raises(RuntimeError):  # soundfile.LibsndfileError
        sf.read(str(d / "truncated.flac"))
    assert (d / "not_audio.mp3").read_bytes().decode("ascii").startswith("songshard")
    silent, sr = sf.read(str(d / "silent.wav"))
    assert silent.shape[0] == 10 * sr and not np.any(silent)
    assert sf.info(str(d / "zero_length.wav")).frames == 0 and (d / "zero_length.wav").stat().st_size > 0
    [dup] = [k for k, v in exp.items() if v["outcome"] == "duplicate"]
    original = exp[dup]["of"]
    assert dup == "dup_of_" + original and dup > original  # --dedupe group keeps the smallest uri
    assert (d / dup).read_bytes() == (d / original).read_bytes()
    assert exp["short_song.wav"]["outcome"] == "filtered_too_short"
    short, sr = sf.read(str(d / "short_song.wav"))
    assert 15 < short.shape[0] / sr < 25 and rms(short) > 0.01


def test_discovery_sees_songs_and_bad_files_only(corpus):
    d, truth = corpus
    visible, hidden = set(), set()
    for root, _, files in os.walk(d):
        rel = os.path.relpath(root, d)
        for f in files:
            if f.lower().endswith(AUDIO_EXT):
                parts = [] if rel == "." else rel.split(os.sep)
                (hidden if any(p.startswith(("_", ".")) for p in parts) else visible).add(f)
    assert visible == {s["file"] for s in truth["songs"].values()} | set(truth["expected"])
    assert len(hidden) == 2 and truth["exclude_prefixes"] == ["_", "."]
    saved = json.loads((d / "ground_truth.json").read_text())
    assert saved == json.loads(json.dumps(truth))


def test_cli_is_deterministic(corpus, tmp_path, capsys):
    d, truth = corpus
    out = tmp_path / "again"
    assert sc.main([str(out), "--n_songs", "1", "--seed", str(SEED), "--song_seconds", str(SECONDS),
                    "--no_bad_files"]) == 0
    assert "01_" in capsys.readouterr().out
    name, song = next(iter(truth["songs"].items()))
    assert song["format"] == "wav"
    for rel in (song["file"], song["truth_stems"]["vocals"], song["truth_stems"]["accompaniment"]):
        assert (out / rel).read_bytes() == (d / rel).read_bytes(), rel
    again = json.loads((out / "ground_truth.json").read_text())
    assert again["songs"][name] == json.loads(json.dumps(song)) and again["expected"] == {}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_fallback_places_spoken_lines_on_the_grid():
    song = sc.build_song(1, SEED, 20.0, engine="espeak")
    info = song["truth"]
    assert info["vocal_engine"] == "espeak-ng" and info["gender"] == "female"
    assert 150 < info["vocal_f0_hz"] < 350
    voc = song["vocals"][0]
    for s in info["sections"]:
        seg = voc[int(s["start"] * 48000):int(s["end"] * 48000)]
        assert (rms(seg) < 1e-6) == (s["label"] in ("intro", "outro"))
    np.testing.assert_allclose(song["mix"], song["vocals"] + song["accompaniment"], atol=1e-6)
