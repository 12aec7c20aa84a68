"""musicnn tagger: checkpoint reader, log-mel front end and PyTorch network against TensorFlow.

The reference fixture ``tests/data/musicnn_reference.npz`` was made once by
``benchmarks/make_musicnn_reference.py`` with TensorFlow in a throwaway venv:
it holds, for the three clips ``make_clips`` synthesises, the package's own
log-mel for one clip, TensorFlow's tag scores for every patch under both
MTT_musicnn and MSD_musicnn, and a few checkpoint values read by TensorFlow's
checkpoint reader. Tests that need the shipped weights skip where the musicnn
package is not installed; the rest run anywhere.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

SR = 16000
REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "musicnn_reference.npz")


def _tone(freq, t, harmonics=4):
    """A harmonic tone whose partials fall off as 1/h."""
    return sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, harmonics + 1))


def make_clips():
    """Three deterministic 16 kHz mono float32 clips: {name: audio}.

    ``bursts``: 4 s of alternating tones under noise bursts; ``chords``: 6 s of a
    C-G-Am-F progression with a bass line; ``beat``: 5 s of kick, hat and snare
    at 120 bpm under a sawtooth riff. Noise comes from a seeded PCG64 generator.
    """
    rng = np.random.default_rng(1234)
    clips = {}
    t = np.arange(int(4.0 * SR)) / SR
    tones = np.where((t // 0.5) % 2 == 0, np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 880 * t))
    noise = rng.uniform(-1, 1, t.size) * (((t % 0.25) < 0.1) * np.exp(-(t % 0.25) / 0.03))
    clips["bursts"] = 0.2 * tones + 0.3 * noise
    t = np.arange(int(6.0 * SR)) / SR
    chords = [(261.6, 329.6, 392.0), (196.0, 246.9, 293.7), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6)]
    index = np.minimum((t // 1.5).astype(int), 3)
    env = np.exp(-(t % 1.5) / 0.8)
    mix = np.zeros_like(t)
    for k, chord in enumerate(chords):
        part = sum(_tone(f, t) for f in chord) + 1.5 * _tone(chord[0] / 2, t, 2)
        mix += (index == k) * env * part
    clips["chords"] = 0.05 * mix
    t = np.arange(int(5.0 * SR)) / SR
    beat = t % 0.5
    kick = np.sin(2 * np.pi * (50 * beat + 70 * 0.03 * (1 - np.exp(-beat / 0.03)))) * np.exp(-beat / 0.12)
    hat = np.diff(rng.uniform(-1, 1, t.size + 1)) * np.exp(-(t % 0.25) / 0.02)
    snare = rng.uniform(-1, 1, t.size) * np.exp(-((t - 0.25) % 1.0) / 0.05) * (((t - 0.25) % 1.0) < 0.3)
    riff = 2 * ((t * np.where((t // 0.25) % 4 < 2, 110.0, 146.8)) % 1.0) - 1
    clips["beat"] = 0.4 * kick + 0.15 * hat + 0.2 * snare + 0.1 * riff
    return {name: audio.astype(np.float32) for name, audio in clips.items()}


from transforms.core.stage import BackendUnavailable  # noqa: E402
from transforms.core.musicnn import checkpoint, features, model, tagger  # noqa: E402
from transforms.tags.musicnn import mapping  # noqa: E402

PACKAGE = tagger.package_folder()
needs_weights = pytest.mark.skipif(PACKAGE is None, reason="musicnn package (weights) not installed")
MODELS = ("MTT_musicnn", "MSD_musicnn")


@pytest.fixture(scope="module")
def reference():
    """The committed TensorFlow reference, after checking the clips regenerate as they were."""
    with np.load(REFERENCE) as data:
        ref = dict(data)
    for name, audio in make_clips().items():
        a = audio.astype(np.float64)
        stats = [a.size, np.sqrt(np.mean(a * a)), np.abs(a).max(), a[:1000].sum()]
        np.testing.assert_allclose(stats, ref[f"stats/{name}"], rtol=1e-5, atol=1e-6,
                                   err_msg=f"clip {name} no longer matches the fixture")
    return ref


@pytest.fixture(scope="module")
def shipped():
    """Both shipped models, loaded as the pipeline would, patches 64 frames apart like the fixture."""
    if PACKAGE is None:
        pytest.skip("musicnn package (weights) not installed")
    return tagger.load(MODELS, hop_frames=64, threads=1)


def test_proto_decoding_and_bad_files(tmp_path):
    assert checkpoint.read_varint(bytes([0xAC, 0x02]), 0) == (300, 2)
    entry = checkpoint.parse_entry(bytes([0x08, 0x01, 0x12, 0x06, 0x12, 0x02, 0x08, 0x03, 0x12, 0x00,
                                          0x20, 0x10, 0x28, 0x0C]))
    assert entry == checkpoint.BundleEntry(dtype=1, shape=(3, 0), shard_id=0, offset=16, size=12)
    (tmp_path / ".index").write_bytes(b"\0" * 60)
    with pytest.raises(checkpoint.CheckpointError, match="magic"):
        checkpoint.list_entries(str(tmp_path) + "/")


@needs_weights
@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_reader_matches_tensorflow(name, reference):
    prefix = checkpoint.bundle_prefix(os.path.join(PACKAGE, name))
    weights = checkpoint.read_checkpoint(prefix)
    assert len(weights) == int(reference[f"ckpt/{name}/count"]) == 150
    assert all(v.dtype == np.float32 for v in weights.values())
    assert weights["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert weights["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert weights["dense/kernel"].shape == (1506, 200)
    np.testing.assert_array_equal(weights["dense_1/bias"], reference[f"ckpt/{name}/dense_1/bias"])
    np.testing.assert_array_equal(weights["conv2d_5/kernel"][:, :4, :, :4], reference[f"ckpt/{name}/conv2d_5/kernel"])
    np.testing.assert_array_equal(weights["batch_normalization/moving_mean"],
                                  reference[f"ckpt/{name}/batch_normalization/moving_mean"])
    assert sum(v.nbytes for v in weights.values()) == os.path.getsize(prefix + tagger.DATA_FILE)


def test_log_mel_matches_the_package(reference):
    audio = make_clips()["beat"]
    mel = features.log_mel(audio)
    expected = reference["features/beat"]
    assert mel.shape == expected.shape == (1 + audio.size // 256, 96)
    # Bit-exact in practice; 1e-3 leaves room for FFT or log10 rounding across library versions.
    np.testing.assert_allclose(mel, expected, atol=1e-3)
    assert len(features.window_starts(len(mel))) == int(reference["features/beat/windows"])


def test_compress_widens_instead_of_overflowing():
    out = features.compress(np.array([[0.0, 1.0, 100.0, 5000.0, 1e9]], dtype=np.float32))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], np.log10(1e4 * np.array([0, 1, 100, 5000, 65504]) + 1), rtol=1e-3)


def test_patches_cover_the_song_like_the_package():
    feats = np.arange(400 * 96, dtype=np.float32).reshape(400, 96)
    assert features.window_starts(400).tolist() == [0, 187]
    assert features.window_starts(400, hop_frames=100).tolist() == [0, 100, 200]
    p = features.patches(feats, hop_frames=100)
    assert p.shape == (3, 187, 96) and np.array_equal(p[1], feats[100:287])
    short = features.patches(feats[:50])
    assert short.shape == (1, 187, 96) and np.array_equal(short[0, 50:100], feats[:50])


@needs_weights
@pytest.mark.parametrize("name", MODELS)
def test_scores_match_tensorflow(name, reference, shipped):
    for clip, audio in make_clips().items():
        patches = features.patches(features.log_mel(audio), hop_frames=int(reference["hop_frames"]))
        params = shipped.params[name]
        import torch

        with torch.inference_mode():
            logits = model.logits(params, torch.from_numpy(patches)).numpy()
        np.testing.assert_allclose(logits, reference[f"{name}/{clip}/logits"], atol=1e-3)
        scores = shipped.scores(name, patches)  # the pruned network
        assert scores.shape == reference[f"{name}/{clip}/scores"].shape
        np.testing.assert_allclose(scores, reference[f"{name}/{clip}/scores"], atol=1e-3)


@needs_weights
def test_tag_song_pools_windows(shipped, reference):
    audio = make_clips()["chords"]
    result = shipped.tag_song(audio)
    assert set(result) == set(MODELS)
    for name in MODELS:
        ref = reference[f"{name}/chords/scores"]
        out = result[name]
        assert out["model"] == name and out["windows"] == len(ref)
        assert list(out["tags"]) == list(tagger.MODELS[name].labels)
        np.testing.assert_allclose(list(out["tags"].values()), ref.mean(axis=0), atol=1e-3)
        np.testing.assert_allclose(list(out["max"].values()), ref.max(axis=0), atol=1e-3)
    prov = shipped.provenance["MTT_musicnn"]
    assert prov.licence == "ISC" and prov.weights_sha256 == tagger.MODELS["MTT_musicnn"].data_sha256


def random_tagger(prune=True, hop_frames=187):
    """Both models' real architecture with random weights (no package needed)."""
    nets = {name: (tagger.MODELS[name].labels, model.random_params(seed)) for seed, name in enumerate(MODELS)}
    return tagger.MusicnnTagger(nets, hop_frames=hop_frames, batch_size=2, prune=prune)


