"""Vocal gender on real music: musicnn on the mix vs on the separated vocal stem vs the pitch descriptor.

    python benchmarks/eval_gender.py --set DIR [--out OUT]

For each vocal song of the real-music set (``benchmarks/realmusic.py``) with a known gender, the mix
is separated with the default separator (Spleeter 2-stem) and musicnn tags the mix and the vocal
stem; the pitch descriptor's verdict on the stem is computed too. With ``--out`` (a songshard run
over the set) the pipeline's own gender is listed beside them. Prints one row a song and the
accuracy of each source.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def load_song(path: str):
    import soundfile as sf

    from transforms.core import audio as au

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return au.to_stereo(au.resample(data.T, rate, au.CODEC_RATE)), au.CODEC_RATE


def genders(mix, sr, separator, tagger) -> dict:
    """{"mix", "stem", "pitch"}: musicnn's gender on the mix and on the vocal stem, the pitch verdict."""
    from transforms.tags import descriptors

    stem = separator.separate(mix, sr)["vocals"]
    out = {}
    for name, audio in (("mix", mix), ("stem", stem)):
        picks = tagger.tag(audio, sr)["picks"]["gender"]
        out[name] = picks[0][0] if picks else ""
    out["pitch"] = str(descriptors.gender_from_pitch(descriptors.vocal_pitch(stem, sr, mix))["gender"])
    return out


def pipeline_genders(out_dir: str) -> dict:
    """{song name: gender} from the shards of a songshard run."""
    import glob

    import webdataset as wds

    found = {}
    for shard in sorted(glob.glob(os.path.join(out_dir, "*.tar"))):
        for sample in wds.WebDataset(shard, shardshuffle=False, empty_check=False).decode():
            rec = sample["json"]
            found[os.path.splitext(os.path.basename(rec["uri"]))[0]] = rec["labels"]["tags"].get("gender", "")
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", required=True)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    from transforms.separate import SeparateStems
    from transforms.tags import TagSongs

    torch.set_num_threads(1)
    separator, tagger = SeparateStems.make_backend("spleeter"), TagSongs.make_backend("musicnn")
    separator.load()
    tagger.load()
    piped = pipeline_genders(args.out) if args.out else {}
    hits = {"mix": [], "stem": [], "pitch": [], "pipeline": []}
    print("| song | true | musicnn on mix | musicnn on vocal stem | pitch | pipeline |\n|---|---|---|---|---|---|")
    for name in sorted(os.listdir(args.set)):
        if not name.endswith(".truth.json"):
            continue
        truth = json.load(open(os.path.join(args.set, name)))
        if not truth.get("has_vocals") or not truth.get("gender"):
            continue
        song = name[: -len(".truth.json")]
        got = genders(*load_song(os.path.join(args.set, truth["file"])), separator, tagger)
        got["pipeline"] = piped.get(song, "?") if piped else "-"
        for k in hits:
            if got[k] not in ("-", "?"):
                hits[k].append(got[k] == truth["gender"])
        print(f"| {song} | {truth['gender']} | {got['mix'] or '-'} | {got['stem'] or '-'} | {got['pitch'] or '-'} "
              f"| {got['pipeline'] or '-'} |", flush=True)
    for k, v in hits.items():
        if v:
            print(f"- {k}: {sum(v)}/{len(v)} right")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
