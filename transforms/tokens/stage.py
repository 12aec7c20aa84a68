"""Codec tokens stage: separated songs in; songs with ``tokens`` [3, T] and ``prompt`` [3, T'] out.

In: songs whose ``audio`` holds "mix", "vocals" and "accompaniment" (48 kHz
stereo work-dir arrays). Out: ``song.tokens["tokens"]`` (rows: mixed, vocal,
accompaniment; ``T = int(duration * 25) + 1``), ``song.tokens["prompt"]`` (the
same for the 10 s reference prompt: 20-30 s into songs of at least 30 s, else
the first 10 s), both in the smallest unsigned dtype holding the codebook and
the pad id 16385 (uint16 for 16384 codes), and ``labels["tokens"]``.
Failures (a missing stem, an unreadable array, a codec error) become dead letters.

The codec is chosen with ``--tokens`` (see ``transforms.tokens``). The default
``kmeans`` learns its codebook from the corpus: when ``--tokens_weights`` names a
codebook file that exists it is reused; otherwise :class:`FitCodebook` fits one
in a first pass over the same songs (inside :class:`EncodeTokens`, or explicitly:
``codebook = songs | FitCodebook(uri)``).
"""

from __future__ import annotations

import logging
from typing import Optional

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from schemas.records import Song, stable_hash
from transforms.core import audio as au
from transforms.core import workdir
from transforms.core.config import StageConfig
from transforms.core.stage import FAILED, StageFn, StageTransform
from transforms.tokens import frames

log = logging.getLogger("songshard")

STAGE = "tokens"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "kmeans": "transforms.tokens.kmeans:KMeansCodec",
    "encodec": "transforms.tokens.encodec_backend:EncodecCodec",
    "songgen": "transforms.tokens.songgen_backend:SongGenCodec",
}

STREAMS = {"mixed": "mix", "vocal": "vocals", "accompaniment": "accompaniment"}  # row -> song.audio key
FIT_FRAMES_PER_SONG = 500
FIT_MAX_FRAMES = 64 * frames.CODEBOOK_SIZE  # frames kept for fitting, at most (about 336 MB of float32)


def default_codebook_uri(output: str) -> str:
    """Where a run keeps the kmeans codebook it learnt: OUT/codec/codebook.npz."""
    return workdir.join(output or ".", "codec", "codebook.npz")


def load_streams(song: Song, names=tuple(STREAMS)) -> dict:
    """{row name: [2, N] float32 at 48 kHz, capped at 360 s, stems fitted to the mix's length}.

    Raises ValueError naming the stems the song lacks.
    """
    missing = [STREAMS[n] for n in names if STREAMS[n] not in song.audio]
    if missing:
        raise ValueError(f"codec tokens need the audio {missing} (run the separate stage first); "
                         f"song has {sorted(song.audio)}")
    loaded = {}
    for name in names:
        audio, sr = workdir.load_audio(song.audio[STREAMS[name]])
        if sr != frames.SAMPLE_RATE:
            audio = au.resample(audio, sr, frames.SAMPLE_RATE)
        loaded[name] = audio
    return frames.fit_streams(loaded)


