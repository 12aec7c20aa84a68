"""Reference lyrics on real recordings: each way of giving them, and the wrong ones.

For the real-music set's sung songs (``benchmarks/realmusic.py build DIR``: known lyrics sung over
real instrumentals), builds four inputs under ``--work`` and runs the default job on each:

- ``sidecar``: ``NAME.txt`` beside the song, as the set has it;
- ``tag``: the lyrics in the FLAC's own Vorbis ``LYRICS`` tag, no sidecar;
- ``table``: a ``--lyrics_table`` JSONL keyed by path, no sidecar;
- ``swapped``: every song given the next song's lyrics (a reference that does not belong).

Prints per song and input: where the words came from, the agreement score and the reason, and the
WER of ``gt_lyric``'s words against the words actually sung (``NAME.truth.json``); then, per input,
how many references were taken. About 10 minutes on 2 cores.

    .venv/bin/python benchmarks/eval_reference_lyrics.py --set /work/data/realmusic --work /tmp/reflyr
    [--score_only]  # score what an earlier call left in --work
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
VARIANTS = ("sidecar", "tag", "table", "swapped")


def sung_songs(folder: str) -> list:
    return sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(folder, "sung_*.txt")))


def make_inputs(folder: str, work: str, names: list) -> dict:
    """{variant: (input folder, extra run flags)} built under ``work``."""
    import mutagen.flac

    texts = {n: open(os.path.join(folder, n + ".txt"), encoding="utf-8").read() for n in names}
    inputs = {}
    for variant in VARIANTS:
        d = os.path.join(work, variant, "songs")
        os.makedirs(d, exist_ok=True)
        for k, n in enumerate(names):
            for ext in (".flac", ".json"):
                shutil.copy(os.path.join(folder, n + ext), os.path.join(d, n + ext))
            if variant == "sidecar":
                shutil.copy(os.path.join(folder, n + ".txt"), os.path.join(d, n + ".txt"))
            elif variant == "swapped":
                with open(os.path.join(d, n + ".txt"), "w", encoding="utf-8") as f:
                    f.write(texts[names[(k + 1) % len(names)]])
            elif variant == "tag":
                tagged = mutagen.flac.FLAC(os.path.join(d, n + ".flac"))
                tagged["LYRICS"] = texts[n]
                tagged.save()
        flags = []
        if variant == "table":
            table = os.path.join(work, "table.jsonl")
            with open(table, "w", encoding="utf-8") as f:
                for n in names:
                    f.write(json.dumps({"path": n + ".flac", "lyrics": texts[n]}) + "\n")
            flags = ["--lyrics_table", table]
        inputs[variant] = (d, flags)
    return inputs


def words_of(gt_lyric: str) -> str:
    """The words of a gt_lyric line, normalised (lower case, no punctuation) as the truth is."""
    from transforms.lyrics.format import normalize_key

    return normalize_key(re.sub(r"\[[^\]]*\]", " ", gt_lyric).replace(";", " "))


def main() -> None:
    import jiwer
    import webdataset as wds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="/work/data/realmusic")
    parser.add_argument("--work", default="/tmp/songshard-reflyr")
    parser.add_argument("--score_only", action="store_true", help="score the outputs an earlier call left")
    args = parser.parse_args()
    names = sung_songs(args.set)
    if not args.score_only:
        shutil.rmtree(args.work, ignore_errors=True)
    from transforms.lyrics.format import normalize_key

    truth = {n: normalize_key(json.load(open(os.path.join(args.set, n + ".truth.json")))["lyrics_text"])
             for n in names}
    inputs = {v: (os.path.join(args.work, v, "songs"), []) for v in VARIANTS} if args.score_only \
        else make_inputs(args.set, args.work, names)
    for variant, (songs, flags) in inputs.items():
        out = os.path.join(args.work, variant, "out")
        cmd = [sys.executable, "-m", "pipeline.cli", "run", "--input", songs, "--output", out,
               "--progress_interval", "0", "--filter_min_duration", "1", *flags]
        if not args.score_only:
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        taken = 0
        for shard in sorted(glob.glob(os.path.join(out, "*.tar"))):
            for s in wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode():
                j = s["json"]
                lyr = j["labels"]["lyrics"]
                name = os.path.basename(j["uri"])[:-5]
                agree = lyr.get("agreement", {})
                wer = jiwer.wer(truth[name], words_of(j["gt_lyric"]) or "-")
                taken += lyr.get("words_source") == "reference"
                print(f"{variant:8} {name:26} {lyr.get('words_source', ''):9} agreement {agree.get('score', float('nan')):.2f} "
                      f"gt_lyric WER {wer:.3f}  source {j['source'].get('reference_lyrics_source', '')}: "
                      f"{agree.get('reason', '')}", flush=True)
        print(f"{variant:8} references taken: {taken} / {len(names)}", flush=True)


if __name__ == "__main__":
    main()
