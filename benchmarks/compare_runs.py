"""Compare the records of two runs over the same songs: labels, lines and token arrays, song by song.

    python benchmarks/compare_runs.py OUT_A OUT_B [--stages structure,lyrics,tags,quality,separate]

Songs are matched by file name. Printed: each song missing from B, each record field
(``key``, the song id; ``duration``, ``truncated``, ``source``, ``gt_lyric``, ``gt_lyric_timed``,
``descriptions``, ``pure_music``, ``musicality``) that differs, each stage label that differs (with the keys that do), and token arrays that
differ; then the number of differences. Exit status 1 when there is any: a change meant
to keep the outputs (a speed or memory change) is checked with it.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import sys
import tarfile

import numpy as np

FIELDS = ("key", "duration", "truncated", "source", "gt_lyric", "gt_lyric_timed", "descriptions", "pure_music",
          "musicality")


def records(out: str) -> dict:
    """{file name: record with its ``tokens`` array under ``_tokens``} from a run's shards."""
    found = {}
    for shard in sorted(glob.glob(f"{out}/*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name, member in members.items():
                if not name.endswith(".json"):
                    continue
                rec = json.load(tar.extractfile(member))
                tokens = members.get(name[:-5] + ".tokens.npy")
                rec["_tokens"] = np.load(io.BytesIO(tar.extractfile(tokens).read())) if tokens else None
                found[rec["uri"].rsplit("/", 1)[-1]] = rec
    return found


def differences(a: dict, b: dict, stages) -> list:
    """Lines describing every difference between two runs' records."""
    out = []
    for song in sorted(a):
        ra, rb = a[song], b.get(song)
        if rb is None:
            out.append(f"{song}: missing from B")
            continue
        out += [f"{song}: {f}: {str(ra.get(f))[:120]!r} != {str(rb.get(f))[:120]!r}"
                for f in FIELDS if ra.get(f) != rb.get(f)]
        for stage in stages:
            la, lb = ra["labels"].get(stage, {}), rb["labels"].get(stage, {})
            if la != lb:
                keys = sorted(k for k in set(la) | set(lb) if la.get(k) != lb.get(k))
                out.append(f"{song}: labels.{stage} differs in {keys[:8]}")
        ta, tb = ra["_tokens"], rb["_tokens"]
        if (ta is None) != (tb is None) or (ta is not None and not np.array_equal(ta, tb)):
            out.append(f"{song}: token arrays differ")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_a")
    parser.add_argument("out_b")
    parser.add_argument("--stages", default="structure,lyrics,tags,quality,separate")
    args = parser.parse_args(argv)
    a, b = records(args.out_a), records(args.out_b)
    found = differences(a, b, [s for s in args.stages.split(",") if s])
    print("\n".join(found))
    print(f"{len(a)} songs in A, {len(b)} in B; {len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
