"""How far can the metrical-level check's weights go? A cross-validated search on songs of known tempo.

For every song in the ``--folder``s (audio files with ``NAME.truth.json`` holding ``{"bpm": ...}``),
BeatNet's beats are tracked once and every candidate level's evidence is measured once
(``transforms.structure.tempo.level_evidence``, plus the model evidence of the structure stage's
defaults: the tempo CNN's support and its peak as a candidate, the genre tagger's metal score); the
decision is then replayed on those numbers for every weight setting of a grid. Printed:

- how many songs some candidate gets within 2 % (the ceiling of any level decision);
- the tracker alone, the shipped weights (``tempo.WEIGHTS``) and the shipped weights without the
  model evidence, per folder;
- for three grids (the signal terms with the model evidence off; the two model weights with the
  signal terms as shipped; the signal terms with the model weights off or as shipped): the best
  setting on all songs (in-sample: optimistic), leave-one-out over all songs (each song scored by
  the setting that is best on the rest: the honest estimate for songs not yet seen) and a fit on
  each folder scored on the others.

    python benchmarks/tempo_level_cv.py --folder /work/data/realmusic --folder /work/data/tempo_heldout \\
        [--seconds 120 --offset 0] [--cache FILE.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

TERMS = ("periodicity", "contrast", "uniformity", "dominance", "downbeat")
# periodicity, contrast, uniformity, dominance, downbeat, prior weight, prior centre, prior sigma, stay
GRID = ((0, 1, 2, 3), (0, 0.5, 1), (0, 0.5, 1), (0, 1, 2, 3), (0, 0.1, 0.5), (0, 0.5, 1, 2),
        (100, 110, 120, 130, 140), (0.5, 0.7, 1.0), (0, 0.5, 1.0))
# the model evidence's weights: tempo CNN, metal tilt (searched with the signal terms at the shipped weights,
# and jointly with all of them for the in-sample ceiling)
MODEL_GRID = ((0, 0.25, 0.5, 1, 2), (0, 1, 2, 4, 8))


def measure(folders, seconds: float, offset: float) -> dict:
    """{song: {"set", "truth", "tracker", "cands": [evidence dicts with "bpm", "cnn", "metal"]}} from BeatNet
    beats, the tempo CNN and the genre tagger (the structure stage's defaults)."""
    from eval_tempo import folder_songs

    from transforms.structure import beatnet as bn
    from transforms.structure import tempo
    from transforms.structure.evidence import LevelEvidence

    net = bn.load_network(bn.DEFAULT_MODEL)
    models = LevelEvidence()
    out = {}
    for folder in folders:
        for name, y, bpm, *_ in folder_songs(folder, seconds, offset):
            beats, _, _ = bn.decode(bn.activations(net, bn.features(y)), bn.FPS)
            env = tempo.accent_envelopes(y, bn.RATE)
            tracked = tempo.tempo_from_beats(np.asarray(beats))
            shift = tempo.grid_shift(beats, tempo.pulse_accent(env), env.fps)
            cands = [{**tempo.level_evidence(beats, env, r, shift), "bpm": tracked * r} for r in tempo.RATIOS]
            cands += tempo.model_candidates(cands, env, tracked, models.measure(y, bn.RATE))
            cands = [{k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in c.items()
                      if k != "beats"} for c in cands]
            out[name] = {"set": os.path.basename(folder.rstrip("/")), "truth": bpm, "tracker": tracked,
                         "cands": cands}
            print(f"  {name:<40} truth {bpm:6.1f}  tracker {tracked:6.1f}", flush=True)
    return out


def arrays(song: dict):
    """(log-evidence [n, 5], bpm [n], ratio [n], right [n], log CNN support [n], metal tilt [n]) of a
    song's candidates in range."""
    from transforms.structure import tempo

    cands = [c for c in song["cands"] if tempo.MIN_BPM <= c["bpm"] <= tempo.MAX_BPM]
    logs = np.array([[np.log(np.clip(0.5 + tempo.CONTRAST_SLOPE * c[k] if k == "contrast" else c[k],
                                     tempo.FLOOR, 1.0)) for k in TERMS] for c in cands]).reshape(-1, len(TERMS))
    bpm = np.array([c["bpm"] for c in cands])
    cnn = np.array([np.log(np.clip(c.get("cnn") or 0.0, tempo.CNN_FLOOR, 1.0)) for c in cands])
    tilt = np.array([(c.get("metal") or 0.0) * np.log2(c["bpm"] / tempo.PRIOR_CENTRE) for c in cands])
    return logs, bpm, np.array([c["ratio"] for c in cands]), np.abs(bpm / song["truth"] - 1) < 0.02, cnn, tilt


def hits_table(data, settings: np.ndarray) -> np.ndarray:
    """[settings] -> 0/1 whether each setting picks a right candidate of the song, vectorised.

    A setting: the five TERMS weights, prior weight, centre, sigma, stay, CNN weight, metal weight.
    """
    logs, bpm, ratio, right, cnn, tilt = data
    if not len(bpm):
        return np.zeros(len(settings), dtype=int)
    s = settings
    prior = -0.5 * (np.log2(bpm[None, :] / s[:, 6:7]) / s[:, 7:8]) ** 2
    score = (s[:, :5] @ logs.T + s[:, 5:6] * prior + s[:, 8:9] * (ratio == 1.0)[None, :]
             + s[:, 9:10] * cnn[None, :] + s[:, 10:11] * tilt[None, :])
    return right[np.argmax(score, axis=1)].astype(int)


def shipped_setting() -> tuple:
    from transforms.structure import tempo

    return (*(tempo.WEIGHTS[k] for k in TERMS), tempo.WEIGHTS["prior"], tempo.PRIOR_CENTRE, tempo.PRIOR_SIGMA,
            tempo.WEIGHTS.get("stay", 0.0), tempo.WEIGHTS.get("cnn", 0.0), tempo.WEIGHTS.get("metal", 0.0))


def search(cache: dict) -> None:
    names = sorted(cache)
    data = {n: arrays(cache[n]) for n in names}
    sets = sorted({cache[n]["set"] for n in names})
    members = {s: [n for n in names if cache[n]["set"] == s] for s in sets}
    shipped = shipped_setting()
    signal = np.array([(*g, 0.0, 0.0) for g in itertools.product(*GRID)], dtype=float)
    model = np.array([(*shipped[:9], *m) for m in itertools.product(*MODEL_GRID)], dtype=float)
    joint = np.array([(*g, *m) for g in itertools.product(*GRID) for m in itertools.product(*MODEL_GRID)
                      if m in ((0, 0), (shipped[9], shipped[10]))], dtype=float)

    def hits(subset, setting):
        return int(sum(hits_table(data[n], np.array([setting], dtype=float))[0] for n in subset))

    print(f"\n{len(names)} songs ({', '.join(f'{s}: {len(members[s])}' for s in sets)}); "
          f"some candidate within 2 %: {sum(bool(data[n][3].any()) for n in names)}")
    for s in sets:
        tracker = sum(bool(data[n][3][data[n][2] == 1.0].any()) for n in members[s])
        print(f"{s}: tracker alone {tracker} / {len(members[s])}, shipped weights {hits(members[s], shipped)}, "
              f"without model evidence {hits(members[s], (*shipped[:9], 0.0, 0.0))}")
    for label, settings in (("signal terms only (model weights 0)", signal),
                            ("model weights, signal terms as shipped", model),
                            ("signal terms with the model weights 0 or as shipped", joint)):
        table = {n: hits_table(data[n], settings) for n in names}
        total = sum(table.values())
        i = int(np.argmax(total))
        loo = sum(int(table[n][int(np.argmax(total - table[n]))]) for n in names)
        fits = []
        for s in sets:
            rest = [n for n in names if cache[n]["set"] != s]
            j = int(np.argmax(sum(table[n] for n in members[s])))
            fits.append(f"fit on {s} -> others {sum(int(table[n][j]) for n in rest)} / {len(rest)}")
        print(f"{label}: best in-sample {int(total[i])} / {len(names)} with {tuple(settings[i])}; "
              f"leave-one-out {loo} / {len(names)}; " + "; ".join(fits))
    print(f"shipped weights: {hits(names, shipped)} / {len(names)} {shipped}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", action="append", default=[], help="songs with NAME.truth.json sidecars")
    parser.add_argument("--seconds", type=float, default=120.0, help="audio analysed per song")
    parser.add_argument("--offset", type=float, default=0.0, help="start of the analysed part (s)")
    parser.add_argument("--cache", default=None, help="JSON file of the measured evidence (written once, reused)")
    args = parser.parse_args(argv)
    if args.cache and os.path.isfile(args.cache):
        cache = json.load(open(args.cache))
    else:
        if not args.folder:
            parser.error("give --folder (or an existing --cache)")
        cache = measure(args.folder, args.seconds, args.offset)
        if args.cache:
            json.dump(cache, open(args.cache, "w"))
    search(cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
