"""Section timelines of a few songs of a songshard OUT, as one PNG: sections by tag, downbeats, vocals.

    python benchmarks/plot_sections.py OUT PNG [--songs 6]
"""

from __future__ import annotations

import argparse
import glob
import os

FAMILY_COLOURS = {"intro": "#8fb4d9", "verse": "#f2b880", "chorus": "#e0675d", "bridge": "#b48ed0",
                  "inst": "#9bc995", "outro": "#7f9cbf", "silence": "#dddddd"}


def samples(out_dir: str):
    """(name, json) of every sample in OUT's shards, sorted by name."""
    import webdataset as wds

    found = []
    for shard in sorted(glob.glob(os.path.join(out_dir, "*.tar"))):
        for s in wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode():
            found.append((os.path.splitext(os.path.basename(s["json"]["uri"]))[0], s["json"]))
    return sorted(found, key=lambda x: x[0])


def plot(records, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(records), 1, figsize=(12, 1.1 * len(records) + 0.6), squeeze=False)
    for ax, (name, rec) in zip(axes[:, 0], records):
        st = rec["labels"]["structure"]
        for sec in st["sections"]:
            fam = sec["tag"].split("-")[0]
            ax.axvspan(sec["start"], sec["end"], 0.35, 1.0, color=FAMILY_COLOURS.get(fam, "#cccccc"), lw=0)
            ax.text((sec["start"] + sec["end"]) / 2, 0.68, sec["tag"], ha="center", va="center", fontsize=7)
        for t in st.get("downbeats", []):
            ax.axvline(t, 0.35, 1.0, color="k", lw=0.3, alpha=0.4)
        for a, b in rec["labels"]["lyrics"].get("vocal_activity", {}).get("regions", []):
            ax.axvspan(a, b, 0.05, 0.3, color="#444444", lw=0)
        ax.set_xlim(0, rec["duration"])
        ax.set_yticks([])
        ax.set_ylabel(f"{name[:22]}\n{st['bpm']:.0f} bpm", rotation=0, ha="right", va="center", fontsize=8)
    axes[-1, 0].set_xlabel("seconds (top: sections and downbeats; bottom: vocal activity)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("png")
    p.add_argument("--songs", type=int, default=6)
    args = p.parse_args(argv)
    records = samples(args.out)
    step = max(1, len(records) // args.songs)
    print(plot(records[::step][: args.songs], args.png))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
