"""A hand-made OUT folder for the report's tests and benchmark (no pipeline run needed).

Songs are made with the real record code (``schemas.records.Song``,
``sample_json``, ``index_row``), so the shards and index have exactly the shape a
run writes: WebDataset tars (written with ``webdataset.TarWriter``), an index
parquet under ``schemas.arrow``, failures and filtered jsonl, stats.json and
two runs/*.json. Audio is synthesised: clicks on the beat, a bass tone and a
vibrato "voice" over the verse and chorus sections.

``write_out(OUT, n_rows, shard_keys=...)`` can list many index rows but put only
some samples in the shards, so a benchmark can time a 10,000-row overview
without writing 10,000 samples.
"""

from __future__ import annotations

import io
import json
import os
from typing import Iterable, List, Optional

import numpy as np

from schemas.records import DeadLetter, Dropped, Song, SourceInfo, index_row, sample_json

GENRES = ("pop", "rock", "folk", "electronic", "jazz", "hip hop")
EMOTIONS = ("happy", "sad", "calm", "energetic", "")
TIERS = ("very-high", "high", "medium", "low", "very-low")
SPLITS = ("train",) * 8 + ("valid", "test")
LANGUAGES = ("en", "en", "en", "zh", "es")
WORDS = "the night is young and we run along hold on the sun will rise we are the light".split()
RUN_IDS = ("20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb")
SR = 48000


def _bucket(seconds: float) -> str:
    return "short" if seconds < 10 else "medium" if seconds < 20 else "long"


def _sections(duration: float) -> List[dict]:
    """intro (10 %), verse / chorus alternating, outro (10 %), tagged as the lyrics stage tags them."""
    edges = [0.0, 0.1 * duration] + [0.1 * duration + k * 0.8 * duration / 4 for k in (1, 2, 3)] + [0.9 * duration,
                                                                                                     duration]
    kinds = ["intro", "verse", "chorus", "verse", "chorus", "outro"]
    out = []
    for kind, a, b in zip(kinds, edges, edges[1:]):
        tag = f"{kind}-{_bucket(b - a)}" if kind in ("intro", "outro") else kind
        out.append({"start": round(a, 3), "end": round(b, 3), "label": kind, "tag": tag})
    return out


def _words(sections: List[dict], rng) -> List[dict]:
    words = []
    for s in sections:
        if s["label"] not in ("verse", "chorus"):
            continue
        # Draw the gaps, picks and probabilities in three vectors: per-word draws make a
        # 10,000-song index slow to synthesise.
        n = int((s["end"] - s["start"]) / 0.35) + 1
        starts = s["start"] + 0.2 + np.concatenate([[0.0], np.cumsum(rng.uniform(0.35, 0.6, n - 1))])
        ends, probs = np.round(starts + 0.3, 3).tolist(), np.round(rng.uniform(0.5, 1.0, n), 3).tolist()
        for t, e, k, p in zip(np.round(starts, 3).tolist(), ends, rng.integers(0, len(WORDS), n).tolist(), probs):
            if e >= s["end"]:
                break
            words.append({"start": t, "end": e, "text": WORDS[k], "probability": p})
    return words


