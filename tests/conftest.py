"""Shared fixtures: synthesised songs in a temporary work dir (no network, no files shipped)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schemas.records import SourceInfo, Song  # noqa: E402
from transforms.core import audio as au  # noqa: E402
from transforms.core import workdir  # noqa: E402


def synth_mix(duration: float = 12.0, bpm: float = 120.0, sr: int = 48000, seed: int = 0,
              vocals: bool = True):
    """(mix, vocals, accompaniment) as [2, N] float32: clicks on the beat, a bass tone, a 'voice'.

    The voice is a vibrato tone with formant-like harmonics from 1/4 of the song to 3/4.
    """
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    t = np.arange(n) / sr
    acc = np.zeros(n, dtype=np.float64)
    period = 60.0 / bpm
    for k, bt in enumerate(np.arange(0, duration, period)):
        i = int(bt * sr)
        length = min(int(0.08 * sr), n - i)
        env = np.exp(-np.arange(length) / (0.015 * sr))
        amp = 0.9 if k % 4 == 0 else 0.5
        acc[i:i + length] += amp * env * rng.standard_normal(length) * 0.5
    acc += 0.2 * np.sin(2 * np.pi * 55.0 * t)
    voc = np.zeros(n, dtype=np.float64)
    if vocals:
        f0 = 220.0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        v = sum(np.sin(h * phase) / h for h in range(1, 8))
        gate = ((t > duration / 4) & (t < 3 * duration / 4)).astype(float)
        voc = 0.3 * v * gate
    acc2 = np.stack([acc, 0.9 * acc]).astype(np.float32)
    voc2 = np.stack([voc, voc]).astype(np.float32)
    return acc2 + voc2, voc2, acc2


@pytest.fixture
def make_song(tmp_path):
    """Factory: a decoded Song whose mix (48 kHz stereo) and mix16k live in tmp_path/work."""

    def _make(duration: float = 12.0, bpm: float = 120.0, seed: int = 0, vocals: bool = True,
              song_id: str = "", with_stems: bool = False) -> Song:
        work = str(tmp_path / "work")
        mix, voc, acc = synth_mix(duration, bpm, seed=seed, vocals=vocals)
        sid = song_id or f"song{seed:04d}"
        song = Song(uri=f"/corpus/{sid}.wav", song_id=sid, duration=duration,
                    source=SourceInfo(uri=f"/corpus/{sid}.wav", container="wav", codec="pcm_s16le",
                                      sample_rate=48000, channels=2, duration=duration))
        song.audio["mix"] = workdir.save_audio(workdir.song_uri(work, sid, "mix"), mix, au.CODEC_RATE)
        mono16 = au.resample(au.to_mono(mix), au.CODEC_RATE, au.ASR_RATE)
        song.audio["mix16k"] = workdir.save_audio(workdir.song_uri(work, sid, "mix16k"), mono16, au.ASR_RATE)
        if with_stems:
            song.audio["vocals"] = workdir.save_audio(workdir.song_uri(work, sid, "vocals"), voc, au.CODEC_RATE)
            song.audio["accompaniment"] = workdir.save_audio(
                workdir.song_uri(work, sid, "accompaniment"), acc, au.CODEC_RATE)
        return song

    return _make


@pytest.fixture
def work_dir(tmp_path):
    return str(tmp_path / "work")


def stage(cls, work_dir: str = "", output: str = "", **flags):
    """A stage's PTransform configured as the driver would, from flags given without their ``--``.

    ``stage(SeparateStems, work, separate="dsp")`` is ``--separate dsp`` with the run's work dir ``work``.
    """
    from transforms.core.config import RunContext

    return cls(cls.configure(flags), RunContext(work_dir=str(work_dir), output=str(output)))


def make_backend(cls, name: str, params: dict | None = None):
    """Backend ``name`` of stage class ``cls`` built from its parameters (keys without the stage prefix)."""
    return cls.make_backend(name, params)


def check_backend(cls, name: str, params: dict | None = None):
    """The driver's start-up check of backend ``name`` of ``cls``; its Provenance."""
    from transforms.core.config import StageConfig

    return cls.check(StageConfig.make(cls.stage, name, params or {}))
