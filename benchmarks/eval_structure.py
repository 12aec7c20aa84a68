"""Structure quality on the sample corpus: bpm accuracy, beat F-measure, boundary hit rate.

For each song of the corpus (``pipeline.sample_corpus``; ground truth in
``ground_truth.json``) each structure backend named in ``--backends`` (default
``dsp`` and, when madmom is installed, ``madmom``) analyses the decoded mix with
the vocal stem the embedded ``dsp`` separator makes from it (as in the
pipeline), and with the true vocal stem (the analyser alone).

* bpm correct: within 2 % of the true tempo (half / double tempo count as wrong);
* beat F-measure: beats matched one-to-one within +-70 ms;
* boundary hit rate at 3 s: share of true section boundaries with an estimated
  boundary within 3 s (and the precision the other way round);
* label accuracy: share of the song's time whose estimated family (intro /
  verse / chorus / outro) equals the true one.

    python benchmarks/eval_structure.py [--corpus DIR] [--backends dsp,madmom] [--plot structure.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from transforms.core import audio as au  # noqa: E402


def beat_f_measure(est, ref, window=0.07) -> float:
    """F-measure of beats matched one-to-one within ``window`` seconds (greedy in time order)."""
    est, ref = list(est), list(ref)
    if not est or not ref:
        return 0.0
    used, hits = set(), 0
    for r in ref:
        best = min((abs(e - r), i) for i, e in enumerate(est) if i not in used) if len(used) < len(est) else None
        if best and best[0] <= window:
            used.add(best[1])
            hits += 1
    p, r = hits / len(est), hits / len(ref)
    return 2 * p * r / (p + r) if p + r else 0.0


def boundary_hits(est, ref, window=3.0) -> tuple:
    """(recall, precision) of inner section boundaries within ``window`` seconds."""
    if not ref:
        return 1.0, 1.0
    recall = float(np.mean([any(abs(e - r) <= window for e in est) for r in ref]))
    precision = float(np.mean([any(abs(e - r) <= window for r in ref) for e in est])) if est else 0.0
    return recall, precision


def family(label: str) -> str:
    return label.split("-")[0]


def label_accuracy(est_sections, ref_sections, duration, step=0.1) -> float:
    def at(sections, t):
        for s in sections:
            if s["start"] <= t < s["end"]:
                return family(s.get("tag", s["label"]))
        return ""

    ts = np.arange(0, duration, step)
    return float(np.mean([at(est_sections, t) == at(ref_sections, t) for t in ts]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "songshard-eval-corpus"))
    parser.add_argument("--backends", default="dsp,madmom",
                        help="comma-separated structure backends (unavailable ones are skipped with a note)")
    parser.add_argument("--plot", default=None, help="write a PNG of true vs estimated sections (first backend)")
    args = parser.parse_args(argv)

    import soundfile as sf

    from pipeline.sample_corpus import make_sample_corpus
    from transforms.structure.stage import structure_label
    from transforms.decode import decode_bytes
    from transforms.separate.dsp import DspSeparator
    from transforms.core.stage import BackendUnavailable
    from transforms.structure import AnalyzeStructure

    truth_path = os.path.join(args.corpus, "ground_truth.json")
    if not os.path.exists(truth_path):
        make_sample_corpus(args.corpus)
    truth = json.load(open(truth_path))
    analysers = {}
    for name in args.backends.split(","):
        backend = AnalyzeStructure.make_backend(name.strip(), {})
        try:
            backend.check()
        except BackendUnavailable as e:
            print(f"skipping {name}: {e}")
            continue
        backend.load()
        analysers[name.strip()] = backend
    separator = DspSeparator({})
    separator.load()
    rows, drawn = [], []
    for name, t in sorted(truth["songs"].items()):
        path = os.path.join(args.corpus, t["file"])
        audio, sr, _, _, _ = decode_bytes(open(path, "rb").read(), path)
        mix = au.to_stereo(au.resample(audio, sr, au.CODEC_RATE))
        true_v, vsr = sf.read(os.path.join(args.corpus, t["truth_stems"]["vocals"]), dtype="float32", always_2d=True)
        true_v = au.to_stereo(au.resample(true_v.T, vsr, au.CODEC_RATE))
        est_v = separator.separate(mix, au.CODEC_RATE)["vocals"]
        ref_bounds = [s["start"] for s in t["sections"][1:]]
        for (backend_name, analyser), (source, vocals) in itertools.product(
                analysers.items(), (("separated", est_v), ("true", true_v))):
            start = time.time()
            result = analyser.analyze(mix, au.CODEC_RATE, {"vocals": vocals})
            took = time.time() - start
            label = structure_label(result, mix.shape[1] / au.CODEC_RATE)
            est_bounds = [s["start"] for s in label["sections"][1:]]
            rec, prec = boundary_hits(est_bounds, ref_bounds)
            rows.append({"song": name, "backend": backend_name, "vocals": source, "bpm": result["bpm"], "true_bpm": t["bpm"],
                         "bpm_ok": abs(result["bpm"] - t["bpm"]) <= 0.02 * t["bpm"],
                         "beat_f": beat_f_measure(result["beats"], t["beats"]),
                         "downbeat_f": beat_f_measure(result["downbeats"], t["downbeats"]),
                         "bound_recall": rec, "bound_precision": prec,
                         "label_acc": label_accuracy(label["sections"], t["sections"], t["duration"]),
                         "seconds": took, "audio_seconds": mix.shape[1] / au.CODEC_RATE})
            if source == "separated" and backend_name == next(iter(analysers)):
                drawn.append((name, t["sections"], label["sections"], t["duration"]))
    print(f"{'song':<18} {'backend':<8} {'vocals':<10} {'bpm':>7} {'true':>6} {'ok':>3} {'beatF':>6} {'downF':>6} "
          f"{'bndRec':>6} {'bndPre':>6} {'label':>6} {'sec':>5}")
    for r in rows:
        print(f"{r['song']:<18} {r['backend']:<8} {r['vocals']:<10} {r['bpm']:>7.2f} {r['true_bpm']:>6.1f} {'yes' if r['bpm_ok'] else 'NO':>3} "
              f"{r['beat_f']:>6.3f} {r['downbeat_f']:>6.3f} {r['bound_recall']:>6.2f} {r['bound_precision']:>6.2f} "
              f"{r['label_acc']:>6.2f} {r['seconds']:>5.1f}")
    for backend_name, source in itertools.product(analysers, ("separated", "true")):
        sel = [r for r in rows if r["vocals"] == source and r["backend"] == backend_name]
        rtf = sum(r["seconds"] for r in sel) / sum(r["audio_seconds"] for r in sel)
        print(f"mean {backend_name} ({source} vocals): real-time factor {rtf:.3f}, bpm within 2% {np.mean([r['bpm_ok'] for r in sel]):.2f}, "
              f"beat F {np.mean([r['beat_f'] for r in sel]):.3f}, downbeat F {np.mean([r['downbeat_f'] for r in sel]):.3f}, "
              f"boundary hit rate @3s {np.mean([r['bound_recall'] for r in sel]):.2f} "
              f"(precision {np.mean([r['bound_precision'] for r in sel]):.2f}), "
              f"label accuracy {np.mean([r['label_acc'] for r in sel]):.2f}")
    if args.plot:
        _plot(drawn, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _plot(drawn, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.plots import _colour

    fig, axes = plt.subplots(len(drawn), 1, figsize=(12, 1.3 * len(drawn)), squeeze=False)
    for ax, (name, ref, est, dur) in zip(axes[:, 0], drawn):
        for row, sections in ((1, ref), (0, est)):
            for s in sections:
                tag = s.get("tag", s["label"])
                ax.barh(row, s["end"] - s["start"], left=s["start"], color=_colour(tag), edgecolor="white")
                ax.text((s["start"] + s["end"]) / 2, row, tag, ha="center", va="center", fontsize=7)
        ax.set_yticks([0, 1])
        ax.set_yticklabels(["songshard", "truth"], fontsize=7)
        ax.set_xlim(0, dur)
        ax.set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
