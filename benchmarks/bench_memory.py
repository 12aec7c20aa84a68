"""Benchmark memory and work-dir traffic per song: peak RSS and work-dir bytes per minute of audio.

    .venv/bin/python benchmarks/bench_memory.py [--minutes 3 30] [--formats npz flac24 flac16]

For each input length and each ``--work_audio`` format, one song of that length
(a sample-corpus song, repeated to length) goes through the default job with one
worker process (``songshard run --keep_work``). Printed per run:

- peak RSS of the whole process tree (driver plus worker), sampled every 0.2 s;
- work-dir bytes written for the song (decoded mix, 16 kHz copy, stems), in total
  and per minute of audio the stages saw (the decode cut is 360 s);
- wall time;
- each stage's peak RSS in the worker process while it ran the song (the stage metric
  ``peak_rss_mb``: the kernel's high-water mark, reset before each stage).

``npz`` is the float32 format every stage used before; ``flac24`` the default.
A 30-minute input is cut to 360 s at decode, which reads no further, so its peak
RSS should match a 6-minute song's, not grow tenfold.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CUT_S = 360.0


def tree_rss_bytes(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants, from /proc (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                rss = next((line for line in f if line.startswith("VmRSS:")), "VmRSS: 0 kB")
            total += int(rss.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def make_song(path: str, minutes: float, source: str) -> None:
    """A song of ``minutes`` at 48 kHz stereo: the ``source`` song repeated to length."""
    audio, sr = sf.read(source, dtype="float32", always_2d=True)
    n = int(minutes * 60 * sr)
    reps = -(-n // audio.shape[0])
    with sf.SoundFile(path, "w", samplerate=sr, channels=audio.shape[1], format="FLAC", subtype="PCM_16") as f:
        for _ in range(reps):
            take = min(audio.shape[0], n)
            f.write(audio[:take])
            n -= take


def run_once(song_dir: str, out: str, fmt: str) -> dict:
    argv = [sys.executable, "-m", "pipeline.cli", "run", "--input", song_dir, "--output", out, "--overwrite",
            "--keep_work", "--work_audio", fmt, "--progress_interval", "0",
            "--direct_running_mode", "multi_processing", "--direct_num_workers", "1"]
    start = time.time()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.2)
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}): {err[-2000:]}")
    wall = time.time() - start
    audio_files = [p for p in glob.glob(os.path.join(out, "_work", "*", "*", "*"))
                   if p.endswith((".npz", ".flac"))]
    by_name = {}
    for p in audio_files:
        name = os.path.basename(p).split(".")[0]
        by_name[name] = by_name.get(name, 0) + os.path.getsize(p)
    stats = json.load(open(os.path.join(out, "stats.json")))
    stage_peaks = {name: m["peak_rss_mb"] for name, m in stats.get("stages", {}).items() if "peak_rss_mb" in m}
    return {"peak_rss_mb": peak / 2**20, "work_bytes": sum(by_name.values()), "by_name": by_name, "wall_s": wall,
            "records": stats["records_out"], "failures": stats["failures"], "stage_peaks": stage_peaks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[3.0, 30.0])
    parser.add_argument("--formats", nargs="+", default=["npz", "flac24"])
    parser.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "songshard-bench-memory"))
    args = parser.parse_args(argv)

    from pipeline.sample_corpus import make_sample_corpus

    corpus = os.path.join(args.scratch, "corpus")
    if not glob.glob(os.path.join(corpus, "01_*.wav")):
        make_sample_corpus(corpus, n_songs=1, seed=3, song_seconds=62.0, bad_files=False)
    source = sorted(glob.glob(os.path.join(corpus, "01_*.*")))
    source = next(p for p in source if p.endswith((".wav", ".flac")))
    rows = []
    for minutes in args.minutes:
        song_dir = os.path.join(args.scratch, f"in-{minutes:g}min")
        if not os.path.isdir(song_dir):
            os.makedirs(song_dir)
            make_song(os.path.join(song_dir, "song.flac"), minutes, source)
        for fmt in args.formats:
            out = os.path.join(args.scratch, f"out-{minutes:g}-{fmt}")
            r = run_once(song_dir, out, fmt)
            seen_min = min(minutes * 60, CUT_S) / 60
            rows.append((minutes, fmt, r, seen_min))
            print(f"{minutes:g} min input, --work_audio {fmt}: peak RSS {r['peak_rss_mb']:.0f} MB, work dir "
                  f"{r['work_bytes'] / 1e6:.1f} MB ({r['work_bytes'] / 1e6 / seen_min:.1f} MB per minute of audio), "
                  f"wall {r['wall_s']:.0f} s, records {r['records']}, failures {r['failures']}", flush=True)
            shutil.rmtree(out, ignore_errors=True)

    print("\n| input | work-dir format | peak RSS (MB) | work-dir MB | work-dir MB per minute | wall (s) |")
    print("|---|---|---|---|---|---|")
    for minutes, fmt, r, seen_min in rows:
        print(f"| {minutes:g} min | {fmt} | {r['peak_rss_mb']:.0f} | {r['work_bytes'] / 1e6:.1f} | "
              f"{r['work_bytes'] / 1e6 / seen_min:.1f} | {r['wall_s']:.0f} |")
    stages = sorted({s for _, _, r, _ in rows for s in r["stage_peaks"]})
    if stages:
        print("\npeak RSS of the worker process per stage (MB):")
        print("| input | format | " + " | ".join(stages) + " |")
        print("|---|---|" + "---|" * len(stages))
        for minutes, fmt, r, _ in rows:
            print(f"| {minutes:g} min | {fmt} | " + " | ".join(str(r["stage_peaks"].get(s, "-")) for s in stages) + " |")
    print("\nwork-dir bytes by array (last run):",
          {k: f"{v / 1e6:.1f} MB" for k, v in sorted(rows[-1][2]["by_name"].items())})
    peaks = {m: max(r["peak_rss_mb"] for mm, _, r, _ in rows if mm == m) for m in args.minutes}
    if len(peaks) > 1:
        lo, hi = min(args.minutes), max(args.minutes)
        print(f"peak RSS {hi:g} min / {lo:g} min input: {peaks[hi] / peaks[lo]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
