"""Tempo accuracy of the structure backends, with and without the metrical-level check (tempo.py).

Methods: ``dsp`` (librosa beats, least-squares tempo), ``dsp+level``,
``beatnet`` (BeatNet CRNN + bar-pointer decoder), ``beatnet+level``,
``madmom`` (RNN + DBN downbeat tracker; models CC BY-NC-SA) and
``madmom+level``; ``dsp+models`` and ``beatnet+models`` add the structure stage's default model evidence to
the check (the tempo CNN and the genre tilt: the default backend is ``beatnet+models``); a method whose
package is missing is left out.

Songs: the synthetic drum songs of tests/test_structure_tempo.py (``--synthetic``,
on by default) and every audio file in each ``--folder`` that has a sidecar
``NAME.truth.json`` holding ``{"bpm": ...}``; /work/data/realmusic is added
when it exists. Long songs are cut to ``--seconds`` from ``--offset`` (the
madmom tracker costs about 1 s per 5 s of audio on 2 cores).

A song's tempo is right within 2 % (``acc2``) or 4 % (``acc4``) of the truth;
half / double / 2:3 tempi count as wrong. The per-song table names the ratio
of each estimate to the truth. ``beatF`` is the mean beat F-measure (+-70 ms)
over songs whose truth lists beats, ``downF`` the same for downbeats (bar starts from
the MIDI's time signatures: ``realmusic.py add-downbeats DIR`` adds them to a set
built before they were kept). Seconds per song: tracking (+ the check).

    python benchmarks/eval_tempo.py [--folder DIR ...] [--no-synthetic] [--no-realmusic]
        [--methods dsp,dsp+level,...] [--seconds 60 --offset 30]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import numpy as np  # noqa: E402

REAL_MUSIC = "/work/data/realmusic"
RATE = 22050
AUDIO = (".wav", ".flac", ".ogg", ".mp3")
EXTRA_SYNTHETIC = [("rock", 85.0), ("rock", 100.0), ("rock", 150.0), ("ballad", 60.0), ("metal", 160.0),
                   ("punk", 200.0), ("shuffle", 110.0)]
METHODS = ("dsp", "dsp+level", "dsp+models", "beatnet", "beatnet+level", "beatnet+models", "madmom", "madmom+level")


def synthetic_songs(seed_offset: int = 7) -> list:
    """[(name, mono audio at RATE, true bpm, true beats, true downbeats)] for the test songs and more tempi
    (other seeds); the drum songs are in 4/4 from 0 s."""
    from test_structure_tempo import SONGS, drum_song

    out = []
    for style, bpm in list(SONGS) + EXTRA_SYNTHETIC:
        y, beats = drum_song(bpm, style, seed=int(bpm) + seed_offset)
        out.append((f"synth-{style}{int(bpm)}", y, bpm, beats, beats[::4]))
    return out


def folder_songs(folder: str, seconds: float, offset: float) -> list:
    """[(name, mono audio at RATE, true bpm, true beats or None, true downbeats or None)] of the audio files in
    ``folder`` with a NAME.truth.json; beats and downbeats (where the truth lists them) are shifted and cut
    to the analysed part."""
    import soundfile as sf

    from transforms.core import audio as au

    out = []
    for path in sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(AUDIO)):
        truth = os.path.splitext(path)[0] + ".truth.json"
        if not os.path.isfile(truth):
            continue
        meta = json.load(open(truth))
        bpm = meta.get("bpm")
        if not bpm:
            continue
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        y = au.resample(au.to_mono(y.T), sr, RATE)[0]
        start = int(offset * RATE) if len(y) > (offset + seconds) * RATE else 0
        refs = []
        for key in ("beats", "downbeats"):
            ref = np.asarray(meta.get(key) or [], dtype=float) - start / RATE
            refs.append(ref[(ref >= 0) & (ref < seconds)] if len(ref) else None)
        out.append((os.path.basename(path), y[start:start + int(seconds * RATE)], float(bpm), *refs))
    return out


def trackers(names) -> dict:
    """{base method: loaded backend} for the methods asked for whose packages are installed."""
    from transforms.core.stage import BackendUnavailable

    found = {}
    for base in sorted({m.split("+")[0] for m in names}):
        try:
            if base == "dsp":
                from transforms.structure.dsp import DspStructure as cls
            elif base == "beatnet":
                from transforms.structure.beatnet import BeatNetStructure as cls
            else:
                from transforms.structure.madmom_backend import MadmomStructure as cls
            backend = cls({"tempo_level": "off"})
            backend.check()
            backend.load()
            found[base] = backend
        except (BackendUnavailable, ImportError) as exc:
            print(f"# {base}: left out ({exc})")
    return found


_MODELS = []


def level_models():
    """The structure stage's default evidence models (tempo CNN, genre tilt), loaded once."""
    if not _MODELS:
        from transforms.structure.evidence import LevelEvidence

        models = LevelEvidence()
        models.check()
        models.load()
        _MODELS.append(models)
    return _MODELS[0]


