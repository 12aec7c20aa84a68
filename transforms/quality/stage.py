"""Quality stage: technical quality measures, the musicality score and tier, and ``[Pure-Music]``.

In: a Song with ``audio["mix"]`` (48 kHz stereo), ``audio["vocals"]`` /
``audio["accompaniment"]`` when separation ran, ``labels["structure"]`` (sections,
for leakage) and ``labels["tags"]["vocals"]`` (the vocal decision).
Out: ``labels["quality"]`` (:func:`transforms.quality.measures.quality_label`):
loudness, true peak, clipping, bandwidth, silence, DC, stereo width, leakage,
``pure_music``, ``musicality_score`` and the ``musicality`` tier. A song without
a readable mix, or any error while measuring, becomes a dead letter.
"""

from __future__ import annotations

import os

from schemas.records import Provenance, Song
from transforms.core import audio as au
from transforms.core import reading
from transforms.core.stage import BackendUnavailable, StageFn, StageTransform, _Holder
from transforms.core.tiers import parse_thresholds
from transforms.quality import files, measures
from transforms.quality.scorer import AestheticScorer, quality_provenance

STAGE = "quality"


def measure_song(song: Song, thresholds, scorer=None) -> dict:
    """``labels["quality"]`` of a song whose audio lies in the work dir. Raises ValueError without a mix."""
    if "mix" not in song.audio:
        raise ValueError("song has no decoded mix (audio['mix'])")
    src = song.source
    source = {"sample_rate": src.sample_rate, "codec": src.codec, "channels": src.channels} if src else {}
    sections = song.label("structure", "sections", []) or []
    # read block by block: a block of memory, never the whole mix and stems at 48 kHz
    found = files.measure_quality_files(song.audio["mix"], song.audio.get("vocals"),
                                        song.audio.get("accompaniment"), source, sections)
    vocal = song.label("tags", "vocals", {}) or {}
    found["pure_music"] = vocal.get("present") is False
    found["pure_music_evidence"] = list(vocal.get("evidence", []))
    learned = None
    if scorer is not None:
        learned = scorer.score(reading.read_audio(song.audio["mix"], au.ASR_RATE, mono=True).audio[0], au.ASR_RATE)
    return measures.quality_label(found, thresholds, learned)


class QualityFn(StageFn):
    stage = STAGE

    def setup(self) -> None:
        super().setup()
        self.thresholds = parse_thresholds(self.config.get("tiers"))
        path = self.config.get("scorer_weights")
        self.scorer = (self._shared.acquire(lambda: _Holder(AestheticScorer(path)), tag=f"quality-scorer:{path}").value
                       if path else None)
        self.provenance: Provenance = quality_provenance(self.scorer)

    def apply(self, song: Song) -> Song:
        song.set_label(self.stage, measure_song(song, self.thresholds, self.scorer), self.provenance)
        return song


class MeasureQuality(StageTransform):
    """Songs -> (songs with labels["quality"], dead letters). Flags: ``--quality_tiers``,
    ``--quality_scorer_weights`` (both checked in the driver, before any song is read)."""

    stage = STAGE
    fn_class = QualityFn
    stage_params = ("tiers", "scorer_weights")

    @classmethod
    def add_options(cls, group) -> None:
        group.add_argument("--quality_tiers", default=None,
                           help="comma-separated musicality score thresholds, high to low (4 numbers)")
        group.add_argument("--quality_scorer_weights", default=None,
                           help="learned aesthetic scorer file (transforms.quality.scorer.save_scorer); "
                                "blended into the musicality score")

    @classmethod
    def configure(cls, values):
        config = super().configure(values)
        parse_thresholds(config.get("tiers"))  # ValueError before any song is read
        path = config.get("scorer_weights")
        if path and not os.path.isfile(path):
            raise BackendUnavailable(f"--quality_scorer_weights {path!r}: no such local file (write one with "
                                     "transforms.quality.scorer.save_scorer)")
        return config
