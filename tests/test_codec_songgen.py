"""The SongGeneration tokenizer adapter.

SongGeneration's code is not installable here and its weights cannot be fetched,
so the adapter's real model path cannot run in this test suite. What is tested:
the errors a user gets, the checkpoint layout it expects, and its glue against
a stand-in ``codeclm`` package that has the public API's signatures
(``AudioTokenizer.get_pretrained(name, vae_config, vae_model, device, mode, tango_device)``,
``encode(x) -> (codes [B, 1, T], None)``, ``encode(vocal, bgm) -> (codes, codes)``) and
records how it was called. It stands in for upstream code, not for a songshard feature.
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from conftest import synth_mix
from transforms.core.stage import BackendUnavailable
from transforms.tokens import EncodeTokens, frames, songgen_backend
from conftest import make_backend

STUB = '''
import torch

CALLS = []


class _Tok:
    def __init__(self, name, kwargs):
        self.name = name
        self.kwargs = kwargs

    def eval(self):
        return self

    def _codes(self, x, offset):
        assert x.ndim == 3 and x.shape[1] == 2 and x.dtype == torch.float32
        n = int(x.shape[-1] / 48000 * 25) + 1
        return (torch.arange(n + 5) % 100 + offset)[None, None, :]  # upstream cuts to n; be lax here

    def encode(self, x, bgm=None):
        CALLS.append((self.name, tuple(x.shape), None if bgm is None else tuple(bgm.shape)))
        if bgm is None:
            return self._codes(x, 0), None
        return self._codes(x, 100), self._codes(bgm, 200)


class AudioTokenizer:
    @staticmethod
    def get_pretrained(name, vae_config, vae_model, device="cpu", mode="extract", tango_device="cuda"):
        CALLS.append(("get_pretrained", name, vae_config, vae_model, device, tango_device))
        return _Tok(name.split("_")[0], dict(vae_config=vae_config))
'''


def _ckpt(folder):
    for rel in songgen_backend.LAYOUT.values():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    return str(folder)


def test_missing_checkpoint_files_are_named(tmp_path):
    backend = make_backend(EncodeTokens, "songgen", {"weights": str(tmp_path)})
    with pytest.raises(BackendUnavailable, match="model_1rvq/model_2_fixed.safetensors"):
        backend.check()


def test_missing_code_names_the_module_it_tried(tmp_path):
    backend = make_backend(EncodeTokens, "songgen", {"weights": _ckpt(tmp_path / "ckpt"),
                                                 "code_dir": str(tmp_path / "SongGeneration")})
    with pytest.raises(BackendUnavailable, match=r"codeclm\.tokenizer\.audio_tokenizer.*Flow1dVAE"):
        backend.check()
    assert str(tmp_path / "SongGeneration") not in sys.path  # a failed import leaves sys.path as it was


@pytest.fixture
def stub_checkout(tmp_path):
    pytest.importorskip("torch")
    code = tmp_path / "SongGeneration"
    pkg = code / "codeclm" / "tokenizer"
    pkg.mkdir(parents=True)
    (code / "codeclm" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "audio_tokenizer.py").write_text(textwrap.dedent(STUB))
    yield str(code)
    for name in [m for m in sys.modules if m == "codeclm" or m.startswith("codeclm.")]:
        del sys.modules[name]
    for path in songgen_backend.code_paths(str(code)):
        while path in sys.path:
            sys.path.remove(path)


def test_adapter_calls_the_public_tokenizer_api(tmp_path, stub_checkout):
    ckpt = _ckpt(tmp_path / "ckpt")
    backend = make_backend(EncodeTokens, "songgen", {"weights": ckpt, "code_dir": stub_checkout})
    backend.check()
    backend.load()
    calls = sys.modules["codeclm.tokenizer.audio_tokenizer"].CALLS
    assert calls[0][1] == "Flow1dVAE1rvq_" + str(tmp_path / "ckpt" / "model_1rvq" / "model_2_fixed.safetensors")
    assert calls[1][1] == "Flow1dVAESeparate_" + str(tmp_path / "ckpt" / "model_septoken" / "model_2.safetensors")
    assert calls[0][2].endswith("vae/stable_audio_1920_vae.json")
    assert calls[0][3].endswith("vae/autoencoder_music_1320k.ckpt")
    assert len(backend.provenance().weights_sha256) == 64

    mix, voc, acc = synth_mix(2.0)
    ids = backend.encode_streams({"mixed": mix, "vocal": voc, "accompaniment": acc})
    n = frames.num_frames(2.0)
    assert {k: v.shape for k, v in ids.items()} == {"mixed": (n,), "vocal": (n,), "accompaniment": (n,)}
    assert ids["vocal"][0] == 100 and ids["accompaniment"][0] == 200  # the pair goes through the separate tokenizer
    assert calls[-2] == ("Flow1dVAE1rvq", (1, 2, 96000), None)
    assert calls[-1] == ("Flow1dVAESeparate", (1, 2, 96000), (1, 2, 96000))
    with pytest.raises(ValueError, match="vocal with accompaniment"):
        backend.encode_streams({"vocal": voc})
    assert backend.codebook_size == 16384 and backend.info()["native_frame_rate"] == 25.0
    assert np.issubdtype(ids["mixed"].dtype, np.integer)
