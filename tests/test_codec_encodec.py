"""The EnCodec adapter, for real: randomly initialised EncodecModel checkpoints saved to a folder
and loaded through ``--tokens_weights`` as a user would point it at facebook/encodec_24khz."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synth_mix, stage
from transforms.core.stage import BackendUnavailable
from transforms.tokens import EncodeTokens, frames
from conftest import make_backend

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _save(folder, **config):
    torch.manual_seed(0)
    model = transformers.EncodecModel(transformers.EncodecConfig(**config))
    model.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    """The 24 kHz EnCodec architecture (default config: 14.9 M parameters), random weights."""
    torch.set_num_threads(1)
    return _save(tmp_path_factory.mktemp("encodec_24khz"))


def test_missing_checkpoint_names_where_it_looked(tmp_path):
    backend = make_backend(EncodeTokens, "encodec", {"weights": str(tmp_path / "nothing")})
    with pytest.raises(BackendUnavailable, match="found no checkpoint at .*nothing.*config.json"):
        backend.check()
    with pytest.raises(BackendUnavailable, match="no --tokens_weights"):
        make_backend(EncodeTokens, "encodec", {}).check()


def test_real_architecture_encodes_at_25_hz_and_decodes(real_checkpoint):
    backend = make_backend(EncodeTokens, "encodec", {"weights": real_checkpoint})
    backend.check()
    backend.load()
    mix, _, _ = synth_mix(2.5, seed=3)
    ids = backend.encode(mix)
    assert ids.shape == (frames.num_frames(2.5),)
    assert 0 <= ids.min() and ids.max() < 1024 == backend.codebook_size
    info = backend.info()
    assert info["native_frame_rate"] == 75.0 and info["n_q"] == 1 and "decimated 75 Hz" in info["frame_mapping"]
    prov = backend.provenance()
    assert len(prov.weights_sha256) == 64 and prov.weights == real_checkpoint

    # the 25 Hz ids are every third native frame of the first codebook
    window = frames.windows(frames.peak_normalise(mix)[0])[0][0]
    x = torch.from_numpy(backend._to_model_input(window))[None]
    with torch.inference_mode():
        native = backend.model.encode(x, bandwidth=1.5).audio_codes[0, 0, 0].numpy()
    assert native.shape == (3000,)
    assert np.array_equal(ids, native[0:3 * ids.shape[0]:3])

    audio, sr = backend.decode(ids)
    assert sr == 48000 and audio.shape[0] == 2
    assert abs(audio.shape[1] - ids.shape[0] * 3 * 320 * 2) <= 2 * 320
    assert np.isfinite(audio).all()


def test_stage_with_encodec(make_song, tmp_path):
    """EncodeTokens through a smaller EnCodec of the same class (the stage's path, kept fast)."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from transforms.tokens.stage import EncodeTokens

    folder = _save(tmp_path / "small", num_filters=4, hidden_size=16, codebook_dim=16, num_lstm_layers=1)
    transform = stage(EncodeTokens, tmp_path / "work", tokens="encodec", tokens_weights=folder)
    song = make_song(duration=3.0, seed=7, with_stems=True)
    with TestPipeline() as p:
        songs, failed = p | beam.Create([song]) | transform
        assert_that(songs | beam.Map(lambda s: (s.tokens["tokens"].shape, str(s.tokens["tokens"].dtype),
                                                s.tokens["prompt"].shape, s.labels["tokens"]["codec"],
                                                s.labels["tokens"]["native_frame_rate"],
                                                s.provenance["tokens"]["backend"])),
                    equal_to([((3, 76), "uint16", (3, 76), "encodec", 75.0, "encodec")]))
        assert_that(failed, equal_to([]), label="no failures")
