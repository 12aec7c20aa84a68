"""Speed of the musicnn tagger: seconds of compute per second of audio, on 1 and 2 threads.

    .venv/bin/python benchmarks/bench_musicnn.py [--seconds 30] [--threads 1 2] [--models ...]

Synthesises a song-like signal (chords, bass, clicks, noise), loads the shipped
weights (or random weights of the same architecture with ``--random``, same
compute), runs ``tag_song`` once to warm up and then ``--repeats`` times, and
prints for each thread count the log-mel time and each model's time per second
of audio, as wall clock and as process CPU time (the CPU figure is steadier on
a shared machine; with 2 threads it counts both).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SR = 16000


def song(seconds: float, seed: int = 0) -> np.ndarray:
    """A deterministic song-like 16 kHz mono signal of ``seconds`` seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    roots = np.array([130.8, 98.0, 110.0, 87.3])[(t // 2).astype(int) % 4]
    phase = 2 * np.pi * np.cumsum(roots) / SR
    chords = sum(np.sin(r * phase) / (1 + k) for k, r in enumerate((2, 2.52, 3, 4)))
    clicks = rng.uniform(-1, 1, t.size) * np.exp(-(t % 0.5) / 0.02)
    return (0.1 * chords + 0.2 * np.sin(phase) + 0.2 * clicks).astype(np.float32)


def timed(fn, repeats: int):
    """(wall seconds, cpu seconds) per call of ``fn`` averaged over ``repeats`` after one warm-up."""
    fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def main(argv=None) -> None:
    """Parse options, load the models and print the timing table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=["MTT_musicnn", "MSD_musicnn"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (the backend uses 4)")
    parser.add_argument("--random", action="store_true", help="random weights (no musicnn package needed)")
    args = parser.parse_args(argv)

    import torch

    from transforms.core.musicnn import features, model, tagger

    if args.random:
        nets = {name: (tagger.MODELS[name].labels, model.random_params(i)) for i, name in enumerate(args.models)}
        tg = tagger.MusicnnTagger(nets, batch_size=args.batch_size)
    else:
        tg = tagger.load(args.models, batch_size=args.batch_size)
    audio = song(args.seconds)
    print(f"{args.seconds:.0f} s of audio, models {args.models}, batch {args.batch_size}, "
          f"torch {torch.__version__}, {os.cpu_count()} cpus")
    for threads in args.threads:
        torch.set_num_threads(threads)
        mel_wall, mel_cpu = timed(lambda: features.patches(features.log_mel(audio)), args.repeats)
        patches = features.patches(features.log_mel(audio))
        total_wall, total_cpu = mel_wall, mel_cpu
        print(f"threads={threads}: log-mel {mel_wall / args.seconds:.4f} s/s wall, "
              f"{mel_cpu / args.seconds:.4f} s/s cpu")
        for name in args.models:
            wall, cpu = timed(lambda: tg.scores(name, patches), args.repeats)
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            print(f"threads={threads}: {name} {wall / args.seconds:.4f} s/s wall, {cpu / args.seconds:.4f} s/s cpu")
        print(f"threads={threads}: TOTAL {total_wall / args.seconds:.4f} s/s wall, "
              f"{total_cpu / args.seconds:.4f} s/s cpu ({len(patches)} windows)")


if __name__ == "__main__":
    main()
