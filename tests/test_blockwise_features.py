"""Features computed a block of frames at a time equal the whole-signal computations they replace."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.core import spectral

SR = 22050


def signal(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Two tones, noise and a click every half second: pitched, noisy and percussive frames."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    clicks = np.exp(-(t % 0.5) / 0.01) * rng.uniform(-1, 1, t.size)
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 331 * t) + 0.05 * rng.standard_normal(t.size)
    return (y + 0.3 * clicks).astype(np.float32)


# shorter than one STFT frame, under one block, and several blocks with a partial last one
LENGTHS = [1500, SR * 3 + 17, int(SR * 30.5)]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 200 frames, so every length above spans block edges."""
    monkeypatch.setattr(spectral, "BLOCK_FRAMES", 200)


@pytest.mark.parametrize("n", LENGTHS)
def test_onset_mfcc_chroma_rms_equal_librosa_s(n):
    import librosa

    y = signal(n / SR)
    full, low = spectral.onset_strengths(y, SR, 512, [{}, {"fmax": 180.0, "n_mels": 32}])
    np.testing.assert_array_equal(full, librosa.onset.onset_strength(y=y, sr=SR, hop_length=512))
    np.testing.assert_array_equal(low, librosa.onset.onset_strength(y=y, sr=SR, hop_length=512, fmax=180.0,
                                                                     n_mels=32))
    np.testing.assert_allclose(spectral.mfcc(y, SR, 512, 13), librosa.feature.mfcc(y=y, sr=SR, hop_length=512,
                                                                                   n_mfcc=13), atol=1e-4)
    np.testing.assert_array_equal(spectral.chroma(y, SR, 512), librosa.feature.chroma_stft(y=y, sr=SR, hop_length=512))
    np.testing.assert_allclose(spectral.rms(y, 512), librosa.feature.rms(y=y, hop_length=512), rtol=1e-5, atol=1e-9)


def test_tuning_centroid_rolloff_and_key_chroma_equal_librosa_s():
    import librosa

    y = signal(20.0, sr=16000, seed=1)
    power = np.abs(librosa.stft(y, n_fft=4096, hop_length=2048)) ** 2
    assert spectral.tuning(y, 16000, 2048, n_fft=4096) == librosa.estimate_tuning(S=power, sr=16000, n_fft=4096)
    np.testing.assert_array_equal(spectral.chroma(y, 16000, 2048, n_fft=4096),
                                  librosa.feature.chroma_stft(y=y, sr=16000, n_fft=4096, hop_length=2048))
    cent, roll = spectral.centroid_rolloff(y, 16000, 2048, 512)
    np.testing.assert_array_equal(cent, librosa.feature.spectral_centroid(y=y, sr=16000, hop_length=512)[0])
    np.testing.assert_array_equal(roll, librosa.feature.spectral_rolloff(y=y, sr=16000, hop_length=512)[0])


def test_musicnn_log_mel_equals_the_whole_signal_melspectrogram():
    import librosa

    from transforms.core.musicnn import features

    y = signal(10.0, sr=16000, seed=2)
    whole = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    np.testing.assert_array_equal(features.log_mel(y), features.compress(whole))


@pytest.mark.parametrize("seconds", [0.05, 3.0, 50.0])
def test_whisper_features_equal_faster_whisper_s(seconds, monkeypatch):
    from faster_whisper.feature_extractor import FeatureExtractor

    from transforms.lyrics import whisper_features

    monkeypatch.setattr(whisper_features, "BLOCK_FRAMES", 700)
    y = signal(seconds, sr=16000, seed=3)
    ours = whisper_features.BlockwiseFeatureExtractor(feature_size=80)
    np.testing.assert_array_equal(ours(y), FeatureExtractor(feature_size=80)(y))
    np.testing.assert_array_equal(ours(y, chunk_length=30), FeatureExtractor(feature_size=80)(y, chunk_length=30))
    assert ours.nb_max_frames == 3000
    with pytest.raises(ValueError, match="mono"):
        ours(np.stack([y, y]))


def test_whisper_install_keeps_the_model_s_settings():
    from faster_whisper.feature_extractor import FeatureExtractor

    from transforms.lyrics import whisper_features

    class Model:
        feature_extractor = FeatureExtractor(feature_size=128, chunk_length=20)

    model = Model()
    whisper_features.install(model)
    fe = model.feature_extractor
    assert isinstance(fe, whisper_features.BlockwiseFeatureExtractor)
    assert fe.mel_filters.shape == (128, 201) and fe.chunk_length == 20 and fe.n_fft == 400


def test_beatnet_features_and_activations_do_not_depend_on_the_block_size(monkeypatch):
    import torch

    from transforms.structure import beatnet

    y = signal(12.0, seed=4)  # 600 frames
    feats = beatnet.features(y)
    torch.manual_seed(0)
    net = beatnet.build_network().eval()
    act = beatnet.activations(net, feats)
    monkeypatch.setattr(beatnet, "BLOCK_FRAMES", 128)  # several blocks, a partial last one
    np.testing.assert_array_equal(beatnet.features(y), feats)
    np.testing.assert_allclose(beatnet.activations(net, feats), act, rtol=0, atol=1e-6)
    assert feats.shape == (600, beatnet.N_FEATURES) and act.shape == (600, 2)
