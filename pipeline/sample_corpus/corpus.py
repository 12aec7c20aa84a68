"""songshard's synthetic sample corpus: songs with known tempo, key, sections, lyrics and stems.

``make_sample_corpus(out_dir)`` writes good songs (a numpy accompaniment plus vocals sung by
festival's singing mode, or spoken by espeak-ng where that fails) in several containers, their
sidecars, a set of bad files, the true stems under ``out_dir/_truth`` and ``ground_truth.json``.
``python -m pipeline.sample_corpus OUT_DIR`` does the same from the command line.

Discovery must skip path components starting with ``_`` or ``.``: the true stems under
``_truth/`` are audio files but not songs. Needs ffmpeg; text2wave (festival) or espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf

from pipeline.sample_corpus.music import SR, BEATS_PER_BAR, TAIL_S, TEMPOS, KEYS, PITCH_CLASS, FORMATS, ENCODE, SIDECARS, META, GROUND_TRUTH_NOTE, section_plan, midi_hz, scale_midi, render_accompaniment
from pipeline.sample_corpus.voice import median_f0, lyric_plan, vocal_register, sing_lines, place_vocals


def build_song(index: int, seed: int, song_seconds: float, engine: str = "auto",
               bpm: Optional[float] = None) -> dict:
    """Synthesise song ``index``: {"mix", "vocals", "accompaniment": [2, N] float32, "truth": dict}.

    The three signals are peak-normalised together (mix peak -1 dBFS, mix = vocals + accompaniment).
    ``engine``: "auto" (festival singing, espeak-ng if that fails), "festival" or "espeak".
    Raises RuntimeError when no vocal engine works.
    """
    rng = np.random.default_rng([seed, index])
    bpm = float(bpm or TEMPOS[(index + seed) % len(TEMPOS)])
    tonic, mode = KEYS[(index + 3 * seed) % len(KEYS)]
    gender = "male" if index % 2 == 0 else "female"
    beat = 60.0 / bpm
    offset = round(float(rng.uniform(0.2, 0.6)), 3)
    plan = section_plan(bpm, song_seconds)
    n_bars = sum(b for _, b in plan)
    n = int(round((offset + n_bars * BEATS_PER_BAR * beat + TAIL_S) * SR))
    tonic_midi = 48 + PITCH_CLASS[tonic]  # bass one octave below, pads one and two above
    acc = render_accompaniment(plan, bpm, offset, tonic_midi, mode, n, seed=seed * 1000 + index)

    shift = vocal_register(tonic_midi, mode, gender)
    lines = lyric_plan(plan, offset, beat, rng)
    used, clips = sing_lines(lines, lambda d: midi_hz(scale_midi(tonic_midi - 24, mode, d + shift)),
                             gender, beat, engine)
    vocals, lyrics = place_vocals(lines, clips, acc)
    targets = [f for ln in lines for f in clips[(ln["text"], ln["label"], ln["line"])][1]]
    f0 = float(np.median(targets)) if targets else median_f0(vocals)

    voc2 = np.stack([vocals, vocals])
    g = 10 ** (-1.0 / 20) / np.max(np.abs(voc2 + acc))
    voc2, acc = (voc2 * g).astype(np.float32), (acc * g).astype(np.float32)
    bounds = np.cumsum([0] + [b for _, b in plan]) * BEATS_PER_BAR * beat + offset
    bounds[0], bounds[-1] = 0.0, n / SR
    beats = [round(offset + k * beat, 6) for k in range(n_bars * BEATS_PER_BAR)]
    artist, title, genre = META[index % len(META)]
    truth = {"duration": round(n / SR, 6), "bpm": bpm, "meter": BEATS_PER_BAR, "key": f"{tonic} {mode}",
             "first_beat": offset, "beats": beats, "downbeats": beats[::BEATS_PER_BAR],
             "sections": [{"start": round(float(bounds[i]), 6), "end": round(float(bounds[i + 1]), 6),
                           "label": label} for i, (label, _) in enumerate(plan)],
             "lyrics": lyrics, "lyrics_text": " ".join(ln["text"] for ln in lyrics), "gender": gender,
             "vocal_f0_hz": round(f0, 1), "artist": artist, "title": title, "genre": genre,
             "vocal_engine": used}
    return {"mix": voc2 + acc, "vocals": voc2, "accompaniment": acc, "truth": truth}


# ---------------------------------------------------------------- files
def encode(audio: np.ndarray, path: str, fmt: str, tags: Optional[dict] = None) -> None:
    """Write [2, N] float audio to ``path`` in ``fmt`` with ffmpeg (bit-exact mode), with tags.

    Raises CalledProcessError when ffmpeg fails (e.g. the encoder is missing)."""
    with tempfile.TemporaryDirectory(prefix="songshard-enc-") as work:
        src = os.path.join(work, "mix.wav")
        sf.write(src, audio.T, SR, subtype="FLOAT")
        meta = [a for k, v in (tags or {}).items() for a in ("-metadata", f"{k}={v}")]
        subprocess.run(["ffmpeg", "-y", "-v", "error", "-nostdin", "-i", src, "-map_metadata", "-1",
                        *ENCODE[fmt], *meta, "-fflags", "+bitexact", "-flags:a", "+bitexact", path],
                       check=True, capture_output=True, timeout=300)


def _lrc_time(t: float) -> str:
    return f"[{int(t // 60):02d}:{t % 60:05.2f}]"


def write_bad_files(out_dir: str, dup_source: str) -> Dict[str, dict]:
    """The bad files beside the songs; returns {file name: expected pipeline outcome}."""
    expected = {}

    def put(name: str, data: bytes, outcome: str, reason: str) -> None:
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        expected[name] = {"outcome": outcome, "reason": reason}

    put("empty.wav", b"", "dead_letter", "empty")
    put("not_audio.mp3", b"songshard sample corpus: these bytes are text, not audio.\n" * 40,
        "dead_letter", "decode")
    t = np.arange(5 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(7).standard_normal(t.size)
    flac = os.path.join(out_dir, "truncated.flac")
    sf.write(flac, np.stack([tone, tone]).T, SR, subtype="PCM_16")
    with open(flac, "rb") as f:
        put("truncated.flac", f.read(2048), "dead_letter", "decode")
    sf.write(os.path.join(out_dir, "silent.wav"), np.zeros((10 * SR, 2)), SR, subtype="PCM_16")
    expected["silent.wav"] = {"outcome": "dead_letter", "reason": "silent"}
    sf.write(os.path.join(out_dir, "zero_length.wav"), np.zeros((0, 2)), SR, subtype="PCM_16")
    expected["zero_length.wav"] = {"outcome": "dead_letter", "reason": "no_samples"}
    dup = "dup_of_" + os.path.basename(dup_source)  # sorts after the original, which is kept
    shutil.copyfile(dup_source, os.path.join(out_dir, dup))
    expected[dup] = {"outcome": "duplicate", "reason": "duplicate_of", "of": os.path.basename(dup_source)}
    return expected


def make_sample_corpus(out_dir: str, n_songs: int = 5, seed: int = 0, song_seconds: float = 70.0,
                       bad_files: bool = True, engine: str = "auto") -> dict:
    """Write the sample corpus into ``out_dir`` and return its ground truth (also ground_truth.json).

    Song NAME (``NN_title``) is ``NAME.<fmt>`` (formats cycle wav, flac, mp3, ogg, m4a, opus),
    with sidecars NAME.json / NAME.txt / NAME.lrc for most songs, and true stems in
    ``_truth/NAME/{vocals,accompaniment}.wav`` (48 kHz stereo 24-bit). With ``bad_files``: the
    files of ``write_bad_files``, a duplicate and ``short_song.wav`` (~20 s). Deterministic for a
    seed. Raises RuntimeError (no vocal engine) or CalledProcessError (ffmpeg) on missing tools.
    """
    if n_songs < 1:
        raise ValueError("n_songs must be at least 1")
    os.makedirs(out_dir, exist_ok=True)
    truth = {"version": 1, "seed": seed, "sample_rate": SR, "exclude_prefixes": ["_", "."],
             "note": GROUND_TRUTH_NOTE, "songs": {}, "expected": {}}
    for i in range(n_songs):
        song = build_song(i, seed, song_seconds, engine)
        info = song["truth"]
        fmt = FORMATS[i % len(FORMATS)]
        name = f"{i + 1:02d}_" + info["title"].lower().replace(" ", "_")
        sidecars, embedded = SIDECARS[i % len(SIDECARS)]
        tags = {k: info[k] for k in ("artist", "title", "genre")}
        encode(song["mix"], os.path.join(out_dir, f"{name}.{fmt}"), fmt, tags if embedded else None)
        stem_dir = os.path.join(out_dir, "_truth", name)
        os.makedirs(stem_dir, exist_ok=True)
        for stem in ("vocals", "accompaniment"):
            sf.write(os.path.join(stem_dir, f"{stem}.wav"), song[stem].T, SR, subtype="PCM_24")
        base = os.path.join(out_dir, name)
        if "json" in sidecars:
            with open(base + ".json", "w") as f:
                json.dump({**tags, "language": "en", "bpm": info["bpm"]}, f, indent=1)
        if "txt" in sidecars:
            with open(base + ".txt", "w") as f:
                f.write("".join(ln["text"] + "\n" for ln in info["lyrics"]))
        if "lrc" in sidecars:
            with open(base + ".lrc", "w") as f:
                f.write(f"[ar:{info['artist']}]\n[ti:{info['title']}]\n" +
                        "".join(f"{_lrc_time(ln['start'])} {ln['text']}\n" for ln in info["lyrics"]))
        truth["songs"][name] = {"file": f"{name}.{fmt}", "format": fmt, **info, "sidecars": list(sidecars),
                                "embedded_tags": embedded,
                                "truth_stems": {s: f"_truth/{name}/{s}.wav" for s in ("vocals", "accompaniment")}}
    if bad_files:
        first = sorted(truth["songs"].values(), key=lambda s: s["file"])[min(1, n_songs - 1)]
        truth["expected"] = write_bad_files(out_dir, os.path.join(out_dir, first["file"]))
        short = build_song(n_songs, seed, 20.0, engine, bpm=120.0)
        encode(short["mix"], os.path.join(out_dir, "short_song.wav"), "wav")
        truth["expected"]["short_song.wav"] = {"outcome": "filtered_too_short", "reason": "too_short",
                                               "duration": short["truth"]["duration"]}
    with open(os.path.join(out_dir, "ground_truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return truth


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pipeline.sample_corpus OUT_DIR [--n_songs N] [--seed S] [--song_seconds X]
    [--no_bad_files]``: write the corpus and print what was written."""
    p = argparse.ArgumentParser(prog="songshard sample-corpus", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--n_songs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--song_seconds", type=float, default=70.0)
    p.add_argument("--no_bad_files", action="store_true")
    p.add_argument("--engine", choices=("auto", "festival", "espeak"), default="auto")
    args = p.parse_args(argv)
    start = time.time()
    truth = make_sample_corpus(args.out_dir, args.n_songs, args.seed, args.song_seconds,
                               not args.no_bad_files, args.engine)
    for s in truth["songs"].values():
        print(f"{s['file']:<28} {s['duration']:6.1f}s {s['bpm']:5.0f} bpm  {s['key']:<8} {s['gender']:<6} "
              f"f0 {s['vocal_f0_hz']:5.1f} Hz  {s['vocal_engine']:<16} sidecars: {','.join(s['sidecars']) or '-'}")
    for name, e in truth["expected"].items():
        print(f"{name:<28} expected: {e['outcome']} ({e['reason']})")
    print(f"wrote {len(truth['songs'])} songs, {len(truth['expected'])} bad files, true stems in "
          f"{os.path.join(args.out_dir, '_truth')} and {os.path.join(args.out_dir, 'ground_truth.json')} "
          f"in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
