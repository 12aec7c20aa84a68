"""Evaluate the tags-and-quality stage on the sample corpus and on altered copies of its songs.

For every corpus song the mix is decoded the way the pipeline does (48 kHz stereo),
then altered: low-passed at 4 kHz (a low-bit-rate source), clipped (8x gain into
full scale), quieted (-30 dB), made mono, and with the vocals removed (the mix is
the true accompaniment). Each copy goes through the stage's own function
(``transforms.tags.stage.tag_song`` then ``transforms.quality.stage.measure_song``) with stems from the corpus's true stems
(``--separate truth``, isolating this stage) or from a separator backend run on the
altered mix (``--separate dsp``). The structure label is the corpus's ground truth
(bpm and sections), standing in for the structure stage.

Prints one table row per (song, copy) with the measures, score, tier and flags;
then whether each measure moved the expected way on every song; then the tags
against the ground truth (gender, genre, bpm, key) and the stage's time per song.

    python benchmarks/eval_quality.py [CORPUS_DIR] [--separate truth|dsp] [--variants a,b]
        [--tags clap --tags_weights DIR]

A missing corpus is written first with ``pipeline.sample_corpus.make_sample_corpus``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schemas.records import Song, SourceInfo  # noqa: E402
from transforms.core import audio as au  # noqa: E402
from transforms.core import workdir  # noqa: E402
from transforms.core.tiers import DEFAULT_THRESHOLDS  # noqa: E402
from transforms.quality.stage import measure_song  # noqa: E402
from transforms.separate import SeparateStems  # noqa: E402
from transforms.tags import TagSongs  # noqa: E402
from transforms.tags.stage import tag_song  # noqa: E402
from transforms.tags.metadata import map_text  # noqa: E402
from transforms.core.tiers import TIER_NAMES, tier_name  # noqa: E402

SR = au.CODEC_RATE
VARIANTS = ("original", "lowpass", "clipped", "quiet", "mono", "no_vocals")
# (measure, variant, expected direction vs original): what each alteration must do
EXPECT = [("bandwidth_hz", "lowpass", "down"), ("clipping_ratio", "clipped", "up"),
          ("true_peak_dbfs", "clipped", "up"), ("loudness_lufs", "quiet", "down"),
          ("stereo_width", "mono", "down"), ("fake_stereo", "mono", "true"),
          ("vocal_presence", "no_vocals", "down"), ("pure_music", "no_vocals", "true"),
          ("musicality_score", "lowpass", "down"), ("musicality_score", "clipped", "down"),
          ("musicality_score", "quiet", "down"), ("tier", "clipped", "down"), ("tier", "lowpass", "down")]


def lowpass(x: np.ndarray, hz: float) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(8, hz, fs=SR, output="sos"), x, axis=-1).astype(np.float32)


def altered(name: str, mix: np.ndarray, voc: np.ndarray, acc: np.ndarray):
    """(mix, vocals, accompaniment) of one altered copy; stems change with the mix."""
    if name == "original":
        return mix, voc, acc
    if name == "lowpass":
        return lowpass(mix, 4000), lowpass(voc, 4000), lowpass(acc, 4000)
    if name == "clipped":
        return np.clip(mix * 8.0, -1, 1), voc * 8.0, acc * 8.0
    if name == "quiet":
        g = 10 ** (-30 / 20)
        return mix * g, voc * g, acc * g
    if name == "mono":
        return np.repeat(mix.mean(axis=0, keepdims=True), 2, axis=0), voc, acc
    if name == "no_vocals":
        return acc, np.zeros_like(voc), acc
    raise ValueError(name)


def load_corpus(corpus: str) -> dict:
    path = os.path.join(corpus, "ground_truth.json")
    if not os.path.exists(path):
        from pipeline.sample_corpus import make_sample_corpus

        print(f"writing the sample corpus to {corpus} ...", flush=True)
        make_sample_corpus(corpus, n_songs=5, seed=0, bad_files=False)
    with open(path) as f:
        return json.load(f)


def decode(path: str):
    from transforms.decode import decode_bytes, read_file_tags

    data = open(path, "rb").read()
    audio, sr, container, codec, _ = decode_bytes(data, path)
    src = SourceInfo(uri=path, container=container, codec=codec, sample_rate=sr, channels=audio.shape[0],
                     duration=audio.shape[1] / sr, file_tags=read_file_tags(data))
    return au.to_stereo(au.resample(audio, sr, SR)), src


def truth_stem(corpus: str, info: dict, stem: str, n: int) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(os.path.join(corpus, info["truth_stems"][stem]), dtype="float32", always_2d=True)
    x = au.to_stereo(au.resample(x.T, sr, SR))
    return np.pad(x, ((0, 0), (0, max(0, n - x.shape[1]))))[:, :n]


def make_song(work: str, sid: str, mix, voc, acc, src: SourceInfo, info: dict, separator) -> Song:
    song = Song(uri=src.uri, song_id=sid, source=src, duration=mix.shape[1] / SR)
    song.audio["mix"] = workdir.save_audio(workdir.song_uri(work, sid, "mix"), mix, SR)
    song.audio["mix16k"] = workdir.save_audio(workdir.song_uri(work, sid, "mix16k"),
                                              au.resample(au.to_mono(mix), SR, au.ASR_RATE), au.ASR_RATE)
    if separator is None:
        song.audio["vocals"] = workdir.save_audio(workdir.song_uri(work, sid, "vocals"), voc, SR)
        song.audio["accompaniment"] = workdir.save_audio(workdir.song_uri(work, sid, "accompaniment"), acc, SR)
    else:
        from transforms.separate.stage import separate_song

        uris, _ = separate_song(separator, song.audio["mix"], work, sid)
        song.audio.update(uris)
    song.labels["structure"] = {"bpm": info["bpm"], "sections": info.get("sections", [])}
    return song


def fmt(v, spec=".3g"):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", nargs="?", default=os.path.join(tempfile.gettempdir(), "songshard_corpus"))
    p.add_argument("--separate", default="truth", help="truth (the corpus's true stems) | dsp | demucs")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--tags", default="dsp", help="dsp | clap (then --tags_weights)")
    p.add_argument("--tags_weights", default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    truth = load_corpus(args.corpus)
    variants = [v for v in args.variants.split(",") if v]
    tagger = TagSongs.make_backend(args.tags, {"weights": args.tags_weights})
    tagger.check()
    tagger.load()
    separator = None
    if args.separate != "truth":
        separator = SeparateStems.make_backend(args.separate, {})
        separator.load()
    rows, tags_rows, times = {}, [], []
    cols = ("loudness_lufs", "true_peak_dbfs", "clipping_ratio", "bandwidth_hz", "silence_ratio", "stereo_width",
            "fake_stereo", "vocal_presence", "pure_music", "vocal_leakage_db", "stem_overlap", "musicality_score")
    heads = ("LUFS", "TP dB", "clip", "BW Hz", "silence", "width", "fake", "vocal", "pure", "leak dB", "overlap",
             "score")
    print(f"corpus {args.corpus}: {len(truth['songs'])} songs; stems: {args.separate}; tagger: {args.tags}; "
          f"tiers {DEFAULT_THRESHOLDS}")
    print(f"{'song':<18} {'copy':<10} " + " ".join(f"{h:>8}" for h in heads) + "  tier")
    with tempfile.TemporaryDirectory() as work:
        for name, info in sorted(truth["songs"].items()):
            mix, src = decode(os.path.join(args.corpus, info["file"]))
            src.sidecar = {}
            side = os.path.join(args.corpus, name + ".json")
            if os.path.exists(side):
                src.sidecar = json.load(open(side))
            voc = truth_stem(args.corpus, info, "vocals", mix.shape[1])
            acc = truth_stem(args.corpus, info, "accompaniment", mix.shape[1])
            for variant in variants:
                m, v, a = altered(variant, mix, voc, acc)
                song = make_song(work, f"{name}_{variant}", m, v, a, src, info, separator)
                start = time.time()
                tags = tag_song(song, tagger)
                song.set_label("tags", tags)
                q = measure_song(song, DEFAULT_THRESHOLDS)
                q["vocal_presence"] = tags["vocals"]["stem_presence"]
                times.append((time.time() - start, song.duration))
                rows[(name, variant)] = q
                print(f"{name[:18]:<18} {variant:<10} " + " ".join(f"{fmt(q[c]):>8}" for c in cols)
                      + f"  {q['musicality']}", flush=True)
                if variant == "original":
                    tags_rows.append((name, info, tags))
    print("\nexpected moves (altered copy vs original), songs where it held:")
    for measure, variant, direction in EXPECT:
        if variant not in variants or "original" not in variants:
            continue
        held = 0
        for name in truth["songs"]:
            a, b = rows[(name, "original")], rows[(name, variant)]
            if measure == "tier":
                ok = TIER_NAMES.index(tier_name(b["musicality"])) > TIER_NAMES.index(tier_name(a["musicality"]))
            elif direction == "true":
                ok = bool(b[measure]) and not bool(a[measure])
            else:
                ok = (b[measure] < a[measure]) if direction == "down" else (b[measure] > a[measure])
            held += int(ok)
        print(f"  {measure:<17} {variant:<10} {direction:<5} {held}/{len(truth['songs'])}")
    print("\ntags of the original songs vs ground truth:")
    print(f"{'song':<18} {'gender':>14} {'genre (truth)':>22} {'bpm':>9} {'key':>20}  descriptions")
    agree = {"gender": 0, "gender_said": 0, "genre": 0, "key": 0}
    for name, info, tags in tags_rows:
        d = tags["descriptors"]
        key = f"{d.get('key', '')} {d.get('mode', '')}".strip() or "-"
        truth_key = str(info.get("key", ""))
        said = tags["gender"]
        agree["gender_said"] += int(bool(said))
        agree["gender"] += int(said == info.get("gender"))
        agree["genre"] += int(bool(tags["genres"]) and tags["genres"] == map_text(str(info.get("genre", "")), "genre")[0])
        agree["key"] += int(key.lower() == truth_key.lower())
        print(f"{name[:18]:<18} {(said or '-') + '/' + str(info.get('gender')):>14} "
              f"{(','.join(tags['genres']) or '-') + ' (' + str(info.get('genre')) + ')':>22} "
              f"{str(tags['bpm']) + '/' + str(round(info['bpm'])):>9} {key + '/' + truth_key:>20}  "
              f"{tags['descriptions']}  [f0 {d['pitch'].get('median_f0_hz')} Hz]")
    n = len(tags_rows)
    print(f"\ngender said on {agree['gender_said']}/{n}, right on {agree['gender']}/{n}; "
          f"genre from metadata right on {agree['genre']}/{n}; key+mode right on {agree['key']}/{n}")
    total = sum(t for t, _ in times)
    audio = sum(d for _, d in times)
    print(f"stage time: {total:.1f} s for {audio:.0f} s of audio ({total / max(audio, 1e-9) * 60:.2f} s per minute "
          f"of audio, {len(times)} songs, {os.environ.get('OMP_NUM_THREADS')} thread(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