def _labels(song: Song, rng, i: int) -> None:
    d = song.duration
    bpm = float(rng.choice([90.0, 100.0, 120.0, 128.0]))
    beats = np.round(np.arange(0.25, d, 60.0 / bpm), 3).tolist()
    sections = _sections(d)
    words = _words(sections, rng)
    lyric = " ; ".join(f"[{s['tag']}]" + ("" if s["label"] in ("intro", "outro") else " " + " ".join(
        w["text"] for w in words if s["start"] <= w["start"] < s["end"]) + ".") for s in sections)
    genre, emotion, gender = GENRES[i % len(GENRES)], EMOTIONS[i % len(EMOTIONS)], ("male", "female")[i % 2]
    tier = TIERS[(i // 2) % len(TIERS)]
    tag_list = [gender, genre] + ([emotion] if emotion else []) + ["piano"]
    song.set_label("structure", {"bpm": bpm, "beats": beats, "downbeats": beats[::4], "time_signature": 4,
                                 "sections": sections})
    song.set_label("lyrics", {"language": LANGUAGES[i % len(LANGUAGES)],
                              "language_probability": 0.8 + 0.19 * (i % 3) / 2,
                              "language_coverage": 1.0, "regions": [[s["start"], s["end"]] for s in sections
                                                                    if s["label"] in ("verse", "chorus")],
                              "words": words, "gt_lyric": lyric, "sections": sections})
    song.set_label("tags", {"gender": gender, "genre": genre, "emotion": emotion, "tag_list": tag_list,
                            "descriptions": ", ".join(tag_list + [f"the bpm is {int(bpm)}"])})
    song.set_label("quality", {"loudness_lufs": round(float(rng.normal(-14, 3)), 2),
                               "true_peak_dbfs": round(float(rng.uniform(-3, 0)), 3),
                               "clipping_ratio": round(float(rng.exponential(1e-4)), 6),
                               "bandwidth_hz": round(float(rng.uniform(11000, 22000)), 1),
                               "silence_ratio": round(float(rng.uniform(0, 0.1)), 4),
                               "musicality": f"[Musicality-{tier}]", "musicality_score": 0.9 - 0.15 * TIERS.index(tier),
                               "pure_music": False, "subscores": {"loudness": 1.0}})
    song.set_label("tokens", {"codec": "kmeans", "num_frames": int(d * 25) + 1,
                              "layout": ["mixed", "vocal", "accompaniment"], "frame_rate": 25.0})
    for stage in ("separate", "structure", "lyrics", "tags", "tokens"):
        song.provenance[stage] = {"backend": "dsp", "version": "1", "weights": "", "weights_sha256": "",
                                  "licence": "", "note": "synthetic"}


def synth_song(i: int, duration: Optional[float] = None, seed: int = 0) -> Song:
    """Song number ``i`` with every label a finished song carries (deterministic in i and seed)."""
    rng = np.random.default_rng([seed, i])
    d = float(duration if duration is not None else rng.uniform(60.0, 240.0))
    key = f"{i:016x}"
    uri = f"/corpus/song_{i:06d}.flac"
    song = Song(uri=uri, song_id=key, duration=round(d, 3), split=SPLITS[i % len(SPLITS)],
                artist=f"Artist {i % 97}", title=f"Song {i}",
                source=SourceInfo(uri=uri, container="flac", codec="flac", sample_rate=SR, channels=2, duration=d))
    _labels(song, rng, i)
    return song


def synth_audio(song: Song) -> dict:
    """{"mix.flac", "vocals.flac", "accompaniment.flac"}: 48 kHz stereo FLAC bytes for a synth_song."""
    import soundfile as sf

    n = int(song.duration * SR)
    t = np.arange(n) / SR
    bpm = song.labels["structure"]["bpm"]
    acc = 0.2 * np.sin(2 * np.pi * 55.0 * t) * (0.6 + 0.4 * (np.mod(t, 60.0 / bpm) < 0.08))
    f0 = 220.0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    gate = np.zeros(n)
    for a, b in song.labels["lyrics"]["regions"]:
        gate[int(a * SR):int(b * SR)] = 1.0
    voc = 0.25 * gate * sum(np.sin(h * phase) / h for h in range(1, 6))
    out = {}
    for name, x in (("mix.flac", acc + voc), ("vocals.flac", voc), ("accompaniment.flac", acc)):
        buf = io.BytesIO()
        sf.write(buf, np.stack([x, 0.9 * x], axis=1).astype(np.float32), SR, format="FLAC")
        out[name] = buf.getvalue()
    return out


def _tokens(song: Song, frames: int) -> np.ndarray:
    rng = np.random.default_rng(int(song.song_id, 16) % (2 ** 32))
    return np.cumsum(rng.integers(0, 3, size=(3, frames)), axis=1).astype(np.uint16) % 300


def _write_jsonl(path: str, records: Iterable[dict]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def _runs(out_dir: str, songs: List[Song]) -> None:
    """stats.json and two runs/*.json that differ in one backend and one option."""
    os.makedirs(os.path.join(out_dir, "runs"), exist_ok=True)
    for k, run_id in enumerate(RUN_IDS):
        stats = {"run_id": run_id, "songs_in": len(songs) + 3, "songs_skipped_already_done": 0,
                 "records_out": len(songs), "failures": 2, "filtered": 1, "hours_of_audio": 0.1,
                 "wall_time_s": 10.0, "realtime_factor": 0.3, "stages": {"decode": {"succeeded": len(songs)}},
                 "backends": {"lyrics": {"backend": "faster-whisper" if k else "whisper", "version": "1",
                                         "weights_sha256": "ab" * 32}},
                 "config": {"filter": {"backend": "", "backend_params": {},
                                       "params": {"min_duration": 60.0 if k else 30.0}},
                            "tokens": {"backend": "songgen", "params": {},
                                       "backend_params": {"code_dir": "https://example.com/songgen"}}}}
        data = json.dumps(stats, indent=2)
        with open(os.path.join(out_dir, "runs", f"{run_id}.json"), "w") as f:
            f.write(data)
        if k == len(RUN_IDS) - 1:
            with open(os.path.join(out_dir, "stats.json"), "w") as f:
                f.write(data)


def write_out(out_dir: str, n_rows: int, duration: Optional[float] = None, shard_keys: Optional[Iterable[str]] = None,
              audio: bool = True, rows_per_shard: int = 1000, seed: int = 0,
              shard_sample: Optional[int] = None) -> List[Song]:
    """Write a synthetic OUT with ``n_rows`` index rows; returns the songs.

    ``shard_keys``: keys whose samples go into the tars (None: all); ``shard_sample``: instead,
    only the stratified sample of that many that ``songshard report --sample`` would pick;
    ``audio``: add FLAC members. Also writes two dead letters (``failures/``), one dropped song
    (``filtered/``), stats and runs.
    """
    import dataclasses

    import pyarrow.parquet as pq
    import webdataset as wds

    from pipeline.report.sampling import stratified_sample
    from schemas.arrow import rows_to_table

    songs = [synth_song(i, duration, seed) for i in range(n_rows)]
    rows = [index_row(song, f"{song.split}-{i // rows_per_shard:06d}.tar", RUN_IDS[-1]) for i, song in enumerate(songs)]
    if shard_sample is not None:
        shard_keys = stratified_sample([dataclasses.asdict(r) for r in rows], shard_sample)
    wanted = None if shard_keys is None else set(shard_keys)
    by_shard: dict = {}
    for song, row in zip(songs, rows):
        if wanted is None or song.song_id in wanted:
            by_shard.setdefault(row.shard, []).append(song)
    os.makedirs(os.path.join(out_dir, "index"), exist_ok=True)
    pq.write_table(rows_to_table(rows), os.path.join(out_dir, "index", f"{RUN_IDS[-1]}.parquet"))
    for shard, members in by_shard.items():
        with wds.TarWriter(os.path.join(out_dir, shard)) as tar:
            for song in members:
                sample = {"__key__": song.song_id, "json": sample_json(song, {"run_id": RUN_IDS[-1]}),
                          "tokens.npy": _tokens(song, int(song.duration * 25) + 1), "prompt.npy": _tokens(song, 251)}
                tar.write({**sample, **(synth_audio(song) if audio else {})})
    _write_jsonl(os.path.join(out_dir, "failures", "part-0.jsonl"), [
        DeadLetter("/corpus/broken.mp3", "decode", "DecodeError", "cannot decode audio").to_dict(),
        DeadLetter("/corpus/empty.wav", "decode", "EmptyAudio", "file is empty (0 bytes)").to_dict()])
    _write_jsonl(os.path.join(out_dir, "filtered", "part-0.jsonl"), [
        Dropped("/corpus/short.wav", "00000000deadbeef", ["too_short: 21.0s < 60.0s"], 21.0).to_dict()])
    _runs(out_dir, songs)
    return songs