class TokensFn(StageFn):
    stage = STAGE

    def process(self, song: Song, codebook: Optional[str] = None):
        self._codebook = codebook
        yield from super().process(song)

    def apply(self, song: Song) -> Song:
        backend = self.backend
        if getattr(self, "_codebook", None) and hasattr(backend, "use_codebook"):
            backend.use_codebook(self._codebook)
        streams = load_streams(song)
        num_samples = streams["mixed"].shape[-1]
        total = frames.frames_for_samples(num_samples)
        duration = num_samples / float(frames.SAMPLE_RATE)
        start, end = frames.prompt_window(duration)
        prompt_streams = {k: frames.clip(v, start, end) for k, v in streams.items()}
        size = int(backend.codebook_size)
        dtype = frames.token_dtype(size)
        tokens = self._stack(backend.encode_streams(streams), total, size, dtype)
        prompt_total = frames.frames_for_samples(prompt_streams["mixed"].shape[-1])
        prompt = self._stack(backend.encode_streams(prompt_streams), prompt_total, size, dtype)
        song.tokens["tokens"] = tokens
        song.tokens["prompt"] = prompt
        label = {
            **backend.info(),
            "num_frames": int(total),
            "frame_rate": float(frames.FRAME_RATE),
            "codebook_size": size,
            "layout": list(frames.LAYOUT),
            "dtype": str(dtype),
            "pad_id": frames.PAD_ID,
            "window_seconds": frames.WINDOW_SECONDS,
            "peak_limit": frames.PEAK_LIMIT,
            "capped": bool(song.duration > frames.MAX_SECONDS + 1e-6),
            "prompt": {"start": round(start, 3), "end": round(end, 3), "num_frames": int(prompt_total)},
        }
        song.set_label("tokens", label, backend.provenance())
        return song

    @staticmethod
    def _stack(ids: dict, total: int, size: int, dtype: np.dtype) -> np.ndarray:
        rows = []
        for name in frames.LAYOUT:
            row = np.asarray(ids[name]).reshape(-1)
            if row.shape[0] != total:
                raise ValueError(f"codec gave {row.shape[0]} frames for {name}, expected {total}")
            if row.size and (row.min() < 0 or row.max() >= size):
                raise ValueError(f"codec ids of {name} outside 0..{size - 1}")
            rows.append(row)
        return np.stack(rows).astype(dtype)


