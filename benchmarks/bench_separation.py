"""Separation stage benchmark: compute per minute of audio, the stage's overhead over demucs, peak memory.

Prints three tables:

1. seconds of compute per minute of audio for each backend (``dsp``; ``demucs``
   with a random-weight htdemucs of the released architecture: same compute as the
   real weights), through the stage's own path (``separate_song``: work-dir mix in,
   stems out);
2. the stage against ``demucs.apply.apply_model`` called directly on the same mix
   (resampled to 44.1 kHz, standardised, shifts=0, overlap 0.25) with the same
   weights: the stage adds its streaming, resampling and work-dir writing;
3. peak RSS (VmHWM) of a fresh process separating a 3-minute and a 30-minute song,
   next to its peak before separating (imports, model, writing the test song).

    python benchmarks/bench_separation.py [--seconds 45] [--repeats 2] [--threads 2]
        [--memory-minutes 3,30] [--memory-models dsp,tiny,htdemucs@3] [--skip-compute]

``tiny`` is an htdemucs with 8 channels and one transformer layer (same code
path, far less compute); ``htdemucs@3`` measures htdemucs at 3 minutes only.
Timings on a shared machine vary: take the minimum of the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

SR = 48000


def write_song(path: str, seconds: float, seed: int = 0) -> str:
    """A synthetic song (beat, bass, vibrato voice) written block by block to a work-dir file."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from conftest import synth_mix
    from transforms.core.stream import AudioWriter

    block_s = 12.0
    n = int(seconds * SR)
    writer = AudioWriter(path, 2, n, SR)
    pieces = int(np.ceil(seconds / block_s))
    for k in range(pieces):
        mix, _, _ = synth_mix(block_s, seed=seed + k % 7)
        writer.write(mix)
    writer.close()
    return path


def make_weights(kind: str, folder: str) -> str:
    import torch

    from transforms.separate import demucs_backend as db

    torch.manual_seed(0)
    model = db.build_htdemucs() if kind == "htdemucs" else db.build_htdemucs(channels=8, t_layers=1, dconv_comp=4)
    return db.save_checkpoint(model, os.path.join(folder, f"{kind}.th"))


def backend_for(name: str, weights: str | None):
    from transforms.separate import SeparateStems

    opts = {} if name == "dsp" else {"weights": weights}
    backend = SeparateStems.make_backend(name, opts)
    backend.check()
    backend.load()
    return backend


def time_stage(backend, mix_uri: str, work: str) -> float:
    from transforms.separate.stage import separate_song

    start = time.perf_counter()
    separate_song(backend, mix_uri, work, "bench")
    return time.perf_counter() - start


def time_apply_model(backend, mix_uri: str) -> float:
    """demucs's own whole-song apply_model on the same mix (resampled and standardised first)."""
    import torch
    from demucs.apply import apply_model

    from transforms.core import audio as au
    from transforms.core import workdir

    mix, sr = workdir.load_audio(mix_uri)
    start = time.perf_counter()
    x = au.resample(mix, sr, backend.sample_rate)
    ref = x.mean(0)
    x = torch.from_numpy((x - ref.mean()) / ref.std())[None]
    with torch.no_grad():
        apply_model(backend.model, x, shifts=0, split=True, overlap=0.25, device="cpu")
    return time.perf_counter() - start


