"""Silero VAD benchmark: speed on one thread, and (``--sweep``) detection against the threshold.

Speed: seconds of compute per second of 16 kHz audio for ``SileroVad.speech_probs``
(the batched path) on ``--seconds`` of synthetic audio, after one warm-up call.

Sweep: synthetic 24 s stems with four lines at known times, sung by festival
(speech-paced, 0.35 s a word, and long notes, 1 s a word, with vibrato) or spoken by
espeak-ng, alone, over leaked accompaniment (-20 dB) or in a full mix (-3 dB), plus
instrument-only audio (accompaniment, chords, drums, synth lead, leakage at -30 and
-40 dBFS). For each threshold it prints the frame recall per group, the share of
non-vocal frames inside regions on the vocal stems, the worst edge error (seconds
between a line's true start / end and its regions') of the speech-paced lines on
isolated and leaky stems and in mixes, and the largest share of instrument-only
audio inside regions.

    python benchmarks/bench_vad.py [--seconds 60] [--threads 1] [--sweep]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transforms.core import audio as au  # noqa: E402
from transforms.core import vad as V  # noqa: E402

SR = V.SAMPLE_RATE
LINES = ("the night is young and we run", "we walk the long road home", "hold on hold on to me",
         "the stars are out on the hill")
STARTS = (1.0, 7.0, 13.0, 19.0)
SECONDS = 26.0
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def speed(seconds: float, threads: int) -> None:
    """Print load time and seconds of compute per second of audio."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    vad = V.SileroVad().load()
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    audio = (0.2 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
             + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    vad.speech_probs(audio[:SR])  # warm-up
    t0 = time.perf_counter()
    probs = vad.speech_probs(audio)
    took = time.perf_counter() - t0
    print(f"threads={threads} load={load_s:.3f}s audio={seconds:.0f}s frames={probs.size} "
          f"compute={took:.3f}s  -> {took / seconds:.5f} s per audio second (RTF), "
          f"{seconds / took:.0f}x real time")


# ---------------------------------------------------------------- sweep material
def _to16(x48: np.ndarray) -> np.ndarray:
    return au.resample(np.asarray(x48, dtype=np.float32)[None], 48000, SR)[0]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _sung(sc, text: str, gender: str, seed: int, word_s: float) -> np.ndarray:
    base = {"male": 48, "female": 60}[gender]
    words = text.split()
    notes = [(w, word_s if i < len(words) - 1 else 2.5 * word_s,
              sc.midi_hz(base + (0, 2, 4, 5, 7, 4, 2)[(i + seed) % 7])) for i, w in enumerate(words)]
    with tempfile.TemporaryDirectory() as work:
        x = _to16(sc.sing_festival(notes, work))
    if word_s >= 1.0:  # long notes get a 5.5 Hz vibrato of about 2 % (a varying read rate)
        n = np.arange(x.size)
        pos = n + 0.02 * SR / (2 * np.pi * 5.5) * np.sin(2 * np.pi * 5.5 * n / SR)
        x = np.interp(np.clip(pos, 0, x.size - 1), n, x).astype(np.float32)
    return x


def _place(sc, clips: List[np.ndarray]) -> Tuple[np.ndarray, List[Tuple[float, float]]]:
    stem, truth = np.zeros(int(SECONDS * SR), dtype=np.float32), []
    for t0, x in zip(STARTS, clips):
        a, b = sc.active_span(x, rel=0.03, hop=160)
        x = (x[a:b] / np.abs(x[a:b]).max() * 0.5)[:stem.size - int(t0 * SR)]
        stem[int(t0 * SR):int(t0 * SR) + x.size] = x
        truth.append((t0, t0 + x.size / SR))
    return stem, truth


def sweep_material() -> Dict[str, Tuple[np.ndarray, list]]:
    """{name: (16 kHz audio, true vocal spans)}; instrument-only entries have no spans."""
    from pipeline import sample_corpus as sc

    plan = [("intro", 2), ("verse", 4), ("chorus", 4), ("outro", 2)]
    acc = sc.render_accompaniment(plan, 104.0, 0.1, 57, "minor", int(SECONDS * 48000), seed=0).mean(axis=0)
    acc = _to16(acc / np.abs(acc).max() * 0.7)
    out: Dict[str, Tuple[np.ndarray, list]] = {}
    for gender in ("male", "female"):
        for pace, word_s in (("sung", 0.35), ("long", 1.0)):
            lines = LINES if pace == "sung" else LINES[:2]
            stem, truth = _place(sc, [_sung(sc, t, gender, k, word_s) for k, t in enumerate(lines)])
            out[f"{pace}_{gender}"] = (stem, truth)
            out[f"{pace}_{gender}_leak-20"] = (stem + acc * (_rms(stem) / _rms(acc) * 0.1), truth)
            out[f"{pace}_{gender}_mix-3"] = (stem + acc * (_rms(stem) / _rms(acc) * 10 ** (-3 / 20)), truth)
    with tempfile.TemporaryDirectory() as work:
        out["spoken"] = _place(sc, [_to16(sc.speak_espeak(t, ("male", "female")[k % 2], 4.0, work))
                                    for k, t in enumerate(LINES)])
    n = int(SECONDS * 48000)
    chords = np.concatenate([sc.pad_chord(sc.triad(69, "minor", d), 96000, 6).mean(axis=0)
                             for d in (0, 5, 3, 4) * 4])[:n]
    drums = np.zeros(n)
    for b in range(int(SECONDS * 2)):
        for kind, gain in (("kick" if b % 2 == 0 else "snare", 0.9), ("hat", 0.3)):
            hit = sc.drum_hit(kind)
            drums[b * 24000:b * 24000 + hit.size] += gain * hit[:n - b * 24000]
    t = np.arange(24000) / 48000
    lead = np.concatenate([sum(np.sin(2 * np.pi * h * sc.midi_hz(69 + (0, 3, 5, 7, 10, 7, 5, 3)[k % 8]) * t) / h
                               for h in range(1, 9)) for k in range(int(SECONDS * 2))])
    for name, x in (("chords", chords), ("drums", drums), ("synth_lead", lead)):
        out[f"inst_{name}"] = (_to16(x / np.abs(x).max() * 0.6), [])
    out["inst_accompaniment"] = (acc, [])
    for db in (-30, -40):
        out[f"inst_leak_{db}dBFS"] = (acc * (10 ** (db / 20) / _rms(acc)), [])
    return out


def _mask(spans, n: int) -> np.ndarray:
    mid = (np.arange(n) + 0.5) * V.FRAME_SECONDS
    m = np.zeros(n, dtype=bool)
    for a, b in spans:
        m |= (mid >= a) & (mid < b)
    return m


def _edge_error(regions, truth) -> float:
    worst = 0.0
    for a, b in truth:
        hits = [(s, e) for s, e in regions if s < b and e > a]
        worst = max(worst, max(abs(hits[0][0] - a), abs(hits[-1][1] - b)) if hits else float("inf"))
    return worst


def sweep() -> None:
    """Print detection figures per threshold (other settings at VadConfig's defaults)."""
    vad = V.SileroVad().load()
    material = sweep_material()
    probs = {k: vad.speech_probs(x) for k, (x, _) in material.items()}
    cfg = V.DEFAULTS
    groups = ("sung_male", "sung_female", "long_male", "long_female", "spoken")
    print("recall per group: isolated stem / leak -20 dB / mix -3 dB (spoken: isolated only)")
    print("thr   " + "  ".join(f"{g:>16s}" for g in groups) + "   fp_vocal  edge_stem  edge_mix  inst_max")
    for th in THRESHOLDS:
        rec, fps, edges, inst = {}, [], {"stem": [0.0], "mix": [0.0]}, {}
        for k, p in probs.items():
            truth = material[k][1]
            regions = V.regions_from_probs(p, V.FRAME_SECONDS, th, cfg.min_speech_s, cfg.min_silence_s, cfg.pad_s)
            m = _mask(regions, p.size)
            if not truth:
                inst[k] = float(m.mean())
                continue
            t = _mask(truth, p.size)
            rec[k], _ = float(m[t].mean()), fps.append(float(m[~t].mean()))
            if k.startswith(("sung", "spoken")):
                edges["mix" if "mix" in k else "stem"].append(_edge_error(regions, truth))
        cells = ["/".join(f"{rec[k]:.2f}" for k in (g, f"{g}_leak-20", f"{g}_mix-3") if k in rec) for g in groups]
        print(f"{th:<5.2f} " + "  ".join(f"{c:>16s}" for c in cells)
              + f"   {np.mean(fps):8.3f}  {max(edges['stem']):9.2f}  {max(edges['mix']):8.2f}"
              + f"  {max(inst.values()):.3f} ({max(inst, key=inst.get)})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="also measure detection against the threshold")
    args = parser.parse_args(argv)
    speed(args.seconds, args.threads)
    if args.sweep:
        sweep()


if __name__ == "__main__":
    main()