class SampleFramesFn(beam.DoFn):
    """A song -> at most ``per_song`` log-mel frames [n, 80] float32 drawn from its three streams.

    A song whose audio cannot be read gives no frames (counted as ``fit_skipped``):
    the same song then fails in EncodeTokens, where it becomes a dead letter.
    """

    def __init__(self, per_song: int = FIT_FRAMES_PER_SONG):
        self.per_song = per_song

    def setup(self):
        self.skipped = Metrics.counter(STAGE, "fit_skipped")

    def process(self, song: Song):
        from transforms.tokens import kmeans

        names = [n for n in STREAMS if STREAMS[n] in song.audio]
        try:
            streams = load_streams(song, names)
        except Exception as exc:  # noqa: BLE001 - reported again as a dead letter by EncodeTokens
            self.skipped.inc()
            log.warning("tokens: no codebook frames from %s: %s", song.uri, exc)
            return
        per_stream = max(1, self.per_song // max(1, len(streams)))
        seed = int(stable_hash(song.song_id or song.uri, 8), 16)
        parts = []
        for i, audio in enumerate(streams.values()):
            normalised, _ = frames.peak_normalise(audio)
            parts.append(kmeans.sample_frames(kmeans.logmel(normalised), per_stream, seed + i))
        if parts:
            yield np.concatenate(parts).astype(np.float32)


class PoolFrames(beam.CombineFn):
    """Concatenate frame arrays, keeping at most ``cap`` rows (a seeded random subset beyond that)."""

    def __init__(self, cap: int = FIT_MAX_FRAMES, seed: int = 0):
        self.cap = cap
        self.seed = seed

    def _shrink(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] <= self.cap:
            return rows
        rng = np.random.default_rng(self.seed + rows.shape[0])
        return rows[np.sort(rng.choice(rows.shape[0], self.cap, replace=False))]

    def create_accumulator(self):
        return np.zeros((0, 0), dtype=np.float32)

    def add_input(self, acc, rows):
        return self.merge_accumulators([acc, np.asarray(rows, dtype=np.float32)])

    def merge_accumulators(self, accs):
        parts = [a for a in accs if a.size]
        return self._shrink(np.concatenate(parts)) if parts else self.create_accumulator()

    def extract_output(self, acc):
        return acc


def fit_and_save(pooled: np.ndarray, uri: str, max_size: int, seed: int = 0) -> str:
    """Fit the codebook on ``pooled`` frames and write it to ``uri``; returns ``uri``.

    An existing file at ``uri`` is kept (returned unchanged); "" when there are no frames.
    """
    from transforms.tokens import kmeans

    if workdir.exists(uri):
        return uri
    if pooled.size == 0:
        return ""
    size = kmeans.codebook_size_for(pooled.shape[0], max_size)
    centroids = kmeans.fit_codebook(pooled, size, seed)
    sha = kmeans.save_codebook(uri, centroids, pooled.shape[0])
    log.info("tokens: fitted a %d-code codebook on %d frames -> %s (sha256 %s)", size, pooled.shape[0], uri, sha)
    return uri


class FitCodebook(beam.PTransform):
    """Songs (with their audio in the work dir) -> one element: the URI of the kmeans codebook.

    Each song contributes at most ``per_song`` log-mel frames drawn from its mix
    and stems; the pooled frames (at most FIT_MAX_FRAMES) are fitted with
    ``min(max_size, frames / 8)`` centroids and written to ``uri``. A codebook
    already at that URI is reused, not refitted. An empty corpus gives "".
    """

    def __init__(self, uri: str, max_size: int = frames.CODEBOOK_SIZE, per_song: int = FIT_FRAMES_PER_SONG,
                 seed: int = 0):
        super().__init__()
        self.uri = uri
        self.max_size = int(max_size)
        self.per_song = per_song
        self.seed = seed

    def expand(self, songs):
        return (songs
                | "SampleFrames" >> beam.ParDo(SampleFramesFn(self.per_song))
                | "PoolFrames" >> beam.CombineGlobally(PoolFrames(seed=self.seed))
                | "FitAndSave" >> beam.Map(fit_and_save, self.uri, self.max_size, self.seed))


class EncodeTokens(StageTransform):
    """Songs with mix, vocal and accompaniment audio -> (songs with tokens, dead letters).

    ``--tokens`` picks the codec (see ``BACKENDS``). The kmeans codec reads its
    codebook from ``--tokens_weights`` (default OUT/codec/codebook.npz); when that
    file does not exist yet, it is fitted here first, over the same songs
    (:class:`FitCodebook`, read back as a side input). Other codecs load
    ``--tokens_weights`` in each worker.
    """

    stage = STAGE
    fn_class = TokensFn
    backends = BACKENDS
    default_backend = "kmeans"

    @classmethod
    def add_options(cls, group) -> None:
        super().add_options(group)
        group.add_argument("--tokens_weights", default=None,
                           help="kmeans: codebook .npz (default OUT/codec/codebook.npz, fitted when missing); "
                                "encodec: checkpoint folder (config.json + model.safetensors); "
                                "songgen: SongGeneration's ckpt folder")
        group.add_argument("--tokens_codebook_size", type=int, default=frames.CODEBOOK_SIZE,
                           help="kmeans: at most this many codes (fewer for small corpora: frames / 8)")
        group.add_argument("--tokens_device", default="cpu", help="cpu | cuda (encodec, songgen)")
        group.add_argument("--tokens_code_dir", default=None,
                           help="songgen: a SongGeneration checkout whose codeclm package is imported")
        group.add_argument("--tokens_threads", type=int, default=0,
                           help="encodec, songgen: torch CPU threads (0: torch's default)")

    def effective_config(self) -> StageConfig:
        """The configured codec, with the kmeans codebook's default location filled in from the run."""
        params = self.config.backend_params
        if self.config.backend == "kmeans" and not params.get("weights"):
            params["weights"] = default_codebook_uri(self.context.output)
        return StageConfig.make(self.stage, self.config.backend, params, self.config.params)

    def expand(self, pcoll):
        config = self.effective_config()
        uri = config.backend_params.get("weights")
        codebook = None
        if config.backend == "kmeans" and not workdir.exists(uri):
            size = config.backend_params.get("codebook_size") or frames.CODEBOOK_SIZE
            codebook = pcoll | "FitCodebook" >> FitCodebook(uri, size)
        fn = self.fn_class(config, self.context, self.backends[config.backend], shared.Shared())
        side = {} if codebook is None else {"codebook": beam.pvalue.AsSingleton(codebook)}
        results = pcoll | "Encode" >> beam.ParDo(fn, **side).with_outputs(FAILED, main="songs")
        return results.songs, results[FAILED]
