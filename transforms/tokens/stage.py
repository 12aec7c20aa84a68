"""Codec tokens stage: separated songs in; songs with ``tokens`` [3, T] and ``prompt`` [3, T'] out.

In: songs whose ``audio`` holds "mix", "vocals" and "accompaniment" (48 kHz
stereo work-dir arrays). Out: ``song.tokens["tokens"]`` (rows: mixed, vocal,
accompaniment; ``T = int(duration * 25) + 1``), ``song.tokens["prompt"]`` (the
same for the 10 s reference prompt: 20-30 s into songs of at least 30 s, else
the first 10 s), both in the smallest unsigned dtype holding the codebook and
the pad id 16385 (uint16 for 16384 codes), and ``labels["tokens"]``.
Failures (a missing stem, an unreadable array, a codec error) become dead letters.

The codec is chosen with ``--tokens`` (see ``transforms.tokens``). The default
``kmeans`` reads a codebook fitted beforehand by ``songshard fit-codec``
(``transforms.tokens.fit``) or, on a first run with none to hand, the embedded
default codebook shipped with songshard.
"""

from __future__ import annotations

import logging
import numpy as np
from apache_beam.utils import shared

from schemas.records import Song
from transforms.core import audio as au
from transforms.core import workdir
from transforms.core.config import StageConfig
from transforms.core.stage import StageFn, StageTransform
from transforms.tokens import frames, streaming
from transforms.tokens.kmeans import EMBEDDED_CODEBOOK

log = logging.getLogger("songshard")

STAGE = "tokens"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "kmeans": "transforms.tokens.kmeans:KMeansCodec",
    "encodec": "transforms.tokens.encodec_backend:EncodecCodec",
    "songgen": "transforms.tokens.songgen_backend:SongGenCodec",
}

STREAMS = {"mixed": "mix", "vocal": "vocals", "accompaniment": "accompaniment"}  # row -> song.audio key


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

    def apply(self, song: Song) -> Song:
        backend = self.backend
        missing = [STREAMS[n] for n in STREAMS if STREAMS[n] not in song.audio]
        if missing:
            load_streams(song)  # raises, naming what the song lacks
        length = streaming.fitted_length(song.audio["mix"])
        size = int(backend.codebook_size)
        dtype = frames.token_dtype(size)
        if streaming.streams_in_windows(backend, length):  # a long song: window by window from the files
            num_samples = length
            ids = {name: streaming.encode_file(backend, song.audio[STREAMS[name]], length) for name in STREAMS}
            start, end = frames.prompt_window(num_samples / float(frames.SAMPLE_RATE))
            prompt_streams = {name: streaming.read_clip(song.audio[STREAMS[name]], length, start, end)
                              for name in STREAMS}
        else:
            streams = load_streams(song)
            num_samples = streams["mixed"].shape[-1]
            start, end = frames.prompt_window(num_samples / float(frames.SAMPLE_RATE))
            prompt_streams = {k: frames.clip(v, start, end) for k, v in streams.items()}
            ids = backend.encode_streams(streams)
            del streams
        total = frames.frames_for_samples(num_samples)
        tokens = self._stack(ids, total, size, dtype)
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


class EncodeTokens(StageTransform):
    """Songs with mix, vocal and accompaniment audio -> (songs with tokens, dead letters).

    ``--tokens`` picks the codec (see ``BACKENDS``). The kmeans codec only reads a
    codebook, never fits one in the main job (no barrier: every song goes through
    on its own): ``--tokens_weights``, else OUT/codec/codebook.npz, else the
    embedded default. ``songshard fit-codec`` fits one for a corpus. Other codecs
    load ``--tokens_weights`` in each worker.
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

    @classmethod
    def configure(cls, values) -> StageConfig:
        """As every stage, plus: an explicit kmeans ``--tokens_weights`` must name an existing codebook."""
        config = super().configure(values)
        path = config.backend_params.get("weights")
        if config.backend == "kmeans" and path and not workdir.exists(path):
            raise ValueError(f"--tokens_weights {path}: no such codebook; make one with "
                             "`songshard fit-codec --input SONGS --output CODEBOOK.npz`")
        return config

    def effective_config(self) -> StageConfig:
        """The configured codec; kmeans without ``--tokens_weights`` reads OUT/codec/codebook.npz when
        it exists (``songshard fit-codec`` writes it), else the embedded default codebook."""
        params = self.config.backend_params
        if self.config.backend == "kmeans" and not params.get("weights"):
            fitted = default_codebook_uri(self.context.output)
            params["weights"] = fitted if workdir.exists(fitted) else EMBEDDED_CODEBOOK
        return StageConfig.make(self.stage, self.config.backend, params, self.config.params)

    def make_fn(self):
        config = self.effective_config()
        return self.fn_class(config, self.context, self.backends[config.backend], shared.Shared())
