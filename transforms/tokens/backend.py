"""Codec backends of the tokens stage and the one interface they share.

A codec turns 48 kHz stereo audio into int ids at 25 Hz, one stream per audio,
following the conventions in :mod:`transforms.tokens.frames`, and back into
audio where it can. Backends, chosen with ``--tokens`` (``transforms.tokens.stage.BACKENDS``):

* ``kmeans`` (default, embedded): a k-means codebook over log-mel frames learnt
  from the corpus itself (``transforms.tokens.kmeans``); not a neural codec;
* ``encodec``: EnCodec through transformers' ``EncodecModel`` from a local
  checkpoint folder (``transforms.tokens.encodec_backend``);
* ``songgen``: SongGeneration's own tokenizers, when its ``codeclm`` code and
  checkpoints are present (``transforms.tokens.songgen_backend``).

"""

from __future__ import annotations

from typing import ClassVar, Dict

import numpy as np

from transforms.core.stage import Backend
from transforms.tokens import frames



class CodecBackend(Backend):
    """audio (48 kHz stereo) -> int ids at 25 Hz, one stream per audio; ``decode`` where the codec can.

    Subclasses implement ``encode_window`` (one 40 s window -> 1000 ids) and get
    the windowing, peak normalisation and frame count from :func:`frames.encode_windowed`;
    a codec that applies these conventions itself overrides ``encode_streams``.
    ``codebook_size``, ``native_frame_rate`` and ``info()`` describe the ids.
    """

    stage: ClassVar[str] = "tokens"
    native_frame_rate: float = float(frames.FRAME_RATE)

    @property
    def codebook_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_window(self, window: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """[2, 40 s * 48 kHz] float32 -> 1000 ids."""
        raise NotImplementedError

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """[2, N] float32 at 48 kHz (capped) -> ids [int(N / 48000 * 25) + 1] (int64)."""
        return frames.encode_windowed(audio, self.encode_window).astype(np.int64)

    def encode_streams(self, streams: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """{name: [2, N] audio} -> {name: ids}; every stream encoded on its own."""
        return {name: self.encode(audio) for name, audio in streams.items()}

    def decode(self, ids: np.ndarray):
        """ids [T] at 25 Hz -> (audio [2, N] float32, sample rate). Not every codec can."""
        raise NotImplementedError(f"codec {self.name!r} has no decoder here")

    def info(self) -> dict:
        """Label fields that describe this codec's ids (JSON-able, small)."""
        return {"codec": self.name, "native_frame_rate": float(self.native_frame_rate), "n_q": 1}
