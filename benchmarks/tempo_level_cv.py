"""How far can the metrical-level check's weights go? A cross-validated search on songs of known tempo.

For every song in the ``--folder``s (audio files with ``NAME.truth.json`` holding ``{"bpm": ...}``),
BeatNet's beats are tracked once and every candidate level's evidence is measured once
(``transforms.structure.tempo.level_evidence``); the decision is then replayed on those numbers for
every weight setting of a grid (the evidence weights, the tempo prior's centre and width, a bonus
for the tracker's own level). Printed:

- how many songs some candidate gets within 2 % (the ceiling of any level decision);
- the tracker alone and the shipped weights (``tempo.WEIGHTS``), per folder;
- the best setting on all songs (in-sample: optimistic), a fit on each folder scored on the others,
  and leave-one-out over all songs (each song scored by the setting that is best on the rest): the
  honest estimate of what re-weighting these terms would give on songs not yet seen.

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


def measure(folders, seconds: float, offset: float) -> dict:
    """{song: {"set", "truth", "tracker", "cands": [evidence dicts with "bpm"]}} from BeatNet beats."""
    from eval_tempo import folder_songs

    from transforms.structure import beatnet as bn
    from transforms.structure import tempo

    net = bn.load_network(bn.DEFAULT_MODEL)
    out = {}
    for folder in folders:
        for name, y, bpm, _ in folder_songs(folder, seconds, offset):
            beats, _, _ = bn.decode(bn.activations(net, bn.features(y)), bn.FPS)
            env = tempo.accent_envelopes(y, bn.RATE)
            tracked = tempo.tempo_from_beats(np.asarray(beats))
            shift = tempo.grid_shift(beats, tempo.pulse_accent(env), env.fps)
            cands = [{k: float(v) for k, v in tempo.level_evidence(beats, env, r, shift).items() if k != "beats"}
                     | {"bpm": tracked * r} for r in tempo.RATIOS]
            out[name] = {"set": os.path.basename(folder.rstrip("/")), "truth": bpm, "tracker": tracked,
                         "cands": cands}
            print(f"  {name:<40} truth {bpm:6.1f}  tracker {tracked:6.1f}", flush=True)
    return out


def arrays(song: dict):
    """(log-evidence [n, 5], bpm [n], ratio [n], right [n]) of a song's candidates in range."""
    from transforms.structure import tempo

    cands = [c for c in song["cands"] if tempo.MIN_BPM <= c["bpm"] <= tempo.MAX_BPM]
    logs = np.array([[np.log(np.clip(0.5 + tempo.CONTRAST_SLOPE * c[k] if k == "contrast" else c[k],
                                     tempo.FLOOR, 1.0)) for k in TERMS] for c in cands]).reshape(-1, len(TERMS))
    bpm = np.array([c["bpm"] for c in cands])
    return logs, bpm, np.array([c["ratio"] for c in cands]), np.abs(bpm / song["truth"] - 1) < 0.02


def outcome(data, setting) -> tuple:
    """(right: 0/1, probability the softmax gives the right candidates) of one song under one setting."""
    logs, bpm, ratio, right = data
    if not len(bpm):
        return 0, 0.0
    weights, prior_w, centre, sigma, stay = np.array(setting[:5], float), *setting[5:]
    score = logs @ weights + prior_w * -0.5 * (np.log2(bpm / centre) / sigma) ** 2 + stay * (ratio == 1.0)
    p = np.exp(score - score.max())
    return int(right[np.argmax(score)]), float(p[right].sum() / p.sum())


def search(cache: dict) -> None:
    from transforms.structure import tempo

    names = sorted(cache)
    data = {n: arrays(cache[n]) for n in names}
    sets = sorted({cache[n]["set"] for n in names})
    members = {s: [n for n in names if cache[n]["set"] == s] for s in sets}
    shipped = (*(tempo.WEIGHTS[k] for k in TERMS), tempo.WEIGHTS["prior"], tempo.PRIOR_CENTRE,
               tempo.PRIOR_SIGMA, tempo.WEIGHTS.get("stay", 0.0))
    settings = list(itertools.product(*GRID))
    table = {n: np.array([outcome(data[n], s) for s in settings]) for n in names}  # [settings, 2]

    def best(subset):  # most right, then the most probability on the right candidates
        total = sum(table[n] for n in subset)
        i = int(np.argmax(total[:, 0] + 1e-3 * total[:, 1]))
        return i, int(total[i, 0])

    def hits(subset, setting):
        return sum(outcome(data[n], setting)[0] for n in subset)

    print(f"\n{len(names)} songs ({', '.join(f'{s}: {len(members[s])}' for s in sets)}); "
          f"some candidate within 2 %: {sum(bool(data[n][3].any()) for n in names)}")
    for s in sets:
        tracker = sum(bool(data[n][3][data[n][2] == 1.0].any()) for n in members[s])
        print(f"{s}: tracker alone {tracker} / {len(members[s])}, shipped weights {hits(members[s], shipped)}")
    i, n_right = best(names)
    print(f"best setting on all songs (in-sample): {n_right} / {len(names)} with {settings[i]}")
    for s in sets:
        rest = [n for n in names if cache[n]["set"] != s]
        i, n_right = best(members[s])
        print(f"fit on {s} ({n_right} / {len(members[s])}) -> the others: {hits(rest, settings[i])} / {len(rest)}")
    loo = sum(int(table[n][best([m for m in names if m != n])[0], 0]) for n in names)
    print(f"leave-one-out over all songs: {loo} / {len(names)} (shipped weights: {hits(names, shipped)})")


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
