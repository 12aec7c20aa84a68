"""Tags stage: who sings, in what genre and mood, on which instruments; the description line.

In: a Song with ``audio["mix"]`` (48 kHz stereo), ideally ``audio["mix16k"]`` and
``audio["vocals"]`` (from separation), ``labels["structure"]`` (bpm) and
``labels["lyrics"]`` (ASR evidence), and ``source.file_tags`` / ``source.sidecar``.
Out: ``labels["tags"]`` (:func:`transforms.tags.descriptions.tags_label`): gender,
genre, emotion, instruments, ``descriptions`` ("female, pop, sad, piano, the bpm
is 120"), ``tag_list``, per tag its ``sources``, and ``vocals`` (the vocal decision
the quality stage turns into ``[Pure-Music]``). An instrumental gets no gender.
A song without a readable mix, or any error while tagging, becomes a dead letter.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
from apache_beam.metrics import Metrics

from schemas.records import Song
from transforms.core import audio as au
from transforms.core import reading, workdir
from transforms.core.activity import presence_from_rms
from transforms.core.stage import StageFn, StageTransform
from transforms.tags import descriptors, metadata
from transforms.tags.descriptions import merge_tags, tags_label
from transforms.tags.vocals import decide_vocals, stem_presence

STAGE = "tags"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "musicnn": "transforms.tags.musicnn_backend:MusicnnTags",
    "dsp": "transforms.tags.backend:DspTagger",
    "clap": "transforms.tags.clap_backend:ClapTagger",
}


def _optional(song: Song, name: str, rate: int) -> Optional[np.ndarray]:
    uri = song.audio.get(name)
    return workdir.load_audio_at(uri, rate) if uri else None


def _mono_at(song: Song, name: str, rate: int) -> Optional[np.ndarray]:
    """The work-dir audio ``name`` as its mono mixdown [1, N] at ``rate``, read block by block."""
    uri = song.audio.get(name)
    return reading.read_audio(uri, rate, mono=True).audio if uri else None


def voiced_regions(song: Song) -> Optional[list]:
    """The lyrics stage's vocal-activity regions ([start, end] seconds; [] when it found no voice), or
    None when it recorded none (no lyrics stage, or it did not run on this song)."""
    activity = (song.labels.get("lyrics") or {}).get("vocal_activity") or {}
    regions = activity.get("regions")
    return [tuple(r) for r in regions] if isinstance(regions, list) else None


def tag_song(song: Song, backend, timings: Optional[dict] = None) -> dict:
    """``labels["tags"]`` of a song whose audio lies in the work dir. Raises ValueError without a mix.

    A backend with an ``input_rate`` gets mono arrays at that rate, read block by block (the 16 kHz
    taggers: bounded memory, the same samples as resampling the whole arrays); others get the whole
    mix and stems at the mix's rate. ``timings``, when given, receives ``model_s``: the seconds spent in
    the backend's ``tag`` (the model alone, without reading and descriptors).
    """
    if "mix" not in song.audio:
        raise ValueError("song has no decoded mix (audio['mix'])")
    rate = getattr(backend, "input_rate", None)
    presence = None
    if rate:  # each file read once: its mono copy and, for the vocal presence, its 100 ms frame RMS
        has_vocals = "vocals" in song.audio
        mix_views = reading.read_views(song.audio["mix"], (rate,), 0.1 if has_vocals else None)
        mix, sr = mix_views.mono[rate][None, :], rate
        vocals, accompaniment = None, _mono_at(song, "accompaniment", rate)
        if has_vocals:
            vocal_views = reading.read_views(song.audio["vocals"], (rate,), 0.1)
            vocals = vocal_views.mono[rate][None, :]
            presence = presence_from_rms(vocal_views.frame_rms, mix_views.frame_rms)
    else:
        mix, sr = workdir.load_audio(song.audio["mix"])
        vocals, accompaniment = _optional(song, "vocals", sr), _optional(song, "accompaniment", sr)
        presence = stem_presence(vocals, mix, sr) if vocals is not None else None
    if mix.size == 0:
        raise ValueError("decoded mix is empty")
    mix16k = _optional(song, "mix16k", au.ASR_RATE)
    mix16k = au.to_mono(au.resample(au.to_mono(mix), sr, au.ASR_RATE) if mix16k is None else mix16k)
    started = time.perf_counter()
    model = backend.tag(mix, sr, vocals, accompaniment=accompaniment, voiced=voiced_regions(song))
    if timings is not None:
        timings["model_s"] = time.perf_counter() - started
    del accompaniment
    vocal = decide_vocals(presence, song.labels.get("lyrics"), (model.get("vocal") or {}).get("score"))
    structure = song.labels.get("structure", {}) or {}
    src = song.source
    file_tags, sidecar = (src.file_tags, src.sidecar) if src else ({}, {})
    meta = metadata.metadata_tags(file_tags, sidecar)
    desc = descriptors.describe(mix16k[0], vocals, sr, structure, metadata.declared_bpm(file_tags, sidecar),
                                pure_music=vocal["present"] is False, mix=mix)
    del vocals
    merged = merge_tags(meta["tags"], str(desc["pitch"]["gender"]), model.get("picks", {}))
    if vocal["present"] is False:
        merged["gender"] = []  # an instrumental never gets a vocal gender, whatever its metadata says
    label = tags_label(merged, desc, meta["unmapped"], model.get("scores"))
    label["vocals"] = vocal
    if model.get("raw"):
        label["model_raw"] = model["raw"]
    return label


class TagFn(StageFn):
    stage = STAGE

    def setup(self) -> None:
        super().setup()
        self.model_ms = Metrics.distribution(self.stage, "model_ms")

    def apply(self, song: Song) -> Song:
        timings: dict = {}
        song.set_label(self.stage, tag_song(song, self.backend, timings), self.backend.provenance())
        self.model_ms.update(int(timings["model_s"] * 1000))
        return song


class TagSongs(StageTransform):
    """Songs -> (songs with labels["tags"], dead letters). Backend: ``--tags`` (see ``BACKENDS``)."""

    stage = STAGE
    fn_class = TagFn
    backends = BACKENDS
    default_backend = "musicnn"

    @classmethod
    def add_options(cls, group) -> None:
        super().add_options(group)
        group.add_argument("--tags_weights", default=None,
                           help="musicnn: a folder holding MTT_musicnn/ and MSD_musicnn/ (default: the musicnn "
                                "package's); clap: a CLAP checkpoint folder")
        group.add_argument("--tags_threads", type=int, default=None, help="musicnn: torch CPU threads")
        group.add_argument("--tags_device", default="cpu")
        group.add_argument("--tags_min_confidence", type=float, default=0.3,
                           help="clap: probability a gender / genre / emotion pick needs (and twice the uniform share)")
        group.add_argument("--tags_windows", type=int, default=6,
                           help="clap: evenly spaced 10 s windows averaged per song")
