"""EnCodec from a local checkpoint, through transformers' ``EncodecModel``.

``--tokens_weights`` is a folder as written by ``EncodecModel.save_pretrained``
(``config.json`` + ``model.safetensors``), e.g. a local copy of
``facebook/encodec_24khz``. Nothing is downloaded. (The ``encodec`` pip package
is not used: it imports torchaudio, which is not part of songshard's install.)

What the ids are, honestly:

* EnCodec's native frame rate is not 25 Hz (75 Hz for the 24 kHz model). The
  native stream is decimated to the 25 Hz convention by taking, for every 25 Hz
  frame, the native frame that starts at or just before it (every third frame at
  75 Hz). The label records ``native_frame_rate``; two thirds of the frames are
  dropped, so these ids are a coarser description than the codec's own.
* One stream per audio: the first residual codebook only (``n_q`` = 1, 1024
  codes); the finer codebooks are not kept.
* The 24 kHz model is mono: the 48 kHz stereo window is mixed down and resampled
  to the model's rate first.

``decode`` repeats each id back to the native rate and decodes the first
codebook: the sound is very rough, as expected from 1 of EnCodec's codebooks.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from schemas.records import Provenance
from transforms.core import audio as au
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.tokens import frames
from transforms.tokens.backend import CodecBackend

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
LICENCE = "as published with the checkpoint (Meta's EnCodec weights: CC BY-NC 4.0)"


def weights_file(folder: str) -> str:
    """The weights file inside a checkpoint folder, or "" when there is none."""
    for name in WEIGHT_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return ""




class EncodecCodec(CodecBackend):
    """Options: ``weights`` (checkpoint folder), ``codec_device`` (cpu | cuda),
    ``codec_threads`` (torch CPU threads; 0 keeps torch's default)."""

    name = "encodec"

    def __init__(self, params):
        super().__init__(params)
        self.path = self.params.get("weights") or ""
        self.device = self.params.get("device") or "cpu"
        self.model = None
        self.sha256 = ""
        self.version = ""

    def check(self) -> None:
        if importlib.util.find_spec("transformers") is None:
            raise BackendUnavailable("codec 'encodec' needs the transformers package (pip install transformers)")
        where = self.path or "(no --tokens_weights given)"
        if not self.path or not os.path.isfile(os.path.join(self.path, "config.json")) \
                or not weights_file(self.path):
            raise BackendUnavailable(
                f"codec 'encodec' found no checkpoint at {where}: pass --tokens_weights FOLDER holding "
                f"config.json and one of {WEIGHT_FILES} (EncodecModel.save_pretrained, or a local copy "
                "of facebook/encodec_24khz); nothing is downloaded")
        self.sha256 = file_sha256(weights_file(self.path))

    def load(self) -> None:
        self.check()
        import torch
        import transformers
        from transformers import EncodecModel

        if int(self.params.get("threads") or 0) > 0:
            torch.set_num_threads(int(self.params["threads"]))
        self.model = EncodecModel.from_pretrained(self.path, local_files_only=True).to(self.device).eval()
        cfg = self.model.config
        self.native_frame_rate = float(cfg.frame_rate)
        self.bandwidth = float(min(cfg.target_bandwidths))
        self.version = f"transformers {transformers.__version__} EncodecModel {cfg.sampling_rate} Hz"
        self._torch = torch

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.codebook_size) if self.model is not None else 1024

    def _to_model_input(self, window: np.ndarray) -> np.ndarray:
        cfg = self.model.config
        audio = au.to_mono(window) if cfg.audio_channels == 1 else au.to_stereo(window)
        return au.resample(audio, frames.SAMPLE_RATE, int(cfg.sampling_rate))

    def encode_window(self, window: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy(self._to_model_input(window))[None].to(self.device)
        with torch.inference_mode():
            out = self.model.encode(x, bandwidth=self.bandwidth)
        codes = out.audio_codes  # [chunks, batch, n_q, frames] (chunked models give several chunks)
        first = codes[:, 0, 0, :].reshape(-1).cpu().numpy().astype(np.int64)
        return frames.resample_ids(first, frames.WINDOW_FRAMES)

    def decode(self, ids: np.ndarray):
        cfg = self.model.config
        if cfg.chunk_length_s:
            raise NotImplementedError("decode is implemented for unchunked EnCodec models (24 kHz) only")
        torch = self._torch
        ratio = max(1, int(round(self.native_frame_rate / frames.FRAME_RATE)))
        native = np.repeat(np.asarray(ids, dtype=np.int64), ratio)
        codes = torch.from_numpy(native)[None, None, None, :].to(self.device)
        with torch.inference_mode():
            audio = self.model.decode(codes, [None]).audio_values[0].cpu().numpy()
        return au.to_stereo(au.resample(audio, int(cfg.sampling_rate), frames.SAMPLE_RATE)), frames.SAMPLE_RATE

    def info(self) -> dict:
        cfg = self.model.config if self.model is not None else None
        return {**super().info(), "native_codebook": 0,
                "native_sample_rate": int(cfg.sampling_rate) if cfg else 0,
                "frame_mapping": f"decimated {self.native_frame_rate:g} Hz -> 25 Hz "
                                 "(the native frame at or before each 25 Hz frame)",
                "version": self.version}

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name, version=self.version, weights=self.path,
                          weights_sha256=self.sha256, licence=LICENCE,
                          note="EnCodec, first RVQ codebook only, decimated to 25 Hz")
