"""Tags and quality stage: descriptive tags and technical quality of each song.

In: a Song with ``audio["mix"]`` (48 kHz stereo), ideally ``audio["mix16k"]``,
``audio["vocals"]`` / ``audio["accompaniment"]`` (from separation) and
``labels["structure"]`` (bpm, sections), and ``source.file_tags`` / ``source.sidecar``.
Out: the same Song with

* ``labels["tags"]`` (:func:`transforms.tagging.descriptions.tags_label`): gender,
  genre, emotion, instruments, ``descriptions`` ("female, pop, sad, piano, the bpm
  is 120"), ``tag_list``, and per tag its ``sources``; provenance: the tagger backend;
* ``labels["quality"]`` (:func:`transforms.tagging.quality.quality_label`):
  loudness, true peak, clipping, bandwidth, silence, DC, stereo width, vocal
  presence, ``pure_music``, leakage, ``musicality_score`` and the ``musicality``
  tier; provenance: the quality measures (and the learned scorer, if given).

The backend is ``--tagger`` (``dsp`` by default, ``clap`` for zero-shot tagging
from ``--tagger_weights``); tiers come from ``--quality_tiers``. A song without a
readable mix, or any error while measuring, becomes a dead letter.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import numpy as np

import transforms.tagging  # noqa: F401 - registers the "tags" backends
from schemas.records import Song
from transforms import audio as au
from transforms import workdir
from transforms.base import BackendUnavailable, StageFn, StageTransform, _Holder, option_values
from transforms.tagging import descriptors, metadata, quality
from transforms.tagging.descriptions import merge_tags, tags_label
from transforms.tagging.scorer import AestheticScorer, quality_provenance


def _load(song: Song, name: str, rate: int) -> Optional[np.ndarray]:
    """The work-dir array ``name`` at ``rate`` (None when the song has none)."""
    uri = song.audio.get(name)
    if not uri:
        return None
    audio, sr = workdir.load_audio(uri)
    return au.resample(audio, sr, rate) if sr != rate else audio


def tag_and_measure(song: Song, backend, tiers, scorer: Optional[AestheticScorer] = None) -> Tuple[dict, dict]:
    """(labels["tags"], labels["quality"]) of a song whose audio lies in the work dir."""
    if "mix" not in song.audio:
        raise ValueError("song has no decoded mix (audio['mix'])")
    mix, sr = workdir.load_audio(song.audio["mix"])
    if mix.size == 0:
        raise ValueError("decoded mix is empty")
    mix16k = _load(song, "mix16k", au.ASR_RATE)
    if mix16k is None:
        mix16k = au.resample(au.to_mono(mix), sr, au.ASR_RATE)
    mix16k = au.to_mono(mix16k)
    vocals = _load(song, "vocals", sr)
    accompaniment = _load(song, "accompaniment", sr)
    structure = song.labels.get("structure", {}) or {}
    src = song.source
    source = {"sample_rate": src.sample_rate, "codec": src.codec, "channels": src.channels} if src else {}

    measures = quality.measure_quality(mix, sr, vocals, accompaniment, source, structure.get("sections", []))
    quality.apply_asr_evidence(measures, song.labels.get("lyrics"))
    del accompaniment
    learned = scorer.score(mix16k[0], au.ASR_RATE) if scorer is not None else None
    q_label = quality.quality_label(measures, tiers, learned)

    file_tags, sidecar = (src.file_tags, src.sidecar) if src else ({}, {})
    meta = metadata.metadata_tags(file_tags, sidecar)
    desc = descriptors.describe(mix16k[0], vocals, sr, structure, metadata.declared_bpm(file_tags, sidecar),
                                pure_music=q_label["pure_music"], mix=mix)
    del vocals
    model = backend.tag(mix, sr)
    merged = merge_tags(meta["tags"], str(desc["pitch"]["gender"]), model.get("picks", {}))
    return tags_label(merged, desc, meta["unmapped"], model.get("scores")), q_label


class TagFn(StageFn):
    stage = "tags"

    def setup(self) -> None:
        super().setup()
        self.tiers = quality.parse_tiers(self.params.get("quality_tiers"))
        path = self.params.get("quality_scorer_weights")
        self.scorer = (self._shared.acquire(lambda: _Holder(AestheticScorer(path)), tag=f"quality-scorer:{path}").value
                       if path else None)
        self.quality_provenance = quality_provenance(self.scorer)

    def apply(self, song: Song) -> Song:
        tags, q = tag_and_measure(song, self.backend, self.tiers, self.scorer)
        song.set_label("tags", tags, self.backend.provenance())
        song.set_label("quality", q, self.quality_provenance)
        return song


class TagSongs(StageTransform):
    """Songs -> (songs with labels["tags"] and labels["quality"], dead letters).

    Options: ``--tagger`` (dsp | clap) and its ``--tagger_*`` flags, ``--quality_tiers``
    and ``--quality_scorer_weights`` (both checked here, in the driver), ``--work_dir``.
    """

    fn_class = TagFn
    backend_option = "tagger"

    def __init__(self, options: Any = None, **params: Any):
        values = option_values(options)
        for key in ("quality_tiers", "quality_scorer_weights"):
            params.setdefault(key, values.get(key))
        quality.parse_tiers(params["quality_tiers"])  # a bad --quality_tiers fails before any song is read
        scorer = params["quality_scorer_weights"]
        if scorer and not os.path.isfile(scorer):
            raise BackendUnavailable(f"--quality_scorer_weights {scorer!r}: no such local file (write one with "
                                     "transforms.tagging.scorer.save_scorer)")
        super().__init__(options, **params)
        if not self.backend_name:
            self.backend_name = "dsp"