def test_random_weights_tagger_windows_batches_and_pruning():
    audio = np.concatenate([make_clips()["beat"], make_clips()["chords"]])  # 11 s: 3 whole windows
    full, pruned = random_tagger(prune=False), random_tagger()
    a, b = full.taggram(audio), pruned.taggram(audio)
    for name in MODELS:
        assert a[name].shape == (3, 50)
        assert np.all((a[name] > 0) & (a[name] < 1))
        np.testing.assert_allclose(a[name], b[name], atol=1e-5)
    loud = pruned.taggram(audio * 1e3)["MTT_musicnn"]  # far beyond full scale: clipped, not inf
    assert np.all(np.isfinite(loud))
    song = pruned.tag_song(audio[:16000])  # 1 s: one repeat-padded window
    assert song["MSD_musicnn"]["windows"] == 1
    with pytest.raises(ValueError):
        pruned.tag_song(np.zeros((2, 100), dtype=np.float32))


def edge_params():
    """Random params whose timbral filter 0 is silent for log-mel <= 10 and fires just above."""
    params = model.random_params(3)
    params["bn_in"][:, 0] = (0.5, -0.2)
    w = np.abs(params["front0.w"][0])
    params["front0.w"][0] = w
    params["front0.b"][0] = -w.sum() * (0.5 * 10 - 0.2) - 1e-3  # conv output <= -1e-3 up to the bound
    params["front0.bn"][:, 0] = (1.0, 0.0)
    params["mid0.w"][:, 0] *= 100  # make the channel matter downstream
    return params


