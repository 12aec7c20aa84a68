"""Lyrics stage benchmark: WER against known lyrics and real-time factor, per ASR backend.

Runs the stage's own path (``transforms.lyrics.stage.lyrics_label``: vocal gate,
language vote, guarded decoding, formatting) on

* the sample corpus (``pipeline.sample_corpus.make_sample_corpus``, or an existing
  corpus folder with ``--corpus``): its truth vocal stems and its full mixes, scored
  against ``ground_truth.json``'s ``lyrics_text``;
* or, when no corpus is available, songs made here: espeak-ng lines over a
  synthetic accompaniment.

Backends: ``faster-whisper`` (embedded default) always; ``whisper`` when
``--whisper_model`` names a checkpoint or cached model; ``--whisper_random`` adds a
randomly initialised whisper-tiny-sized checkpoint for speed only (its WER means nothing).

    python benchmarks/bench_lyrics.py [--corpus DIR | --songs 5] [--threads 2]

Prints one row per backend and input: songs, audio seconds, WER (pooled over
all words), mean per-song WER, words out, seconds of compute, RTF = compute / audio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transforms.core import audio as au  # noqa: E402
from transforms.core.stage import BackendUnavailable  # noqa: E402
from transforms.lyrics import TranscribeLyrics  # noqa: E402
from transforms.lyrics.align import normalize_text, word_error_rate  # noqa: E402
from transforms.lyrics.stage import lyrics_label  # noqa: E402

LINES = [
    "the night is young and we run along the river",
    "hold on hold on never let me go",
    "my heart is beating like a drum calling out your name",
    "we are the dreamers of the summer sun",
    "dancing in the rain until the morning comes",
    "i walked alone through the empty streets tonight",
    "looking for a light to guide me home",
    "every star above is shining just for you",
]


def read_audio(path: str) -> Tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        return data.T, rate
    except Exception:  # noqa: BLE001 - formats soundfile lacks go through ffmpeg
        out = subprocess.run(["ffmpeg", "-v", "quiet", "-i", path, "-f", "f32le", "-ac", "1", "-ar", "16000", "-"],
                             capture_output=True, check=True)
        return np.frombuffer(out.stdout, dtype=np.float32)[None, :], 16000


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    return au.resample(au.to_mono(audio), rate, au.ASR_RATE)[0]


def corpus_items(corpus: str) -> List[dict]:
    """[{name, lyrics, vocals, mix}] from a sample corpus folder (ground_truth.json + files)."""
    with open(os.path.join(corpus, "ground_truth.json")) as f:
        truth = json.load(f)
    songs = truth.get("songs", truth) if isinstance(truth, dict) else truth
    entries = songs.items() if isinstance(songs, dict) else ((s.get("name", ""), s) for s in songs)
    items = []
    for name, info in entries:
        if not isinstance(info, dict) or not info.get("lyrics_text"):
            continue
        file_name = info.get("file") or info.get("path") or ""
        mix = os.path.join(corpus, file_name) if file_name else ""
        vocals = os.path.join(corpus, "_truth", name, "vocals.wav")
        items.append({"name": name, "lyrics": info["lyrics_text"],
                      "vocals": vocals if os.path.isfile(vocals) else "",
                      "mix": mix if os.path.isfile(mix) else ""})
    return items


def synthetic_items(n_songs: int, work: str, seed: int = 0) -> List[dict]:
    """Songs made here: 4-5 espeak-ng lines at 8 s intervals after a 10 s intro, over clicks and bass."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(n_songs):
        lines = [LINES[(k * 3 + j) % len(LINES)] for j in range(4 + k % 2)]
        duration = 10.0 + 8.0 * len(lines) + 8.0
        n = int(duration * au.ASR_RATE)
        vocals = np.zeros(n, np.float32)
        for j, line in enumerate(lines):
            wav = os.path.join(work, f"line{k}_{j}.wav")
            subprocess.run(["espeak-ng", "-s", "140", "-p", str(40 + 10 * (k % 3)), "-w", wav, line],
                           check=True, capture_output=True)
            speech, rate = read_audio(wav)
            speech = to_16k(speech, rate)[: int(7.5 * au.ASR_RATE)]
            i = int((10.0 + 8.0 * j) * au.ASR_RATE)
            vocals[i:i + speech.size] = 0.7 * speech
        t = np.arange(n) / au.ASR_RATE
        beat = (np.sin(2 * np.pi * 2.0 * t) > 0.995).astype(np.float32) * rng.standard_normal(n).astype(np.float32)
        acc = (0.15 * np.sin(2 * np.pi * 55.0 * t) + 0.1 * np.sin(2 * np.pi * 330.0 * t) + 0.3 * beat)
        items.append({"name": f"synth{k}", "lyrics": "\n".join(lines), "vocals_audio": vocals,
                      "mix_audio": (vocals + acc.astype(np.float32)) / 1.5})
    return items


