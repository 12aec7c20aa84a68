"""Songs per hour of the default local run (one worker process per core) against one worker.

    .venv/bin/python benchmarks/bench_workers.py --corpus DIR [--out DIR] [-- extra run flags]

Runs ``benchmarks/bench_pipeline.py`` twice on the same corpus, back to back, each in its own
process: first one worker process with one thread (one core's worth: ``--direct_num_workers 1`` and
every thread budget at 1), then the default (one worker process per core). Prints both runs' wall
time and songs per hour, their ratio (the target on 2 cores is at least 1.8x), and each run's
compute per second of audio, which shows how much the workers slow each other down.
Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ONE_CORE_ENV = {"SONGSHARD_WORKER_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1"}


def bench(corpus: str, out: str, extra: list, env: dict) -> dict:
    """One bench_pipeline run; returns its last line (wall_s, audio_s, peak_rss_mb) plus songs and compute."""
    cmd = [sys.executable, os.path.join(HERE, "bench_pipeline.py"), "--corpus", corpus, "--out", out, "--", *extra]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_pipeline failed ({proc.returncode}): {' '.join(cmd)}")
    lines = proc.stdout.splitlines()
    result = json.loads(lines[-1])
    for line in lines:
        if line.startswith("songs in "):
            result["records_out"] = int(line.split("records out ")[1].split(",")[0])
        if line.startswith("all stages: "):
            result["compute_per_audio_s"] = float(line.split()[2])
    return result


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", default="/tmp/songshard-bench-workers")
    args = parser.parse_args(own)

    runs = {"one worker": bench(args.corpus, args.out + "-1", ["--direct_num_workers", "1", *extra], ONE_CORE_ENV),
            "default": bench(args.corpus, args.out + "-n", extra, {})}
    print("\n== one worker against the default (a worker per core) ==")
    print(f"{'run':<12} {'songs':>6} {'wall s':>8} {'songs/hour':>11} {'compute s/s':>12} {'peak RSS MB':>12}")
    for name, r in runs.items():
        r["songs_per_hour"] = r["records_out"] / r["wall_s"] * 3600
        print(f"{name:<12} {r['records_out']:>6} {r['wall_s']:>8.1f} {r['songs_per_hour']:>11.0f} "
              f"{r.get('compute_per_audio_s', float('nan')):>12.3f} {r['peak_rss_mb']:>12.0f}")
    ratio = runs["default"]["songs_per_hour"] / runs["one worker"]["songs_per_hour"]
    print(f"default / one worker: {ratio:.2f}x songs per hour ({os.cpu_count()} cores)")
    print(json.dumps({"ratio": round(ratio, 3), **{k: v for k, v in runs.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
