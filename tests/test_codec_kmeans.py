"""The embedded kmeans codec: features, fitting, the codebook file, encode and the rough decoder."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import synth_mix
from transforms.core.stage import BackendUnavailable
from transforms.tokens import frames, kmeans
from conftest import make_backend
from transforms.tokens import EncodeTokens


@pytest.fixture(scope="module")
def fitted():
    mix, voc, acc = synth_mix(12.0, seed=1)
    feats = np.concatenate([kmeans.logmel(x) for x in (mix, voc, acc)])
    return mix, kmeans.fit_codebook(feats, 48, seed=0)


def test_logmel_gives_25_hz_frames():
    mix, _, _ = synth_mix(3.0)
    feats = kmeans.logmel(mix)
    assert feats.shape == (frames.num_frames(3.0), 80)
    assert np.isfinite(feats).all()
    assert kmeans.logmel(np.zeros((2, 960), np.float32)).min() == pytest.approx(-100.0)


def test_codebook_size_is_capped_by_frames_over_8():
    assert kmeans.codebook_size_for(2500) == 312
    assert kmeans.codebook_size_for(10**7) == 16384
    assert kmeans.codebook_size_for(3) == 1
    assert kmeans.codebook_size_for(8000, max_size=100) == 100
    with pytest.raises(ValueError):
        kmeans.fit_codebook(np.zeros((5, 80), np.float32), 10)


def test_assign_picks_the_nearest_centroid():
    centroids = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    feats = np.array([[1, 1], [9, -1], [-1, 8], [6, 0]], np.float32)
    assert kmeans.assign(feats, centroids, chunk=3).tolist() == [0, 1, 2, 1]


def test_codebook_file_round_trip_and_checksum(tmp_path, fitted):
    _, centroids = fitted
    uri = str(tmp_path / "codec" / "codebook.npz")
    sha = kmeans.save_codebook(uri, centroids, fitted_frames=903)
    loaded, file_sha, n = kmeans.load_codebook(uri)
    assert np.array_equal(loaded, centroids) and n == 903
    assert file_sha == sha == hashlib.sha256(open(uri, "rb").read()).hexdigest()
    # a codebook whose centroids changed is refused
    bad = tmp_path / "bad.npz"
    with np.load(uri) as z:
        arrays = dict(z)
    arrays["centroids"] = arrays["centroids"] + 1.0
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="corrupt"):
        kmeans.load_codebook(str(bad))
    backend = make_backend(EncodeTokens, "kmeans", {"weights": str(bad)})
    with pytest.raises(BackendUnavailable, match="fit a new one with songshard fit-codec"):
        backend.check()


def test_backend_encodes_with_a_saved_codebook(tmp_path, fitted):
    mix, centroids = fitted
    uri = str(tmp_path / "codebook.npz")
    sha = kmeans.save_codebook(uri, centroids, 900)
    backend = make_backend(EncodeTokens, "kmeans", {"weights": uri})
    backend.check()
    backend.load()
    ids = backend.encode(mix)
    assert ids.shape == (frames.num_frames(12.0),)
    assert 0 <= ids.min() and ids.max() < 48 and len(np.unique(ids)) > 5
    prov = backend.provenance()
    assert prov.weights_sha256 == sha and "not a neural codec" in prov.note
    assert backend.codebook_size == 48


def test_backend_without_codebook_says_so(tmp_path):
    backend = make_backend(EncodeTokens, "kmeans", {"weights": str(tmp_path / "none.npz")})
    backend.check()  # a missing codebook is fine in the driver: it is fitted in the first pass
    backend.load()
    with pytest.raises(BackendUnavailable, match="fit one with songshard fit-codec"):
        backend.encode(np.zeros((2, 4800), np.float32))


def _logmel_distance(a, b, n):
    return float(np.mean(np.abs(kmeans.logmel(a)[:n] - kmeans.logmel(b)[:n])))


def test_decode_of_encode_is_closer_than_shuffled_codes_or_noise(fitted):
    mix, centroids = fitted
    backend = kmeans.KMeansCodec({})
    backend.centroids = centroids
    ids = backend.encode(mix)
    audio, sr = backend.decode(ids)
    assert sr == 48000 and audio.shape == (2, int(12.0 * 48000))
    shuffled, _ = backend.decode(np.random.default_rng(0).permutation(ids))
    noise = np.random.default_rng(1).standard_normal(mix.shape).astype(np.float32) * 0.1
    n = ids.shape[0]
    recon = _logmel_distance(mix, audio, n)
    assert recon < 0.6 * _logmel_distance(mix, shuffled, n)
    assert recon < 0.6 * _logmel_distance(mix, noise, n)