def estimates(backend, y: np.ndarray, with_models: bool = False) -> dict:
    """{"": (bpm, beats, seconds), "+level": (...), "+models": (...)}: the tracker's own, the level-checked
    result on onset evidence, and (``with_models``) the check with the stage's default model evidence."""
    from transforms.structure import tempo
    from transforms.structure.dsp import tempo_from_beats

    t0 = time.time()
    beats, downbeats, meter = backend.track_beats(y, y[None], RATE)
    t1 = time.time()
    out = {"": (tempo_from_beats(np.asarray(beats)), np.asarray(beats), np.asarray(downbeats), t1 - t0)}
    if len(beats) >= 8:
        new_beats, new_down, _, decision = tempo.apply_level(y, RATE, beats, downbeats, meter)
        out["+level"] = (decision.bpm, new_beats, new_down, time.time() - t0)
        if with_models:
            t2 = time.time()
            new_beats, new_down, _, decision = tempo.apply_level(y, RATE, beats, downbeats, meter,
                                                                 level_models().measure(y, RATE))
            out["+models"] = (decision.bpm, new_beats, new_down, t1 - t0 + time.time() - t2)
    else:
        out["+level"] = out["+models"] = out[""]
    return out


def evaluate(songs: list, methods, backends: dict) -> dict:
    """{method: [(song, truth bpm, bpm, seconds, beat F or nan, downbeat F or nan)]}; one line a song; each
    tracker runs once."""
    from test_structure_tempo import beat_f_measure

    results = {m: [] for m in methods if m.split("+")[0] in backends}
    for name, y, truth, ref, ref_down in songs:
        row = [f"{name[:28]:28s} {truth:6.1f}"]
        done = {}
        for method in results:
            base, _, variant = method.partition("+")
            if base not in done:
                done[base] = estimates(backends[base], y, any(m == base + "+models" for m in results))
            bpm, beats, down, seconds = done[base]["+" + variant if variant else ""]
            f = beat_f_measure(beats, ref) if ref is not None and len(ref) else float("nan")
            df = beat_f_measure(down, ref_down) if ref_down is not None and len(ref_down) else float("nan")
            results[method].append((name, truth, bpm, seconds, f, df))
            row.append(f"{method}={bpm:6.1f} (x{bpm / truth:4.2f})")
        print("  ".join(row), flush=True)
    return results


def summary(title: str, results: dict) -> None:
    """Prints acc2 / acc4, mean beat and downbeat F-measure (songs with true beats / downbeats) and seconds
    per song per method."""
    print(f"\n{title}")
    print(f"{'method':15s} {'songs':>5s} {'acc2':>6s} {'acc4':>6s} {'beatF':>6s} {'downF':>6s} {'s/song':>7s}")
    for method, rows in results.items():
        if not rows:
            continue
        err = np.array([abs(r[2] - r[1]) / r[1] for r in rows])
        cols = []
        for k in (4, 5):
            fs = [r[k] for r in rows if not np.isnan(r[k])]
            cols.append(f"{np.mean(fs):6.3f}" if fs else f"{'-':>6s}")
        print(f"{method:15s} {len(rows):5d} {np.mean(err < 0.02):6.2f} {np.mean(err < 0.04):6.2f} {' '.join(cols)} "
              f"{np.mean([r[3] for r in rows]):7.2f}")


def main(argv=None) -> None:
    """Runs every method over the synthetic set and each folder; prints tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", action="append", default=[], help="songs with NAME.truth.json sidecars")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--no-realmusic", action="store_true", help=f"leave out {REAL_MUSIC}")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seconds", type=float, default=60.0, help="audio analysed per song")
    parser.add_argument("--offset", type=float, default=30.0, help="start of the analysed part (s)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m in METHODS]
    backends = trackers(methods)
    sets = [] if args.no_synthetic else [("synthetic drum songs", synthetic_songs())]
    folders = list(args.folder) + ([REAL_MUSIC] if os.path.isdir(REAL_MUSIC) and not args.no_realmusic else [])
    for folder in folders:
        sets.append((folder, folder_songs(folder, args.seconds, args.offset)))
    for title, songs in sets:
        print(f"\n## {title}: {len(songs)} songs")
        summary(title, evaluate(songs, methods, backends))


if __name__ == "__main__":
    main()
