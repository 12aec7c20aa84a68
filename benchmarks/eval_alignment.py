"""Forced alignment of reference lyrics and the reference / audio agreement, on songs whose word times are known.

    python benchmarks/eval_alignment.py [--songs 24] [--zh 8] [--seconds 50] [--bleed_db 20] [--json FILE]

Evaluation set (built here, in memory): each song is a lyric text made from this file's phrase
banks (English, and Mandarin for ``--zh`` songs), every word (every character in Mandarin) spoken
on its own by espeak-ng at a random pitch and speed and placed at a known time, in lines and
sections, over a real instrumental that a Debian package ships (Frets on Fire, Frozen Bubble,
ASC; a synthetic bed where none is installed). The "vocal stem" given to the stage is the voice
plus the instrumental ``--bleed_db`` dB below it (what a separator leaves behind).

Per song the stage's VAD (silero-vad) gives the vocal regions and the stage's own ``lyrics_label``
the ASR words; then ``forced.align_reference`` places (a) the true text, (b) a swapped text
(another song's, same language) and (c) the first half of the true text (partial lyrics).
Printed: word-onset error against the true times (median, p90), the agreement score's
distribution for each, the threshold that separates true from swapped and its rates, the repeat
check (the sheet writes the chorus once, the song sings it twice), and the compute of alignment
against the ASR decoding on the same audio (process CPU seconds per second of audio).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SR = 16000
BEDS = ("/usr/share/games/fretsonfire/data/songs/muldjord/chaos_god/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/muldjord/armygeddon/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/muldjord/mutilated_mime/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/muldjord/internal_degeneration/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/sectoid/Feelings/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/sectoid/Metal madness/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/sectoid/War of freedom/song.ogg",
        "/usr/share/games/fretsonfire/data/songs/sectoid/Escape from chaosland/song.ogg",
        "/usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg",
        "/usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.ogg",
        "/usr/share/games/asc/music/frontiers.mp3",
        "/usr/share/games/asc/music/machine_wars.mp3",
        "/usr/share/games/asc/music/time_to_strike.mp3")

# Phrase banks: a line is SUBJECT VERB OBJECT PLACE; songs draw disjoint lines, so two songs share
# only common words (as two real songs do).
EN = {"subject": ("I", "we", "you", "she", "the city", "my brother", "the river", "nobody", "the band",
                  "your mother", "the children", "an old friend", "the soldiers", "my heart", "the neighbours"),
      "verb": ("carried", "remember", "painted", "followed", "forgot", "were singing", "wait for",
               "kept", "found", "threw away", "are building", "lost", "will burn", "wrote", "sold"),
      "object": ("a silver coin", "the broken window", "a letter", "your yellow coat", "the morning paper",
                 "the northern lights", "a wooden boat", "the last song", "their promises", "a burning candle",
                 "the empty bottle", "a golden ring", "the summer rain", "a secret name", "the tired horses"),
      "place": ("down by the harbour", "across the valley", "in the kitchen", "under the bridge",
                "behind the station", "on a sunday", "before the winter", "along the highway",
                "outside the church", "at the county fair", "in the parking lot", "near the border",
                "above the clouds", "after midnight", "inside the factory")}
ZH = {"subject": ("我", "你", "我们", "他们", "月亮", "城市", "妈妈", "老朋友", "孩子们", "风"),
      "verb": ("带走了", "想起", "等待", "画下", "唱着", "忘记了", "寻找", "留下", "点亮", "写下"),
      "object": ("那封信", "你的名字", "一条小船", "昨天的梦", "蓝色的海", "一首老歌", "温暖的光", "回家的路",
                 "白色的花", "远方的山"),
      "place": ("在雨里", "到天亮", "在车站", "在窗前", "在夜晚", "在桥下", "在春天", "在海边", "在路上",
                "在心里")}


def make_lines(language: str, count: int, rng: np.random.Generator, used: set) -> List[str]:
    """``count`` lines not in ``used`` (which they join): subject verb object place."""
    bank = ZH if language == "zh" else EN
    lines = []
    while len(lines) < count:
        parts = [bank[k][rng.integers(len(bank[k]))] for k in ("subject", "verb", "object", "place")]
        line = ("" if language == "zh" else " ").join(parts)
        if line not in used:
            used.add(line)
            lines.append(line)
    return lines


def song_text(language: str, rng: np.random.Generator, used: set, verse_lines: int = 3,
              chorus_lines: int = 2) -> List[dict]:
    """Sections as sung: verse, chorus, verse, chorus (the same chorus lines twice)."""
    verse1, chorus, verse2 = (make_lines(language, n, rng, used) for n in (verse_lines, chorus_lines, verse_lines))
    return [{"label": "verse", "lines": verse1}, {"label": "chorus", "lines": chorus},
            {"label": "verse", "lines": verse2}, {"label": "chorus", "lines": chorus}]


def line_units(line: str, language: str) -> List[str]:
    return [ch for ch in line if not ch.isspace()] if language == "zh" else line.split()


_SPOKEN: Dict[tuple, np.ndarray] = {}


def speak(unit: str, language: str, pitch: int, speed: int) -> np.ndarray:
    """espeak-ng saying ``unit`` alone at 16 kHz, silence trimmed (so the placement time is the onset)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    key = (unit, language, pitch, speed)
    if key not in _SPOKEN:
        # espeak-ng's "cmn" voice reads its dictionary's pinyin with English rules ("hai2" as "hi two");
        # "cmn-latn-pinyin" says the characters as Mandarin
        voice = "cmn-latn-pinyin" if language == "zh" else "en-us"
        wav = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), "-s", str(speed), unit],
                             check=True, capture_output=True).stdout
        data, rate = sf.read(io.BytesIO(wav), dtype="float32")
        data = resample_poly(data, SR, rate).astype(np.float32)
        loud = np.flatnonzero(np.abs(data) > 0.03 * np.abs(data).max())
        _SPOKEN[key] = data[loud[0]:loud[-1] + 1] if loud.size else data
    return _SPOKEN[key]


