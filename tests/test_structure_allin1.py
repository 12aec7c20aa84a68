"""allin1 structure backend: clear failures always; with allin1 installed, a real run on random weights.

allin1 is an optional extra (scripts/install_allin1.sh). Where it is installed, the real
architecture is built with random weights, saved as a checkpoint, loaded through
``structure_weights`` as a user would, and run on synthesised stems; elsewhere those
tests skip.
"""

import os
import sys

import numpy as np
import pytest

from transforms.core.stage import BackendUnavailable
from transforms.core.weights import file_sha256
from transforms.structure import allin1_backend as ab
from transforms.structure.allin1_backend import AllInOneStructure, allin1_stems

SR = 48000


def synth_stems(duration: float, bpm: float = 120.0, seed: int = 0) -> dict:
    """Four [2, N] float32 stems: clicks (drums), a sine bass, a chord pad (other), a sung-like tone."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    t = np.arange(n) / SR
    period = 60.0 / bpm
    drums = np.zeros(n)
    for k, start in enumerate(np.arange(0.0, duration, period)):
        i = int(start * SR)
        length = min(int(0.06 * SR), n - i)
        drums[i:i + length] += (1.0 if k % 4 == 0 else 0.5) * np.exp(-np.arange(length) / (0.01 * SR)) \
            * rng.standard_normal(length) * 0.2
    bar = 4 * period
    roots = np.array([55.0, 73.4, 61.7, 49.0])[(t // bar).astype(int) % 4]  # A D B G, a bar each
    bass = 0.3 * np.sin(2 * np.pi * np.cumsum(roots) / SR)
    pad = sum(0.08 * np.sin(2 * np.pi * np.cumsum(roots * 4 * r) / SR) for r in (1.0, 1.26, 1.5))
    f0 = 220.0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    gate = ((t > duration / 4) & (t < 3 * duration / 4)).astype(float)
    vocals = 0.2 * gate * sum(np.sin(h * phase) / h for h in range(1, 8))

    def stereo(x):
        return np.stack([x, 0.9 * x]).astype(np.float32)

    return {"drums": stereo(drums), "bass": stereo(bass), "other": stereo(pad), "vocals": stereo(vocals)}


# -- always: clear failures and the stem feed ---------------------------------------------------------------

@pytest.mark.parametrize("blocked,named", [
    (("natten", "madmom", "allin1"), "natten ("),
    (("madmom",), "madmom ("),
    (("allin1",), "allin1 ("),
])
def test_check_names_the_missing_package_and_the_install_script(monkeypatch, blocked, named):
    for module in blocked:  # a None entry in sys.modules makes `import module` raise ImportError
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(BackendUnavailable) as err:
        AllInOneStructure({"weights": None}).check()
    message = str(err.value)
    assert message.startswith("--structure allin1 cannot import ")
    assert named in message
    assert "run scripts/install_allin1.sh" in message
    assert "--structure dsp / madmom" in message


def test_check_says_where_it_looked_for_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(ab, "import_allin1", lambda: None)  # packages present or not, the weights check
    absent = str(tmp_path / "no-such-folder")
    with pytest.raises(BackendUnavailable) as err:
        AllInOneStructure({"weights": absent}).check()
    assert str(err.value).startswith(f"allin1: --structure_weights {absent!r} is not a folder or a .pth file")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no checkpoints here")
    with pytest.raises(BackendUnavailable) as err:
        AllInOneStructure({"weights": str(empty)}).check()
    assert str(err.value).startswith(f"allin1: no checkpoints (*.pth) in --structure_weights {str(empty)!r}")
    assert "taejunkim/allinone" in str(err.value)


def test_stem_feed_notes_every_substitution():
    n = 1000
    mix = np.ones((2, n), np.float32)
    four = {k: np.full((2, n), 0.5, np.float32) for k in ab.STEM_ORDER}
    fed, note = allin1_stems(mix, four)
    assert note == "" and all(fed[k] is four[k] for k in ab.STEM_ORDER)

    two = {"vocals": four["vocals"], "accompaniment": np.full((2, n), 0.25, np.float32)}
    fed, note = allin1_stems(mix, two)
    assert note == "accompaniment fed as 'other'; silence fed as bass, drums"
    assert fed["other"] is two["accompaniment"] and fed["vocals"] is two["vocals"]
    assert not fed["bass"].any() and not fed["drums"].any() and fed["drums"].shape[-1] == n

    fed, note = allin1_stems(mix, {})
    assert note == "no stems: the mix fed as 'other'; silence fed as bass, drums, vocals"
    assert fed["other"] is mix


# -- with allin1 installed: the real model, random weights ---------------------------------------------------

@pytest.fixture(scope="module")
def allin1():
    try:
        return ab.import_allin1()
    except ImportError as exc:
        pytest.skip(f"allin1 not installed ({exc}); scripts/install_allin1.sh installs it")


def save_random_checkpoint(folder, name: str, seed: int) -> str:
    """allin1's architecture (default harmonix config) with random weights, saved as allin1 saves it.

    The beat and downbeat heads start at allin1's low prior (sigmoid 0.05), which the DBN's
    threshold would crop to nothing; their biases are raised so the decoder sees beats.
    """
    import torch
    from allin1.config import Config, HarmonixConfig
    from allin1.models import AllInOne
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.structured(Config(data=HarmonixConfig())), resolve=True)
    torch.manual_seed(seed)
    model = AllInOne(OmegaConf.create(config))
    with torch.no_grad():
        model.beat_classifier.classifier.bias.fill_(0.5)
        model.downbeat_classifier.classifier.bias.fill_(-0.5)
    path = os.path.join(str(folder), name)
    torch.save({"config": config, "state_dict": model.state_dict()}, path)
    return path


def check_result(result: dict, duration: float):
    from allin1.config import HARMONIX_LABELS

    assert set(result) >= {"bpm", "beats", "downbeats", "time_signature", "sections"}
    assert isinstance(result["bpm"], float) and isinstance(result["time_signature"], int)
    beats, downbeats = result["beats"], result["downbeats"]
    assert all(isinstance(b, float) for b in beats + downbeats)
    assert beats == sorted(beats) and all(0.0 <= b < duration for b in beats)
    assert set(downbeats) <= set(beats)
    assert result["time_signature"] in (3, 4)
    if len(beats) >= 2:
        assert 30.0 <= result["bpm"] <= 300.0
    sections = result["sections"]
    assert sections and sections[0]["start"] == 0.0 and sections[-1]["end"] == pytest.approx(duration)
    for a, b in zip(sections, sections[1:]):
        assert a["end"] == b["start"]
    assert all(s["end"] > s["start"] and s["label"] in HARMONIX_LABELS for s in sections)


def test_analyze_with_random_weights_from_a_weights_folder(allin1, tmp_path):
    path = save_random_checkpoint(tmp_path, "harmonix-fold0-random.pth", seed=0)
    backend = AllInOneStructure({"weights": str(tmp_path), "device": "cpu"})
    backend.check()
    backend.load()
    duration = 20.0
    stems = synth_stems(duration)
    mix = sum(stems.values())
    spec, note = backend.spectrograms(mix, SR, stems)
    assert spec.shape[0] == 4 and spec.shape[2] == 81 and spec.dtype == np.float32
    assert abs(spec.shape[1] - duration * 100) <= 2  # 100 frames a second
    assert note == ""

    result = backend.analyze(mix, SR, stems)
    check_result(result, duration)
    assert len(result["beats"]) >= 2, "raised beat head: the DBN should find beats"
    assert "note" not in result

    prov = backend.provenance()
    assert prov.backend == "allin1" and "allin1 1.1.0" in prov.version and "natten 0.15.1" in prov.version
    assert prov.weights == str(tmp_path) and prov.weights_sha256 == file_sha256(path)
    assert prov.licence.startswith("MIT")


def test_spectrograms_match_allin1s_own_path_from_stem_files(allin1, tmp_path):
    """allin1 reads demucs's 44.1 kHz int16 stem wavs with madmom; the in-memory path must agree."""
    import soundfile as sf
    from allin1.spectrogram import _extract_spectrogram

    from transforms.core import audio as au

    stems = synth_stems(6.0, seed=1)
    for name, audio in stems.items():
        sf.write(str(tmp_path / f"{name}.wav"), au.resample(audio, SR, 44100).T, 44100, subtype="PCM_16")
    save_random_checkpoint(tmp_path, "harmonix-fold0-random.pth", seed=0)
    ours, theirs = (AllInOneStructure({"weights": str(tmp_path)}) for _ in range(2))
    ours.load()
    theirs.load()  # a processor of its own: madmom's STFT caches a window scaled for int16 input
    _extract_spectrogram((tmp_path, tmp_path / "spec.npy", theirs._spectrogram))
    reference = np.load(tmp_path / "spec.npy")
    spec, _ = ours.spectrograms(sum(stems.values()), SR, stems)
    assert spec.shape == reference.shape
    assert np.abs(spec - reference).max() < 0.01  # int16 rounding of the wav files
    assert np.abs(spec - reference).mean() < 1e-3


