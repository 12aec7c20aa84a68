"""A run over a few hundred short songs: do songs finish from the first minutes on, not at the end?

    .venv/bin/python benchmarks/bench_many_songs.py [--source DIR] [--clips 250] [--clip_seconds 12]
                                                     [--plot docs/many-songs.png] [-- extra run flags]

Cuts ``--clips`` excerpts of ``--clip_seconds`` (every ``--hop_seconds``) out of the
songs in ``--source`` (default: the real-music set, else the sample corpus), runs
the default job over them with every core, and polls OUT/_parts (one persisted part
per finished song) every 2 s. Prints when the first song was persisted, how many
were persisted after 1, 2, 5 and 10 minutes and at the end, the steady-state songs
per hour, and plots persisted songs against time.
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
import threading
import time

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
AUDIO = (".flac", ".wav", ".mp3", ".ogg")


def make_clips(source: str, folder: str, clips: int, clip_s: float, hop_s: float) -> int:
    """Write up to ``clips`` excerpts of the songs in ``source`` into ``folder``; returns how many."""
    os.makedirs(folder, exist_ok=True)
    songs = sorted(p for p in glob.glob(os.path.join(source, "*")) if p.endswith(AUDIO))
    made = 0
    while made < clips:
        before = made
        for path in songs:
            info = sf.info(path)
            start = (made // max(1, len(songs))) * hop_s
            if start + clip_s > info.duration or made >= clips:
                continue
            audio, sr = sf.read(path, start=int(start * info.samplerate), frames=int(clip_s * info.samplerate),
                                dtype="float32", always_2d=True)
            name = f"{made:04d}_{os.path.splitext(os.path.basename(path))[0]}.flac"
            sf.write(os.path.join(folder, name), audio, sr, subtype="PCM_16")
            made += 1
        if made == before:  # every song used up
            break
    return made


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="/work/data/realmusic")
    parser.add_argument("--clips", type=int, default=250)
    parser.add_argument("--clip_seconds", type=float, default=12.0)
    parser.add_argument("--hop_seconds", type=float, default=8.0)
    parser.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "songshard-many-songs"))
    parser.add_argument("--plot", default="")
    args = parser.parse_args(own)

    source = args.source
    if not os.path.isdir(source) or not any(p.endswith(AUDIO) for p in os.listdir(source)):
        from pipeline.sample_corpus import make_sample_corpus

        source = os.path.join(args.scratch, "corpus")
        make_sample_corpus(source, n_songs=5, bad_files=False)
    clips = os.path.join(args.scratch, "clips")
    shutil.rmtree(clips, ignore_errors=True)
    n = make_clips(source, clips, args.clips, args.clip_seconds, args.hop_seconds)
    out = os.path.join(args.scratch, "out")
    print(f"{n} clips of {args.clip_seconds:g} s from {source}", flush=True)

    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--input", clips, "--output", out, "--overwrite",
           "--filter_min_duration", str(min(5.0, args.clip_seconds / 2)), "--progress_interval", "30", *extra]
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timeline = []  # (seconds since start, parts persisted)
    lines = []

    def poll():
        timeline.append((time.time() - start, len(glob.glob(os.path.join(out, "_parts", "*.json")))))

    def echo():
        for line in proc.stdout:
            lines.append(line.rstrip())
            print(f"  {time.time() - start:6.0f}s  {line.rstrip()}", flush=True)

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    while proc.poll() is None:
        poll()
        time.sleep(2.0)
    reader.join(timeout=10)
    wall = time.time() - start
    if proc.returncode != 0:
        print("\n".join(lines[-20:]))
        return proc.returncode
    stats = json.load(open(os.path.join(out, "stats.json")))
    finished = max((c for _, c in timeline), default=0)
    first = next((t for t, c in timeline if c > 0), float("nan"))
    print("\n== many short songs ==")
    print(f"songs {n}; records out {stats['records_out']}, failures {stats['failures']}, "
          f"filtered {stats['filtered']}; wall {wall:.0f} s")
    print(f"first song persisted after {first:.0f} s (model loading included)")
    for minute in (1, 2, 5, 10):
        if minute * 60 <= wall:
            done = max((c for t, c in timeline if t <= minute * 60), default=0)
            print(f"persisted after {minute:>2} min: {done}")
    print(f"persisted parts seen while running: {finished} of {stats['records_out']} (the rest in the last 2 s)")
    counts = np.array(timeline)
    if len(counts) > 2 and finished > 10:
        lo, hi = np.searchsorted(counts[:, 1], [0.1 * finished, 0.9 * finished])
        t0, t1 = counts[lo, 0], counts[min(hi, len(counts) - 1), 0]
        if t1 > t0:
            print(f"steady state (10% -> 90% of songs): {(0.8 * finished) / (t1 - t0) * 3600:.0f} songs/hour")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2))
        peak = int(np.argmax(counts[:, 1]))  # after it the driver packs the parts into shards
        ax.plot(counts[:peak + 1, 0] / 60, counts[:peak + 1, 1], lw=1.5)
        ax.axvline(counts[peak, 0] / 60, color="grey", ls=":", lw=1)
        ax.text(counts[peak, 0] / 60, 0, " parts packed\n into shards", color="grey", fontsize=8, va="bottom")
        ax.set_xlabel("minutes since start")
        ax.set_ylabel("songs persisted (OUT/_parts)")
        ax.set_title(f"{n} songs of {args.clip_seconds:g} s, default job, every core")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