def load_bed(path: Optional[str], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of an instrumental (16 kHz mono) from a random point of ``path``; a synthetic
    chord-and-drum bed when ``path`` is None or missing."""
    n = int(seconds * SR)
    if path and os.path.isfile(path):
        import soundfile as sf
        from scipy.signal import resample_poly

        data, rate = sf.read(path, dtype="float32", always_2d=True)
        data = resample_poly(data.mean(axis=1), SR, rate).astype(np.float32)
        if data.size >= n:
            first = int(rng.integers(0, data.size - n + 1))
            return data[first:first + n]
        return np.resize(data, n)
    t = np.arange(n) / SR
    roots = (110.0, 98.0, 82.4, 92.5)
    bed = np.zeros(n, np.float32)
    for k in range(int(np.ceil(seconds / 2.0))):
        a, b = int(k * 2.0 * SR), min(n, int((k + 1) * 2.0 * SR))
        f = roots[k % 4]
        tt = t[a:b] - t[a]
        bed[a:b] += sum(np.sin(2 * np.pi * f * m * tt) / m for m in (1, 2, 3, 4, 5)) * np.exp(-tt)
        kick = int(k * 2.0 * SR)
        for beat in range(4):
            i = kick + int(beat * 0.5 * SR)
            if i < n:
                m = min(n - i, 2000)
                bed[i:i + m] += np.sin(2 * np.pi * 55 * np.arange(m) / SR) * np.exp(-np.arange(m) / 400.0)
    return bed / (np.abs(bed).max() + 1e-9)


def build_song(seed: int, language: str = "en", bed_path: Optional[str] = None, bleed_db: float = 20.0,
               used: Optional[set] = None, verse_lines: int = 3, chorus_lines: int = 2,
               intro: Optional[float] = None) -> dict:
    """One song: ``{"audio" (16 kHz mono "vocal stem"), "duration", "language", "sections" (as
    sung), "words" [{"text", "start", "end", "line", "section"}] (true times), "sheet" (word list
    with the chorus written once) and "blocks" (its sections as forced.Block)}``."""
    from transforms.lyrics.forced import Block

    rng = np.random.default_rng(seed)
    sections = song_text(language, rng, set() if used is None else used, verse_lines, chorus_lines)
    speed_base = int(rng.integers(125, 160)) if language != "zh" else int(rng.integers(110, 140))
    pitch_base = int(rng.integers(25, 60))
    t = float(rng.uniform(3.0, 7.0)) if intro is None else intro
    placed = []
    for s_idx, section in enumerate(sections):
        for l_idx, line in enumerate(section["lines"]):
            for unit in line_units(line, language):
                pitch = int(np.clip(pitch_base + rng.integers(-20, 21), 0, 99))
                speed = int(speed_base + rng.integers(-15, 16))
                clip = speak(unit, language, pitch, speed) * float(10 ** (rng.uniform(-3, 3) / 20))
                placed.append({"text": unit, "start": round(t, 3), "end": round(t + clip.size / SR, 3),
                               "line": l_idx, "section": s_idx, "clip": clip})
                t += clip.size / SR + float(rng.uniform(0.04, 0.2))
            t += float(rng.uniform(0.6, 1.4))
        t += float(rng.uniform(2.5, 5.0))
    duration = t + 2.0
    voice = np.zeros(int(duration * SR), np.float32)
    for w in placed:
        i = int(round(w["start"] * SR))
        voice[i:i + w["clip"].size] += w["clip"]
    voice *= 0.5 / (np.abs(voice).max() + 1e-9)
    bed = load_bed(bed_path, voice.size / SR + 1.0, rng)[:voice.size]
    active = np.abs(voice) > 0
    gain = np.sqrt(np.mean(voice[active] ** 2) / (np.mean(bed ** 2) + 1e-12)) * 10 ** (-bleed_db / 20)
    sheet, blocks = [], []
    for s_idx, section in enumerate(sections[:3]):  # the sheet writes the chorus once
        first = len(sheet)
        sheet.extend(u for line in section["lines"] for u in ([line] if language == "zh" else line.split()))
        blocks.append(Block(section["label"], first, len(sheet)))
    sung_words = [u for s in sections for line in s["lines"] for u in ([line] if language == "zh" else line.split())]
    return {"audio": (voice + gain * bed).astype(np.float32), "duration": duration, "language": language,
            "sections": sections, "sung_words": sung_words, "sheet": sheet, "blocks": blocks,
            "words": [{k: v for k, v in w.items() if k != "clip"} for w in placed],
            "bed": os.path.basename(bed_path) if bed_path and os.path.isfile(bed_path) else "synthetic"}


# ---------------------------------------------------------------- evaluation

class TimedBackend:
    """The backend, with the seconds spent in ``transcribe`` and ``align`` added up (process CPU and wall)."""

    def __init__(self, backend):
        self.backend = backend
        self.seconds = {"transcribe": [0.0, 0.0], "align": [0.0, 0.0]}

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def _timed(self, key, fn, *args):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            self.seconds[key][0] += time.perf_counter() - w
            self.seconds[key][1] += time.process_time() - c

    def transcribe(self, *args):
        return self._timed("transcribe", self.backend.transcribe, *args)

    def align(self, *args):
        return self._timed("align", self.backend.align, *args)


def run_song(backend, vad, song: dict, swapped_words: Sequence[str], forced_language: bool = True) -> dict:
    """ASR (the stage's ``lyrics_label``), then the true and the swapped reference aligned; onset errors
    of the true one against the song's known times."""
    from transforms.core import vad as vad_mod
    from transforms.lyrics import forced
    from transforms.lyrics.stage import lyrics_label

    audio, lang = song["audio"], song["language"]
    vad_regions = vad_mod.vocal_regions(vad, audio, vad_mod.VadConfig(threshold=0.3))
    before = [list(v) for v in backend.seconds.values()]
    label = lyrics_label(backend, audio, song["duration"], vad_regions=vad_regions,
                         forced_language=lang if forced_language else None)
    asr_s = [backend.seconds["transcribe"][k] - before[0][k] for k in (0, 1)]
    out = {"language": lang, "duration": song["duration"], "bed": song["bed"], "asr_words": len(label["words"]),
           "regions": vad_regions, "asr_seconds": asr_s}
    half = song["sung_words"][:len(song["sung_words"]) // 2]
    for kind, words in (("true", song["sung_words"]), ("swapped", swapped_words), ("partial", half)):
        b0 = list(backend.seconds["align"])
        res = forced.align_reference(backend, audio, words, lang, vad_regions, label["words"])
        out[kind] = {"agreement": res["agreement"], "anchors": res["anchors"],
                     "align_seconds": [backend.seconds["align"][k] - b0[k] for k in (0, 1)]}
        if kind == "true":
            truth = song["words"]
            got = res["words"]
            assert [w["text"] for w in got] == [t["text"] for t in truth], "units differ from the truth"
            out["onset_errors"] = [abs(w["start"] - t["start"]) if w["placed"] else None for w, t in zip(got, truth)]
            out["confident_errors"] = [abs(w["start"] - t["start"]) for w, t in zip(got, truth) if w["confident"]]
    # the sheet writes the chorus once: does the aligner find that it is sung twice?
    b0 = list(backend.seconds["align"])
    res = forced.align_reference(backend, audio, song["sheet"], lang, vad_regions, label["words"],
                                 orders=forced.repeat_orders(song["blocks"]))
    expected = [u for u in forced.reference_units(song["sung_words"], lang)[0]]
    out["repeat"] = {"order": res["order"], "orders": res["orders"],
                     "sung_order_found": [w["text"] for w in res["words"]] == expected,
                     "align_seconds": [backend.seconds["align"][k] - b0[k] for k in (0, 1)]}
    return out


def choose_threshold(true_scores: Sequence[float], swapped_scores: Sequence[float]) -> float:
    """The threshold (a multiple of 0.01) that maximises (true kept + swapped detected); among ties, the
    middle of the widest gap."""
    grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)
    t, s = np.asarray(true_scores), np.asarray(swapped_scores)
    right = np.array([np.mean(t >= g) + np.mean(s < g) for g in grid])
    best = grid[right >= right.max() - 1e-9]
    return float(best[len(best) // 2])


def quantiles(x: Sequence[float]) -> str:
    x = np.asarray([v for v in x if v is not None], dtype=float)
    if not x.size:
        return "n/a"
    q = np.percentile(x, [0, 5, 50, 95, 100])
    return "min {:.3f}  p5 {:.3f}  median {:.3f}  p95 {:.3f}  max {:.3f}  (n={})".format(*q, x.size)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--songs", type=int, default=24, help="English songs")
    ap.add_argument("--zh", type=int, default=8, help="Mandarin songs")
    ap.add_argument("--verse_lines", type=int, default=2)
    ap.add_argument("--bleed_db", type=float, default=20.0, help="instrumental level below the voice in the stem")
    ap.add_argument("--seed", type=int, default=2300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write every song's figures here")
    args = ap.parse_args(argv)

    from transforms.core import vad as vad_mod
    from transforms.lyrics.agreement import AgreementConfig
    from transforms.lyrics.faster_whisper_backend import FasterWhisperBackend

    backend = TimedBackend(FasterWhisperBackend({"threads": args.threads}))
    backend.backend.load()
    vad = vad_mod.shared_vad()
    beds = [b for b in BEDS if os.path.isfile(b)] or [None]
    songs, used = [], set()
    for k in range(args.songs + args.zh):
        lang = "en" if k < args.songs else "zh"
        songs.append(build_song(args.seed + k, lang, beds[k % len(beds)], args.bleed_db, used, args.verse_lines))
    results = []
    for k, song in enumerate(songs):
        same = [j for j, s in enumerate(songs) if s["language"] == song["language"]]
        other = songs[same[(same.index(k) + 1) % len(same)]]
        r = run_song(backend, vad, song, other["sung_words"])
        results.append(r)
        e = [x for x in r["onset_errors"] if x is not None]
        print(f"song {k:2d} {song['language']} {song['duration']:5.1f} s bed {song['bed'][:22]:22s} "
              f"asr words {r['asr_words']:3d}  onset median {np.median(e):.3f} p90 {np.percentile(e, 90):.3f}  "
              f"score true {r['true']['agreement']['score']:.3f} swapped {r['swapped']['agreement']['score']:.3f}  "
              f"repeat {'found' if r['repeat']['sung_order_found'] else 'MISSED'}", flush=True)

    print("\n== word onsets (true reference, placed units)")
    for lang in ("en", "zh"):
        errs = [x for r in results if r["language"] == lang for x in r["onset_errors"] if x is not None]
        units = sum(len(r["onset_errors"]) for r in results if r["language"] == lang)
        if units:
            print(f"{lang}: placed {len(errs)}/{units}; |error| s: {quantiles(errs)}; p90 {np.percentile(errs, 90):.3f}")
    errs = [x for r in results for x in r["onset_errors"] if x is not None]
    print(f"all: median {np.median(errs):.3f} s, p90 {np.percentile(errs, 90):.3f} s, "
          f"within 0.15 s {np.mean(np.asarray(errs) <= 0.15):.1%}")
    conf = [x for r in results for x in r["confident_errors"]]
    print(f"confident units only: median {np.median(conf):.3f} s, p90 {np.percentile(conf, 90):.3f} s (n={len(conf)})")

    print("\n== agreement score")
    true_scores = [r["true"]["agreement"]["score"] for r in results]
    swapped_scores = [r["swapped"]["agreement"]["score"] for r in results]
    print("true:    " + quantiles(true_scores))
    print("swapped: " + quantiles(swapped_scores))
    for part in ("asr_match", "confident", "coverage"):
        print(f"  {part:10s} true {quantiles([r['true']['agreement']['parts'][part] for r in results])}")
        print(f"  {'':10s} swap {quantiles([r['swapped']['agreement']['parts'][part] for r in results])}")
    print("partial (first half of the true text): " + quantiles([r["partial"]["agreement"]["score"] for r in results]))
    chosen = choose_threshold(true_scores, swapped_scores)
    cfg = AgreementConfig()
    print(f"score threshold that separates true from swapped best here: {chosen:.2f}")
    for lang in ("en", "zh", None):
        rows = [r for r in results if lang is None or r["language"] == lang]
        if rows:
            rejected = {kind: np.mean([r[kind]["agreement"]["decision"] == "asr" for r in rows])
                        for kind in ("true", "swapped", "partial")}
            print(f"decisions at threshold {cfg.threshold:.2f}, coverage floor {cfg.min_coverage:.2f} "
                  f"({lang or 'all'}, {len(rows)} songs): swapped detected {rejected['swapped']:.1%}, "
                  f"true rejected {rejected['true']:.1%}, half-text rejected {rejected['partial']:.1%}")

    print("\n== repeats (sheet writes the chorus once; it is sung twice)")
    found = [r["repeat"]["sung_order_found"] for r in results]
    print(f"sung order chosen: {sum(found)}/{len(found)}")

    print("\n== compute (process CPU seconds per second of audio, same songs)")
    audio_s = sum(r["duration"] for r in results)
    asr_cpu = sum(r["asr_seconds"][1] for r in results)
    align_cpu = sum(r["true"]["align_seconds"][1] for r in results)
    swap_cpu = sum(r["swapped"]["align_seconds"][1] for r in results)
    rep_cpu = sum(r["repeat"]["align_seconds"][1] for r in results)
    print(f"ASR decoding (transcribe): {asr_cpu / audio_s:.4f} s/s")
    print(f"alignment, true reference (first on the song: features + encoder): {align_cpu / audio_s:.4f} s/s")
    print(f"alignment, another reference on the same song (encoder reused): {swap_cpu / audio_s:.4f} s/s")
    print(f"alignment, sheet + repeat candidates (encoder reused): {rep_cpu / audio_s:.4f} s/s")
    print(f"audio: {audio_s:.0f} s in {len(results)} songs; threads {args.threads}")
    summary = {"results": [{k: v for k, v in r.items() if k != "regions"} for r in results],
               "threshold": chosen, "true_scores": true_scores, "swapped_scores": swapped_scores}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1, default=float)
    return summary


if __name__ == "__main__":
    main()