def test_pruning_is_exact_within_its_bound_and_falls_back_beyond():
    import torch

    params = edge_params()
    pruned = model.prune_constant_channels(params)
    assert 0 not in pruned["front0.live"] and pruned["front0.fill"][0] == 0.0
    nets = {name: (tagger.MODELS[name].labels, params) for name in MODELS}
    fast, full = tagger.MusicnnTagger(nets), tagger.MusicnnTagger(nets, prune=False)
    inside = np.full((2, 187, 96), 9.9, dtype=np.float32)
    np.testing.assert_allclose(fast.scores("MTT_musicnn", inside), full.scores("MTT_musicnn", inside), atol=1e-6)
    hot = np.full((2, 187, 96), 12.0, dtype=np.float32)
    with torch.inference_mode():  # the pruned network is wrong out there ...
        wrong = model.logits(model.to_torch(pruned), torch.from_numpy(hot)).numpy()
        right = model.logits(model.to_torch(params), torch.from_numpy(hot)).numpy()
    assert np.abs(wrong - right).max() > 1e-2
    # ... so the tagger must take the full network for such patches.
    np.testing.assert_allclose(fast.scores("MTT_musicnn", hot), full.scores("MTT_musicnn", hot), atol=1e-6)


def test_missing_and_unpinned_weights(tmp_path):
    with pytest.raises(BackendUnavailable, match="not found"):
        tagger.checkpoint_folder("MTT_musicnn", str(tmp_path))
    with pytest.raises(KeyError):
        tagger.load(["MTT_vgg"], folder=str(tmp_path))
    (tmp_path / ".index").write_bytes(b"not a checkpoint")
    (tmp_path / tagger.DATA_FILE).write_bytes(b"")
    with pytest.raises(ValueError, match="pinned"):
        tagger.load(["MTT_musicnn"], folder=str(tmp_path))


def test_mapping_file_is_consistent():
    doc = mapping.load_mapping()
    assert mapping.derive_thresholds(doc) == doc["thresholds"]
    vocabulary = os.path.join(os.path.dirname(mapping.MAPPING_PATH), "..", "vocabulary.json")
    with open(vocabulary, encoding="utf-8") as f:
        vocab = __import__("json").load(f)
    for dim, key in (("genres", "genre"), ("emotions", "emotion"), ("instruments", "instrument")):
        assert set(doc[dim]) <= set(vocab[key]), dim
    labels = {"MTT": set(tagger.MTT_LABELS), "MSD": set(tagger.MSD_LABELS)}
    for model_key, tags in doc["thresholds"].items():
        assert set(tags) <= labels[model_key]


def test_map_tags_picks_terms_vocals_and_gender():
    metal = mapping.map_tags({"rock": 0.5, "metal": 0.3, "loud": 0.45, "guitar": 0.4, "male vocal": 0.3,
                              "vocals": 0.2},
                             {"metal": 0.75, "rock": 0.1, "heavy metal": 0.05})
    assert [t for t, _ in metal["genres"]] == ["metal", "rock"]
    assert dict(metal["genres"])["metal"] == 0.75
    assert ("electric guitar", 0.4) in metal["instruments"]
    assert metal["emotions"] == [("intense", 0.45)]
    assert metal["vocal"]["present"] is True and metal["gender"] == ("male", 0.3)

    calm = mapping.map_tags({"guitar": 0.5, "no vocals": 0.4, "soft": 0.3}, {"instrumental": 0.3, "folk": 0.2})
    assert ("acoustic guitar", 0.5) in calm["instruments"] and calm["genres"] == [("folk", 0.2)]
    assert calm["vocal"]["present"] is False and calm["gender"] == ("none", 0.4)

    both = mapping.map_tags({"female": 0.2, "male": 0.18}, None)
    assert both["vocal"]["present"] is True and both["gender"] == (None, 0.0)
    empty = mapping.map_tags(None, None)
    assert empty["genres"] == [] and empty["vocal"] == {"present": None, "score": 0.5}
    assert empty["gender"] == (None, 0.0)
