"""Benchmark a whole songshard run: songs/hour, compute per second of audio per stage, peak memory.

    .venv/bin/python benchmarks/bench_pipeline.py [--corpus DIR] [--out DIR] [-- extra run flags]

``--corpus`` may be any folder of songs (the real-music set of ``benchmarks/realmusic.py``, say).
Generates the sample corpus when DIR holds no songs at all, runs the default job
(DirectRunner, in-process) into a fresh OUT and prints the figures. Extra flags
after ``--`` go to ``songshard run`` (e.g. ``-- --separate demucs ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "songshard-bench-corpus"))
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "songshard-bench-out"))
    args = parser.parse_args(own)

    from pipeline.run import run
    from pipeline.sample_corpus import make_sample_corpus

    if not os.path.isdir(args.corpus) or not os.listdir(args.corpus):
        t = time.time()
        make_sample_corpus(args.corpus)
        print(f"sample corpus generated in {time.time() - t:.1f} s")
    start = time.time()
    stats = run(["--input", args.corpus, "--output", args.out, "--overwrite", "--progress_interval", "30", *extra])
    wall = time.time() - start
    audio_s = stats["hours_of_audio"] * 3600
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print("\n== songshard pipeline benchmark ==")
    print(f"songs in {stats['songs_in']}, records out {stats['records_out']}, failures {stats['failures']}, "
          f"filtered {stats['filtered']}")
    print(f"audio out {audio_s:.1f} s; wall {wall:.1f} s; real-time factor {wall / audio_s:.3f}" if audio_s else
          f"wall {wall:.1f} s")
    if stats["records_out"]:
        print(f"songs/hour: {stats['records_out'] / wall * 3600:.0f}")
    print(f"peak RSS: {peak_mb:.0f} MB")
    print(f"{'stage':<12} {'songs':>6} {'mean s/song':>12} {'compute s per s of audio':>26}")
    rtfs = {}
    for stage, m in sorted(stats["stages"].items()):
        if "mean_latency_s" not in m:
            continue
        rtfs[stage] = m.get("total_s", 0) / m["audio_s"] if m.get("audio_s") else float("nan")
        print(f"{stage:<12} {m.get('succeeded', 0):>6} {m['mean_latency_s']:>12.2f} {rtfs[stage]:>26.3f}")
    for stage, m in sorted(stats["stages"].items()):
        if m.get("model_total_s") is not None and m.get("audio_s"):
            per_song = m["model_total_s"] / max(1, m.get("succeeded", 1))
            print(f"{stage + ' model':<12} {m.get('succeeded', 0):>6} {per_song:>12.2f} "
                  f"{m['model_total_s'] / m['audio_s']:>26.3f}  (the backend alone: the tagger's budget is 0.02)")
    finite = {k: v for k, v in rtfs.items() if v == v}
    if finite:
        print(f"all stages: {sum(finite.values()):.3f} s of compute per s of audio; "
              f"bounded by {max(finite, key=finite.get)} ({max(finite.values()):.3f})")
    print(json.dumps({"wall_s": round(wall, 1), "audio_s": round(audio_s, 1), "peak_rss_mb": round(peak_mb)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