def load_input(item: dict, which: str) -> Optional[np.ndarray]:
    if f"{which}_audio" in item:
        return item[f"{which}_audio"]
    path = item.get(which)
    if not path:
        return None
    audio, rate = read_audio(path)
    return to_16k(audio, rate)


def random_whisper_checkpoint(path: str) -> str:
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                           n_vocab=51865, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4)
    model = Whisper(dims)
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


def bench(name: str, backend, items: List[dict], which: str) -> Optional[Dict[str, float]]:
    refs, hyps, per_song, audio_s, compute_s, words = [], [], [], 0.0, 0.0, 0
    for item in items:
        audio = load_input(item, which)
        if audio is None:
            continue
        duration = audio.size / au.ASR_RATE
        start = time.perf_counter()
        label = lyrics_label(backend, audio, duration)
        compute_s += time.perf_counter() - start
        audio_s += duration
        hyp = " ".join(ln["text"] for ln in label["lines"])
        refs.append(" ".join(normalize_text(item["lyrics"])))
        hyps.append(" ".join(normalize_text(hyp)))
        per_song.append(word_error_rate(item["lyrics"], hyp) or 0.0)
        words += len(label["words"])
    if not refs:
        return None
    import jiwer

    pooled = float(jiwer.wer(refs, [h if h else "" for h in hyps]))
    return {"backend": name, "input": which, "songs": len(refs), "audio_s": audio_s, "wer": pooled,
            "mean_song_wer": float(np.mean(per_song)), "words": words, "compute_s": compute_s,
            "rtf": compute_s / audio_s}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=None, help="a sample corpus folder (ground_truth.json)")
    parser.add_argument("--make_corpus", action="store_true", help="build one with pipeline.sample_corpus")
    parser.add_argument("--songs", type=int, default=5)
    parser.add_argument("--song_seconds", type=float, default=70.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whisper_model", default=None, help="whisper checkpoint path or cached model name")
    parser.add_argument("--whisper_random", action="store_true", help="also time a random whisper (tiny dims)")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="bench_lyrics_")
    corpus = args.corpus
    if corpus is None and args.make_corpus:
        from pipeline.sample_corpus import make_sample_corpus

        corpus = os.path.join(work, "corpus")
        make_sample_corpus(corpus, n_songs=args.songs, seed=0, song_seconds=args.song_seconds, bad_files=False)
    if corpus:
        items, source = corpus_items(corpus), f"sample corpus {corpus}"
    else:
        items, source = synthetic_items(args.songs, work), "synthetic espeak-ng songs (no corpus given)"
    print(f"# lyrics benchmark on {len(items)} songs: {source}; threads={args.threads}")

    backends = [("faster-whisper (embedded base, int8)", "faster-whisper", {})]
    if args.whisper_model:
        backends.append((f"whisper ({args.whisper_model})", "whisper", {"model": args.whisper_model}))
    if args.whisper_random:
        path = random_whisper_checkpoint(os.path.join(work, "random-tiny.pt"))
        backends.append(("whisper (random tiny dims; speed only)", "whisper",
                         {"model": path, "sample_len": 64}))
    rows = []
    for label, name, opts in backends:
        backend = TranscribeLyrics.make_backend(name, {"threads": args.threads, **opts})
        try:
            backend.check()
        except BackendUnavailable as exc:
            print(f"{label}: unavailable: {exc}")
            continue
        start = time.perf_counter()
        backend.load()
        print(f"{label}: loaded in {time.perf_counter() - start:.1f}s")
        for which in ("vocals", "mix"):
            row = bench(label, backend, items, which)
            if row:
                rows.append(row)
    print(f"{'backend':42s} {'input':7s} {'songs':>5s} {'audio_s':>8s} {'WER':>6s} {'songWER':>7s} "
          f"{'words':>6s} {'compute_s':>9s} {'RTF':>6s}")
    for r in rows:
        print(f"{r['backend']:42s} {r['input']:7s} {r['songs']:5d} {r['audio_s']:8.1f} {r['wer']:6.3f} "
              f"{r['mean_song_wer']:7.3f} {r['words']:6d} {r['compute_s']:9.1f} {r['rtf']:6.3f}")


if __name__ == "__main__":
    main()