def test_two_checkpoints_ensemble_on_vocals_and_accompaniment(allin1, tmp_path):
    from allin1.models.ensemble import Ensemble

    for fold in range(2):
        save_random_checkpoint(tmp_path, f"harmonix-fold{fold}-random.pth", seed=fold)
    backend = AllInOneStructure({"weights": str(tmp_path)})
    backend.load()
    assert isinstance(backend._model, Ensemble) and len(backend._model.models) == 2
    duration = 8.0
    four = synth_stems(duration, seed=3)
    stems = {"vocals": four["vocals"], "accompaniment": four["drums"] + four["bass"] + four["other"]}
    result = backend.analyze(stems["vocals"] + stems["accompaniment"], SR, stems)
    check_result(result, duration)
    assert result["note"] == "accompaniment fed as 'other'; silence fed as bass, drums"
    assert len(backend.provenance().weights_sha256) == 64


def test_default_weights_are_looked_up_in_the_hub_cache_only(allin1, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(BackendUnavailable) as err:
        AllInOneStructure({"weights": None}).check()
    message = str(err.value)
    assert message.startswith("allin1: no weights in the Hugging Face hub cache: looked for harmonix-fold0-0vra4ys2.pth")
    assert str(tmp_path / "models--taejunkim--allinone") in message
    assert "--structure_weights FOLDER" in message
    assert os.listdir(tmp_path) == []  # nothing was downloaded
