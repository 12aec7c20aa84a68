"""SongGeneration's own tokenizers, when their code and checkpoints are present.

The public SongGeneration (LeVo) code is not a pip package and its tokenizer
weights are not downloadable from here, so this adapter imports it from a local
checkout and loads a local checkpoint folder:

* ``--tokens_code_dir``: a SongGeneration checkout. It is put on ``sys.path``
  together with ``codeclm/tokenizer`` and ``codeclm/tokenizer/Flow1dVAE`` (the
  folders the upstream code imports from, as its README's PYTHONPATH does).
  Without it, ``codeclm`` must already be importable.
* ``--tokens_weights``: the upstream ``ckpt`` folder, laid out as upstream ships it::

      model_1rvq/model_2_fixed.safetensors      mixed tokens (Flow1dVAE1rvq)
      model_septoken/model_2.safetensors        vocal + accompaniment tokens (Flow1dVAESeparate)
      vae/stable_audio_1920_vae.json
      vae/autoencoder_music_1320k.ckpt

It calls ``codeclm.tokenizer.audio_tokenizer.AudioTokenizer.get_pretrained``
with the names upstream's configs use (``Flow1dVAE1rvq_PATH`` and
``Flow1dVAESeparate_PATH``); ``encode(mix)`` gives the mixed row and
``encode(vocals, accompaniment)`` the other two. Upstream's ``sound2code``
applies the 40 s windows, the 0.8 peak limit and the ``int(d * 25) + 1`` frame
count itself, at 25 Hz natively; songshard only checks the length.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Dict

import numpy as np

from schemas.records import Provenance
from transforms.core.stage import BackendUnavailable
from transforms.core.weights import files_sha256
from transforms.tokens import frames
from transforms.tokens.backend import CodecBackend

TOKENIZER_MODULE = "codeclm.tokenizer.audio_tokenizer"
LAYOUT = {
    "mixed": "model_1rvq/model_2_fixed.safetensors",
    "separate": "model_septoken/model_2.safetensors",
    "vae_config": "vae/stable_audio_1920_vae.json",
    "vae_model": "vae/autoencoder_music_1320k.ckpt",
}
VERSION = "SongGeneration codeclm tokenizers (1rvq + septoken)"
CODE_SUBDIRS = ("", "codeclm/tokenizer", "codeclm/tokenizer/Flow1dVAE")


def checkpoint_paths(folder: str) -> Dict[str, str]:
    """{role: path} of the upstream checkpoint files inside ``folder``."""
    return {role: os.path.join(folder, rel) for role, rel in LAYOUT.items()}


def missing_files(folder: str) -> list:
    return [p for p in checkpoint_paths(folder).values() if not os.path.isfile(p)]


def code_paths(code_dir: str) -> list:
    return [os.path.join(code_dir, sub) if sub else code_dir for sub in CODE_SUBDIRS]


def import_tokenizer_module(code_dir: str = ""):
    """Import upstream's tokenizer module, with ``code_dir``'s folders on sys.path first.

    Raises BackendUnavailable naming the module and the folders it tried.
    """
    added = []
    if code_dir:
        for path in reversed(code_paths(code_dir)):
            if path not in sys.path:
                sys.path.insert(0, path)
                added.append(path)
    try:
        return importlib.import_module(TOKENIZER_MODULE)
    except ImportError as exc:
        for path in added:
            sys.path.remove(path)
        where = f"with {code_paths(code_dir)} on sys.path" if code_dir else "(no --tokens_code_dir given)"
        raise BackendUnavailable(
            f"codec 'songgen' could not import {TOKENIZER_MODULE} {where}: {exc}. Pass "
            "--tokens_code_dir pointing at a SongGeneration checkout (its codeclm/ folder and "
            "requirements installed)") from exc


class SongGenCodec(CodecBackend):
    """Options: ``weights`` (upstream ckpt folder), ``codec_code_dir`` (checkout), ``codec_device``."""

    name = "songgen"
    native_frame_rate = 25.0

    def __init__(self, params):
        super().__init__(params)
        self.path = self.params.get("weights") or ""
        self.code_dir = self.params.get("code_dir") or ""
        self.device = self.params.get("device") or "cpu"
        self.mixed = None
        self.separate = None
        self.sha256 = ""

    def check(self) -> None:
        missing = missing_files(self.path) if self.path else list(LAYOUT.values())
        if missing:
            raise BackendUnavailable(
                f"codec 'songgen' needs --tokens_weights pointing at SongGeneration's ckpt folder; "
                f"looked in {self.path or '(none given)'} and missed {missing}")
        import_tokenizer_module(self.code_dir)

    def load(self) -> None:
        self.check()
        module = import_tokenizer_module(self.code_dir)
        paths = checkpoint_paths(self.path)
        build = module.AudioTokenizer.get_pretrained
        kwargs = dict(vae_config=paths["vae_config"], vae_model=paths["vae_model"],
                      device=self.device, tango_device=self.device)
        self.mixed = build("Flow1dVAE1rvq_" + paths["mixed"], **kwargs).eval()
        self.separate = build("Flow1dVAESeparate_" + paths["separate"], **kwargs).eval()
        self.sha256 = files_sha256([paths[k] for k in ("mixed", "separate", "vae_config", "vae_model")])
        import torch

        if int(self.params.get("threads") or 0) > 0:
            torch.set_num_threads(int(self.params["threads"]))
        self._torch = torch

    @property
    def codebook_size(self) -> int:
        return frames.CODEBOOK_SIZE

    def _ids(self, codes, num_samples: int) -> np.ndarray:
        ids = np.asarray(codes.detach().cpu().numpy()).reshape(-1).astype(np.int64)
        want = frames.frames_for_samples(num_samples)
        if ids.shape[0] < want:
            raise ValueError(f"SongGeneration tokenizer gave {ids.shape[0]} frames, expected {want}")
        return ids[:want]

    def encode_streams(self, streams: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        torch = self._torch

        def tensor(audio):
            return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.device)

        out = {}
        with torch.inference_mode():
            if "mixed" in streams:
                codes, _ = self.mixed.encode(tensor(streams["mixed"]))
                out["mixed"] = self._ids(codes, streams["mixed"].shape[-1])
            if "vocal" in streams and "accompaniment" in streams:
                vocal, accompaniment = self.separate.encode(tensor(streams["vocal"]), tensor(streams["accompaniment"]))
                out["vocal"] = self._ids(vocal, streams["vocal"].shape[-1])
                out["accompaniment"] = self._ids(accompaniment, streams["accompaniment"].shape[-1])
        missing = set(streams) - set(out)
        if missing:
            raise ValueError(f"songgen encodes mixed, or vocal with accompaniment; got streams {sorted(streams)}")
        return out

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return self.encode_streams({"mixed": audio})["mixed"]

    def info(self) -> dict:
        return {**super().info(), "tokenizers": ["Flow1dVAE1rvq", "Flow1dVAESeparate"], "version": VERSION}

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name, version=VERSION,
                          weights=self.path, weights_sha256=self.sha256,
                          licence="as published with the SongGeneration checkpoints",
                          note="SongGeneration's own tokenizers; the weights digest covers the four checkpoint files")
