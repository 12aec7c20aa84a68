"""songshard's stages against the real-music evaluation set's truth (``benchmarks/realmusic.py``).

    python benchmarks/eval_real.py --set DIR --out OUT [--sdr dsp,spleeter] [--json FILE]

``OUT`` is a songshard output folder made from the set (``songshard run --input DIR --output OUT``,
default flags: the language rule is off unless ``--filter_language_rule`` is given). The labels are read from the shard tars (webdataset, member ``json``) and, for songs that
were filtered, not at all: they are listed as missing. Figures printed, per stage:

* lyrics: share of vocal songs with words in ``gt_lyric``; WER of ``labels.lyrics.lines`` against
  the known lyrics of the sung songs (jiwer, after ``normalise_words``);
* pure music: confusion of the sample's ``pure_music`` against the truth's ``has_vocals``;
* tempo: ``labels.structure.bpm`` within 2 % / 4 % of the known bpm, and within 4 % allowing
  double / half / 1.5x / 2/3 (metrical level errors);
* tags: genre hit rate (the truth's coarse genre found in ``labels.tags.genre``) and gender
  accuracy (``labels.tags.gender``) on the vocal songs;
* separation (``--sdr``): vocal SDR gain of a separator backend on the sung songs, from the true
  stems (``vocal_sdr_gain``); independent of ``OUT``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from transforms.core.shape_rules import shape_ok  # noqa: E402

UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}
TEMPO_RATIOS = (1.0, 2.0, 0.5, 1.5, 2.0 / 3.0)


# ---------------------------------------------------------------- reading
def read_truth(set_dir: str) -> Dict[str, dict]:
    """{song name: truth record} from ``set_dir/*.truth.json``."""
    out = {}
    for path in sorted(glob.glob(os.path.join(set_dir, "*.truth.json"))):
        with open(path) as f:
            rec = json.load(f)
        out[rec["name"]] = rec
    return out


def read_samples(out_dir: str) -> Dict[str, dict]:
    """{song name (file name without extension): sample json} from every shard tar in ``out_dir``."""
    import webdataset as wds

    found = {}
    for shard in sorted(glob.glob(os.path.join(out_dir, "*.tar"))):
        for sample in wds.WebDataset(shard, shardshuffle=False, empty_check=False):
            rec = json.loads(sample["json"])
            found[os.path.splitext(os.path.basename(rec["uri"]))[0]] = rec
    return found


def read_index(out_dir: str):
    """The run's index (``OUT/index/*.parquet``) as a pyarrow Table, or None when there is none."""
    import pyarrow.parquet as pq

    return pq.read_table(os.path.join(out_dir, "index")) if glob.glob(os.path.join(out_dir, "index", "*.parquet")) \
        else None


# ---------------------------------------------------------------- pure figures
def normalise_words(text: str) -> str:
    """Lower case, German umlauts spelled out, section tags and punctuation removed, single spaces."""
    text = text.lower()
    for k, v in UMLAUTS.items():
        text = text.replace(k, v)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return " ".join(text.split())


def lyric_words(gt_lyric: str) -> int:
    """Number of words in a ``gt_lyric`` string once its section tags are removed."""
    return len(normalise_words(gt_lyric).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after ``normalise_words`` (jiwer);
    1.0 for an empty hypothesis of a non-empty reference."""
    import jiwer

    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not hyp:
        return 1.0
    return float(jiwer.wer(ref, hyp))


def tempo_hits(truth_bpm: float, est_bpm: Optional[float]) -> Dict[str, bool]:
    """{"2%", "4%", "4% any level"}: whether ``est_bpm`` is within 2 % / 4 % of the truth, and within
    4 % of the truth times one of TEMPO_RATIOS. All False for a missing estimate."""
    if not est_bpm or est_bpm != est_bpm:
        return {"2%": False, "4%": False, "4% any level": False}
    err = abs(est_bpm - truth_bpm) / truth_bpm
    return {"2%": err <= 0.02, "4%": err <= 0.04,
            "4% any level": any(abs(est_bpm - truth_bpm * r) / (truth_bpm * r) <= 0.04 for r in TEMPO_RATIOS)}


def confusion(pairs: List[tuple]) -> Dict[str, int]:
    """Pure-music confusion from [(truth has_vocals, predicted pure_music)]."""
    out = {"vocal->vocal": 0, "vocal->pure": 0, "instrumental->pure": 0, "instrumental->vocal": 0}
    for has_vocals, pure in pairs:
        out[("vocal->" if has_vocals else "instrumental->") + ("pure" if pure else "vocal")] += 1
    return out


ROCK_FAMILY = ("rock", "metal", "punk", "grunge", "alternative", "hard rock", "heavy metal", "indie rock")


def genre_hit(truth_genre: str, predicted) -> bool:
    """Whether the coarse truth genre appears in the predicted genre(s) ("heavy metal" hits metal)."""
    names = [predicted] if isinstance(predicted, str) else list(predicted or [])
    return bool(truth_genre) and any(truth_genre in str(g).lower() for g in names)


def rock_family_hit(predicted) -> bool:
    """Whether any predicted genre is of the rock family (rock, metal, punk ...)."""
    names = [predicted] if isinstance(predicted, str) else list(predicted or [])
    return any(any(f in str(g).lower() for f in ROCK_FAMILY) for g in names)


def _share(hits: List[bool]) -> str:
    return f"{sum(hits)}/{len(hits)} ({100.0 * sum(hits) / len(hits):.0f} %)" if hits else "n/a"


# ---------------------------------------------------------------- per stage
def evaluate(truth: Dict[str, dict], samples: Dict[str, dict]) -> dict:
    """Every figure of the module docstring (but SDR) as a dict, with per-song rows."""
    rows, figs = [], {}
    seen = {n: t for n, t in truth.items() if n in samples}
    for name, t in seen.items():
        s = samples[name]
        labels = s.get("labels", {})
        lyr, st, tags = labels.get("lyrics", {}), labels.get("structure", {}), labels.get("tags", {})
        hyp = " ".join(ln.get("text", "") for ln in lyr.get("lines", []))
        row = {"name": name, "has_vocals": t["has_vocals"], "pure_music": bool(s.get("pure_music")),
               "gt_lyric_words": lyric_words(s.get("gt_lyric", "")), "bpm_true": t["bpm"], "bpm_est": st.get("bpm"),
               "genre_true": t["genre"], "genre_est": tags.get("genres") or tags.get("genre", ""),
               "gender_true": t["gender"], "gender_est": tags.get("gender", ""),
               "instruments": tags.get("instruments", []), "language_true": t.get("language"),
               "language_est": lyr.get("language", ""), "language_p": lyr.get("language_probability"),
               "sections": [x.get("tag") for x in st.get("sections", [])],
               "shape_ok": shape_ok(s.get("gt_lyric", "")) and shape_ok(s.get("gt_lyric_timed", ""))}
        if t["has_vocals"] and t.get("lyrics_text"):
            row["wer"] = round(wer(t["lyrics_text"], hyp), 3)
        if t["bpm"]:
            row.update(tempo_hits(t["bpm"], st.get("bpm")))
        rows.append(row)
    vocal = [r for r in rows if r["has_vocals"]]
    figs["missing_from_shards"] = sorted(set(truth) - set(samples))
    figs["vocal songs with words in gt_lyric"] = _share([r["gt_lyric_words"] > 0 for r in vocal])
    figs["pure_music confusion"] = confusion([(r["has_vocals"], r["pure_music"]) for r in rows])
    wers = [r["wer"] for r in rows if "wer" in r]
    figs["mean WER (sung songs)"] = round(sum(wers) / len(wers), 3) if wers else "n/a"
    for k in ("2%", "4%", "4% any level"):
        figs[f"tempo within {k}"] = _share([r[k] for r in rows if r["bpm_true"]])
    figs["genre hit rate"] = _share([genre_hit(r["genre_true"], r["genre_est"]) for r in rows if r["genre_true"]])
    figs["gender accuracy (vocal songs)"] = _share([str(r["gender_est"]).lower() == r["gender_true"]
                                                    for r in vocal if r["gender_true"]])
    figs.update(_more_figures(rows))
    return {"figures": figs, "rows": rows}


def _more_figures(rows: List[dict]) -> dict:
    """Rock-family genres, genre + instrument coverage, instrumental gender, language, section shape."""
    figs = {}
    rockish = [r for r in rows if r["genre_true"] in ("rock", "metal")]
    figs["rock / metal songs with a rock-family genre"] = _share([rock_family_hit(r["genre_est"]) for r in rockish])
    figs["samples with a genre and an instrument"] = _share([bool(r["genre_est"]) and bool(r["instruments"])
                                                            for r in rows])
    figs["instrumentals without a gender"] = _share([not r["gender_est"] for r in rows if not r["has_vocals"]])
    known = [r for r in rows if r["has_vocals"] and r["language_true"]]
    figs["language right (vocal songs, known language)"] = _share([r["language_est"] == r["language_true"]
                                                                  for r in known])
    probs = [r["language_p"] for r in known if r["language_p"] is not None]
    figs["language probability on vocal songs (min / median / max)"] = (
        "n/a" if not probs else f"{min(probs):.2f} / {sorted(probs)[len(probs) // 2]:.2f} / {max(probs):.2f}")
    counts = sorted(len(r["sections"]) for r in rows)
    figs["sections per song (min / median / max)"] = (
        f"{counts[0]} / {counts[len(counts) // 2]} / {counts[-1]}" if counts else "n/a")
    figs["gt_lyric lines passing the shape rules"] = _share([r["shape_ok"] for r in rows])
    return figs


# ---------------------------------------------------------------- separation
def load_separator(name: str, options: Optional[dict] = None):
    """A loaded separator backend of the ``separate`` stage by name; BackendUnavailable when it
    is unknown or cannot run here."""
    from transforms.separate import SeparateStems

    backend = SeparateStems.make_backend(name, options or {})
    backend.check()
    backend.load()
    return backend


def vocal_sdr_gain(set_dir: str, rec: dict, backend) -> dict:
    """{"sdr_mix", "sdr_est", "gain"} (dB) of a loaded separator ``backend``'s vocals on one song with
    true ``vocals`` / ``accompaniment`` stems: the mix is their sum (resampled to the separators'
    48 kHz), the gain is SDR(true vocals, estimate) - SDR(true vocals, mix). Raises KeyError for a
    song without a vocals stem."""
    import soundfile as sf

    from transforms.core import audio as au
    from transforms.separate.metrics import sdr

    sr = au.CODEC_RATE
    stems = {}
    for k in ("vocals", "accompaniment"):
        data, rate = sf.read(os.path.join(set_dir, rec["stems"][k]), dtype="float32", always_2d=True)
        stems[k] = au.to_stereo(au.resample(data.T, rate, sr))
    n = min(v.shape[1] for v in stems.values())
    voc, mix = stems["vocals"][:, :n], stems["vocals"][:, :n] + stems["accompaniment"][:, :n]
    est = backend.separate(mix, sr)["vocals"]
    base, got = sdr(voc, mix), sdr(voc, est)
    return {"sdr_mix": round(float(base), 2), "sdr_est": round(float(got), 2), "gain": round(float(got - base), 2)}


def sdr_report(set_dir: str, truth: Dict[str, dict], backends: List[str]) -> dict:
    """{"song/backend": vocal_sdr_gain} over the songs with a true vocals stem; prints a table and
    skips (with a note) the backends that cannot run here."""
    from transforms.core.stage import BackendUnavailable

    out = {}
    print("\n| song | backend | vocal SDR of the mix | of the estimate | gain |\n|---|---|---|---|---|")
    for name in backends:
        try:
            backend = load_separator(name)
        except BackendUnavailable as exc:
            print(f"[{name}: not evaluated: {exc}]")
            continue
        for song, rec in truth.items():
            if "vocals" in rec["stems"]:
                g = out[f"{song}/{name}"] = vocal_sdr_gain(set_dir, rec, backend)
                print(f"| {song} | {name} | {g['sdr_mix']} | {g['sdr_est']} | {g['gain']} |")
    return out


def main(argv=None) -> int:
    """CLI; see the module docstring. Prints Markdown; ``--json`` also writes the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", required=True, help="the evaluation set folder (benchmarks/realmusic.py build)")
    p.add_argument("--out", default=None, help="a songshard output folder made from the set")
    p.add_argument("--sdr", default="", help="separator backends for the vocal SDR gain, comma-separated")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    truth = read_truth(args.set)
    report: dict = {}
    if args.out:
        report = evaluate(truth, read_samples(args.out))
        print(f"# songshard on the real-music set ({len(truth)} songs, {len(report['rows'])} in the shards)\n")
        for k, v in report["figures"].items():
            print(f"- {k}: {v}")
        print("\n| song | vocals | pure_music | gt_lyric words | WER | bpm true / est | genre true / est | gender true / est |")
        print("|---|---|---|---|---|---|---|---|")
        for r in report["rows"]:
            bpm_est = f"{r['bpm_est']:.1f}" if isinstance(r["bpm_est"], (int, float)) else "-"
            print(f"| {r['name']} | {r['has_vocals']} | {r['pure_music']} | {r['gt_lyric_words']} | "
                  f"{r.get('wer', '-')} | {r['bpm_true'] or '-'} / {bpm_est} | {r['genre_true'] or '-'} / "
                  f"{r['genre_est'] or '-'} | {r['gender_true'] or '-'} / {r['gender_est'] or '-'} |")
    if args.sdr:
        import torch

        torch.set_num_threads(1)
        report["sdr"] = sdr_report(args.set, truth, args.sdr.split(","))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
