"""Decode a block at a time: the same song id and the same work-dir copies as decoding the cut whole."""

from __future__ import annotations

import shutil
import subprocess

import apache_beam as beam
import numpy as np
import pytest
import soundfile as sf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from conftest import stage
from schemas.records import Song
from transforms.core import audio as au
from transforms.core import workdir
from transforms.decode import DecodeAudio, content_id, decode_bytes, source
from transforms.decode.source import ContentHasher, resampled_length


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 10,007 frames, so every song here spans many blocks and ends on a partial one."""
    monkeypatch.setattr(source, "BLOCK_FRAMES", 10007)


def noise(channels: int, frames: int, seed: int = 0) -> np.ndarray:
    return (0.4 * np.random.default_rng(seed).standard_normal((channels, frames))).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_the_hasher_gives_content_id_of_the_whole_array(channels):
    audio = noise(channels, 54321, seed=channels)
    hasher = ContentHasher(44100, channels)
    for a in range(0, audio.shape[1], 10007):
        hasher.add(audio[:, a:a + 10007])
    assert hasher.hexdigest() == content_id(audio, 44100)


def test_resampled_length_is_soxr_s():
    for rate_in, rate_out in ((44100, 48000), (32000, 48000), (96000, 48000), (44100, 16000), (22050, 16000)):
        for n in (1, 3, 1001, 44100, 96001, 123457):
            want = au.resample(np.zeros((1, n), np.float32), rate_in, rate_out).shape[1]
            assert resampled_length(n, rate_in, rate_out) == want, (rate_in, rate_out, n)


CASES = [("wav", 1, 44100, 0.0), ("flac", 2, 32000, 0.0), ("wav", 3, 22050, 4.0),
         pytest.param("m4a", 2, 44100, 4.0, marks=pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                                                     reason="ffmpeg makes the m4a file"))]


@pytest.mark.parametrize("ext,channels,rate,cut", CASES)
def test_the_stage_writes_what_the_whole_cut_gives(tmp_path, work_dir, ext, channels, rate, cut):
    path = tmp_path / f"song.{ext}"
    sf.write(tmp_path / "src.wav", noise(channels, int(6.3 * rate), seed=rate).T, rate, subtype="FLOAT")
    if ext == "m4a":
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "src.wav"), str(path)], check=True)
    elif ext == "flac":
        sf.write(path, sf.read(tmp_path / "src.wav", dtype="float32")[0], rate)
    else:
        shutil.move(str(tmp_path / "src.wav"), str(path))
    whole, sr, _, _, total = decode_bytes(path.read_bytes(), str(path), cut)
    keep = whole[:, : int(cut * sr)] if cut and total > cut else whole

    def check(out):
        (song,) = out
        assert song.song_id == content_id(whole, sr) and song.truncated == bool(cut)
        mix, mix_sr = workdir.load_audio(song.audio["mix"])
        mono, mono_sr = workdir.load_audio(song.audio["mix16k"])
        assert (mix_sr, mono_sr) == (48000, 16000)
        np.testing.assert_array_equal(mix, au.to_stereo(au.resample(keep, sr, 48000)))
        np.testing.assert_array_equal(mono, au.resample(au.to_mono(keep), sr, 16000))
        assert song.duration == mix.shape[1] / 48000 and song.source.channels == channels

    flags = {"decode_max_seconds": cut} if cut else {}
    with TestPipeline() as p:
        songs, _ = p | beam.Create([Song(uri=str(path))]) | stage(DecodeAudio, work_dir, **flags)
        assert_that(songs, check)
