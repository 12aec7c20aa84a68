"""Separation quality against true stems: SDR and SI-SDR of vocals and accompaniment, per song and mean.

For every backend that is available here (``dsp`` always; ``demucs`` when
``--demucs-weights`` resolves) and for the trivial baseline (the mixture itself
as the estimate of both stems). The songs are the sample corpus's
(``pipeline.sample_corpus.make_sample_corpus``; true stems in
``CORPUS/_truth/NAME/{vocals,accompaniment}.wav``); the mix evaluated is the sum
of the true stems at 48 kHz stereo, so that estimate and truth line up sample
for sample. Without a corpus (``--synthetic``) it uses ``tests/conftest.synth_mix``.

    python benchmarks/eval_separation.py [--corpus DIR | --make-corpus N | --synthetic N]
        [--backends dsp,demucs] [--demucs-weights PATH] [--wait 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from transforms.core import audio as au  # noqa: E402
from transforms.separate.metrics import sdr, si_sdr  # noqa: E402

SR = au.CODEC_RATE


def _read(path: str) -> np.ndarray:
    import soundfile as sf

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return au.to_stereo(au.resample(data.T, rate, SR))


def corpus_songs(corpus: str):
    """[(name, mix, vocals, accompaniment)] from CORPUS/_truth/NAME/{vocals,accompaniment}.wav."""
    truth = os.path.join(corpus, "_truth")
    songs = []
    for name in sorted(os.listdir(truth)):
        folder = os.path.join(truth, name)
        voc, acc = _read(os.path.join(folder, "vocals.wav")), _read(os.path.join(folder, "accompaniment.wav"))
        n = min(voc.shape[1], acc.shape[1])
        voc, acc = voc[:, :n], acc[:, :n]
        songs.append((name, voc + acc, voc, acc))
    return songs


def synthetic_songs(n: int):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from conftest import synth_mix

    return [(f"synth{k}", *synth_mix(30.0, bpm=96.0 + 12 * k, seed=k)) for k in range(n)]


def find_corpus(args) -> str | None:
    if args.corpus:
        deadline = time.time() + args.wait
        while not os.path.isdir(os.path.join(args.corpus, "_truth")) and time.time() < deadline:
            time.sleep(10)
        return args.corpus if os.path.isdir(os.path.join(args.corpus, "_truth")) else None
    if args.make_corpus:
        deadline = time.time() + args.wait
        while True:
            try:
                from pipeline.sample_corpus import make_sample_corpus
                break
            except ImportError:
                if time.time() >= deadline:
                    return None
                time.sleep(10)
        out = tempfile.mkdtemp(prefix="songshard-corpus-")
        make_sample_corpus(out, n_songs=args.make_corpus, seed=0)
        return out
    return None


def backends(args):
    from transforms.core.stage import BackendUnavailable
    from transforms.separate import SeparateStems

    found = []
    for name in args.backends.split(","):
        opts = {"weights": args.demucs_weights} if name == "demucs" and args.demucs_weights else {}
        backend = SeparateStems.make_backend(name, opts)
        try:
            backend.check()
        except BackendUnavailable as exc:
            print(f"[{name}: not evaluated: {exc}]")
            continue
        backend.load()
        found.append((name, backend))
    return found


def estimates(backend, mix: np.ndarray) -> tuple:
    out = backend.separate(mix, SR)
    acc = out["accompaniment"] if "accompaniment" in out else out["drums"] + out["bass"] + out["other"]
    return out["vocals"], acc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="a sample corpus folder (with _truth/)")
    parser.add_argument("--make-corpus", type=int, default=0, help="make a sample corpus of N songs in a temp dir")
    parser.add_argument("--synthetic", type=int, default=0, help="use N synthetic songs instead")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the corpus to appear")
    parser.add_argument("--backends", default="dsp,demucs")
    parser.add_argument("--demucs-weights", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass

    corpus = None if args.synthetic else find_corpus(args)
    if corpus:
        songs, source = corpus_songs(corpus), f"sample corpus {corpus} (mix = sum of the true stems)"
    else:
        songs, source = synthetic_songs(args.synthetic or 3), "synthetic songs (tests/conftest.synth_mix)"
    methods = [("mixture (baseline)", None)] + backends(args)
    print(f"# Separation quality on {len(songs)} {source}")
    print("| song | method | vocals SDR | vocals SI-SDR | accomp. SDR | accomp. SI-SDR | x real time |")
    print("|---|---|---|---|---|---|---|")
    scores = {name: [] for name, _ in methods}
    for song, mix, voc, acc in songs:
        for name, backend in methods:
            start = time.perf_counter()
            est_v, est_a = (mix, mix) if backend is None else estimates(backend, mix)
            rt = (time.perf_counter() - start) / (mix.shape[1] / SR)
            row = (sdr(voc, est_v), si_sdr(voc, est_v), sdr(acc, est_a), si_sdr(acc, est_a), rt)
            scores[name].append(row)
            print(f"| {song} | {name} | " + " | ".join(f"{v:.2f}" for v in row[:4]) + f" | {rt:.3f} |")
    print("\n## Mean over songs")
    print("| method | vocals SDR | vocals SI-SDR | accomp. SDR | accomp. SI-SDR | x real time |")
    print("|---|---|---|---|---|---|")
    for name, rows in scores.items():
        mean = np.mean(np.array(rows), axis=0)
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in mean[:4]) + f" | {mean[4]:.3f} |")


if __name__ == "__main__":
    main()