def compute_tables(args) -> None:
    import torch

    from transforms.separate.overlap import chunk_starts

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        mix_uri = write_song(os.path.join(tmp, "mix.npz"), args.seconds)
        minutes = args.seconds / 60.0
        weights = make_weights("htdemucs", tmp)
        rows = []
        dsp = backend_for("dsp", None)
        time_stage(dsp, mix_uri, os.path.join(tmp, "warm"))  # librosa's first-call costs
        dsp_t = min(time_stage(dsp, mix_uri, os.path.join(tmp, "w")) for _ in range(args.repeats))
        rows.append(("dsp", dsp_t))
        dem = backend_for("demucs", weights)
        dem.separate(np.zeros((2, SR), np.float32), SR)  # first-forward allocations
        stage_t, direct_t = [], []
        for _ in range(args.repeats):  # interleaved, so that machine load hits both alike
            stage_t.append(time_stage(dem, mix_uri, os.path.join(tmp, "w")))
            direct_t.append(time_apply_model(dem, mix_uri))
        rows.append(("demucs (htdemucs, random weights)", min(stage_t)))
        print(f"\n## Compute per minute of audio ({args.seconds:.0f} s song, {args.threads} torch threads, "
              f"min of {args.repeats})")
        print("| backend | seconds | s compute / min audio | x real time |")
        print("|---|---|---|---|")
        for name, t in rows:
            print(f"| {name} | {t:.2f} | {t / minutes:.1f} | {t / args.seconds:.3f} |")
        overhead = 100.0 * (min(stage_t) / min(direct_t) - 1.0)
        print("\n## Stage vs demucs.apply.apply_model (same mix, same weights)")
        print("| path | runs (s) | min (s) |")
        print("|---|---|---|")
        print(f"| SeparateStems' separate_song | {', '.join(f'{t:.2f}' for t in stage_t)} | {min(stage_t):.2f} |")
        print(f"| apply_model on the whole song | {', '.join(f'{t:.2f}' for t in direct_t)} | {min(direct_t):.2f} |")
        n_chunks = len(chunk_starts(int(args.seconds * dem.sample_rate), dem.chunk_length, dem.hop))
        print(f"stage overhead: {overhead:+.1f}% ({n_chunks} chunks of {dem.chunk_length / dem.sample_rate:.2f} s, "
              f"hop {dem.hop / dem.sample_rate:.2f} s, one apply_model call per chunk)")


def vm_hwm_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_child(model: str, minutes: float, threads: int, weights_dir: str) -> dict:
    """Run in a fresh process: write the song, load the backend, separate, report peak RSS."""
    import torch

    torch.set_num_threads(threads)
    from transforms.separate.stage import separate_song

    with tempfile.TemporaryDirectory(dir=weights_dir) as tmp:
        mix_uri = write_song(os.path.join(tmp, "mix.npz"), minutes * 60.0)
        weights = None if model == "dsp" else os.path.join(weights_dir, f"{model}.th")
        backend = backend_for("dsp" if model == "dsp" else "demucs", weights)
        before = vm_hwm_mb()
        start = time.perf_counter()
        _, label = separate_song(backend, mix_uri, os.path.join(tmp, "work"), "song")
        took = time.perf_counter() - start
        peak = vm_hwm_mb()
        stems_mb = sum(os.path.getsize(os.path.join(tmp, "work", "song", f)) for f in
                       os.listdir(os.path.join(tmp, "work", "song"))) / 2 ** 20
    return {"model": model, "minutes": minutes, "peak_rss_mb": round(peak, 1),
            "rss_before_mb": round(before, 1), "seconds": round(took, 1), "segments": label["segments"],
            "stems_on_disk_mb": round(stems_mb, 1)}


def memory_table(args) -> None:
    minutes = [float(m) for m in args.memory_minutes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.memory_models.split(","):
            model, _, only = spec.partition("@")
            if model != "dsp":
                make_weights(model, tmp)
            for m in ([float(only)] if only else minutes):
                cmd = [sys.executable, __file__, "--child", json.dumps([model, m, args.threads, tmp])]
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                row = json.loads(res.stdout.strip().splitlines()[-1])
                results.append(row)
                print(f"  measured {row}", file=sys.stderr)
    print("\n## Peak memory of one process separating a song (VmHWM)")
    print("| model | song (min) | peak RSS (MiB) | peak before separating (MiB) | compute (s) | chunks | stems on disk (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['minutes']:g} | {r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | "
              f"{r['seconds']:.1f} | {r['segments']} | {r['stems_on_disk_mb']:.0f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=45.0, help="song length for the compute tables")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-minutes", default="3,30")
    parser.add_argument("--memory-models", default="dsp,tiny,htdemucs@3")
    parser.add_argument("--skip-compute", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        model, minutes, threads, folder = json.loads(args.child)
        print(json.dumps(memory_child(model, minutes, threads, folder)))
        return
    if not args.skip_compute:
        compute_tables(args)
    if not args.skip_memory:
        memory_table(args)


if __name__ == "__main__":
    main()
