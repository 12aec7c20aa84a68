"""Codec tokens benchmark: encode real-time factor and peak memory per backend, for a 6-minute song.

    .venv/bin/python benchmarks/bench_codec.py [--seconds 360] [--threads 1] [--backends kmeans,encodec,songgen]

Each backend runs in its own process (so that peak RSS is its own) on a
synthetic song (``tests/conftest.synth_mix``: mix, vocal and accompaniment
stems, 48 kHz stereo) and does the stage's work: the three rows of the song and
the three rows of its 10 s prompt. Figures:

* ``rtf``: encode seconds / song seconds, for all six encodes together
  (``rtf_per_stream``: divided by the 3 streams);
* ``encode_peak_rss_mb``: the highest resident memory while encoding (sampled
  every 10 ms; the 3 streams' audio, 415 MB of float32 for 6 minutes, included),
  ``rss_before_mb`` just before encoding (song and model loaded), and
  ``peak_rss_mb`` the whole process's peak (for kmeans: the codebook fit too).

kmeans is measured twice: with the codebook fitted on this one song
(``min(16384, frames / 8)`` codes) and with a full 16384-code codebook (centroids
drawn from the song's frames: the same compute as a fitted one). encodec uses
the 24 kHz EnCodec architecture with random weights (same compute as the
published weights). songgen runs only where SongGeneration's code and
checkpoints are present (``--songgen_weights``, ``--songgen_code``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_song(path: str, seconds: float) -> None:
    """Synthesise the song once (in the parent) so that each backend's process only loads it."""
    import numpy as np
    from conftest import synth_mix

    mix, voc, acc = synth_mix(seconds, seed=0)
    np.savez(path, mixed=mix, vocal=voc, accompaniment=acc)


def _song(path: str):
    import numpy as np

    from transforms.tokens import frames

    with np.load(path) as z:
        return frames.fit_streams({k: z[k] for k in ("mixed", "vocal", "accompaniment")})


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class RssSampler(threading.Thread):
    """Highest resident memory seen every 10 ms while it runs (ru_maxrss cannot be reset)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _current_rss_mb()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.01):
            self.peak = max(self.peak, _current_rss_mb())

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak, _current_rss_mb())


def _stage_work(backend, streams) -> dict:
    from transforms.tokens import frames

    seconds = streams["mixed"].shape[-1] / frames.SAMPLE_RATE
    start, end = frames.prompt_window(seconds)
    sampler = RssSampler()
    sampler.start()
    t = time.perf_counter()
    ids = backend.encode_streams(streams)
    song_s = time.perf_counter() - t
    t = time.perf_counter()
    backend.encode_streams({k: frames.clip(v, start, end) for k, v in streams.items()})
    prompt_s = time.perf_counter() - t
    total = song_s + prompt_s
    encode_peak = sampler.stop()
    return {"song_seconds": round(seconds, 1), "num_frames": int(ids["mixed"].shape[0]),
            "encode_s": round(total, 2), "song_encode_s": round(song_s, 2), "prompt_encode_s": round(prompt_s, 2),
            "rtf": round(total / seconds, 4), "rtf_per_stream": round(total / seconds / 3, 4),
            "encode_peak_rss_mb": round(encode_peak, 0)}


def one(name: str, args) -> dict:
    import numpy as np

    from transforms.core.stage import BackendUnavailable
    from transforms.tokens import EncodeTokens

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    streams = _song(args.song)
    tmp = tempfile.mkdtemp(prefix="bench-codec-")
    result = {"backend": name}
    if name.startswith("kmeans"):
        from transforms.tokens import kmeans

        t = time.perf_counter()
        feats = np.concatenate([kmeans.logmel(v) for v in streams.values()])
        if name == "kmeans":
            sample = kmeans.sample_frames(feats, 500, 0)  # what FitCodebook takes from one song
            size = kmeans.codebook_size_for(sample.shape[0])
            centroids = kmeans.fit_codebook(sample, size)
            result["fit_s"] = round(time.perf_counter() - t, 2)
        else:
            rng = np.random.default_rng(0)
            centroids = feats[rng.choice(feats.shape[0], 16384, replace=feats.shape[0] < 16384)]
            centroids = centroids + rng.normal(0, 0.5, centroids.shape).astype(np.float32)
        uri = os.path.join(tmp, "codebook.npz")
        kmeans.save_codebook(uri, centroids, feats.shape[0])
        backend = EncodeTokens.make_backend("kmeans", {"weights": uri})
        result["codebook_size"] = int(centroids.shape[0])
    elif name == "encodec":
        import torch
        import transformers

        torch.manual_seed(0)
        transformers.EncodecModel(transformers.EncodecConfig()).save_pretrained(os.path.join(tmp, "encodec"))
        backend = EncodeTokens.make_backend("encodec", {"weights": os.path.join(tmp, "encodec"),
                                                     "threads": args.threads})
        result["weights"] = "random init, EnCodec 24 kHz architecture (14.9 M parameters)"
    elif name == "songgen":
        backend = EncodeTokens.make_backend("songgen", {"weights": args.songgen_weights,
                                                     "code_dir": args.songgen_code,
                                                     "threads": args.threads})
    else:
        raise SystemExit(f"unknown backend {name}")
    try:
        backend.check()
        t = time.perf_counter()
        backend.load()
        result["load_s"] = round(time.perf_counter() - t, 2)
    except BackendUnavailable as exc:
        result["unavailable"] = str(exc)
        return result
    if name == "encodec":
        import torch

        torch.set_num_threads(args.threads or torch.get_num_threads())
        result["torch_threads"] = torch.get_num_threads()
    result["rss_before_mb"] = round(_current_rss_mb(), 0)
    result.update(_stage_work(backend, streams))
    result["peak_rss_mb"] = round(_rss_mb(), 0)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=360.0)
    parser.add_argument("--threads", type=int, default=1, help="OMP / torch threads in each run")
    parser.add_argument("--backends", default="kmeans,kmeans16384,encodec,songgen")
    parser.add_argument("--songgen_weights", default="")
    parser.add_argument("--songgen_code", default="")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    parser.add_argument("--song", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args)))
        return 0
    song = os.path.join(tempfile.mkdtemp(prefix="bench-codec-song-"), "song.npz")
    make_song(song, args.seconds)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print(f"codec benchmark: {args.seconds:.0f} s song (mix + 2 stems, plus the 10 s prompt), "
          f"{args.threads} thread(s), {os.cpu_count()} CPU(s) on this machine")
    for name in args.backends.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--one", name, "--seconds", str(args.seconds),
               "--threads", str(args.threads), "--song", song, "--songgen_weights", args.songgen_weights,
               "--songgen_code", args.songgen_code]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            print(f"{name}: failed (rc {proc.returncode}): {proc.stderr[-800:]}")
            continue
        res = json.loads(lines[-1])
        if "unavailable" in res:
            print(f"{name:12s} unavailable: {res['unavailable']}")
            continue
        print(f"{name:12s} encode {res['encode_s']:7.2f} s (song {res['song_encode_s']:.2f} s + prompt "
              f"{res['prompt_encode_s']:.2f} s)  RTF {res['rtf']:.4f} (per stream {res['rtf_per_stream']:.4f})  "
              f"RSS while encoding: peak {res['encode_peak_rss_mb']:.0f} MB (from {res['rss_before_mb']:.0f} MB); "
              f"process peak {res['peak_rss_mb']:.0f} MB")
        print("             " + json.dumps({k: v for k, v in res.items() if k not in (
            "encode_s", "song_encode_s", "prompt_encode_s", "rtf", "rtf_per_stream", "peak_rss_mb",
            "rss_before_mb", "encode_peak_rss_mb", "backend")}))
    os.remove(song)
    return 0


if __name__ == "__main__":
    sys.exit(main())
