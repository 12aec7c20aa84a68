"""Structure stage: bpm, beats, downbeats, time signature and labelled sections.

In: a Song with ``audio["mix"]`` (48 kHz stereo) and, when the separation stage
made them, ``audio["vocals"]`` / ``"drums"`` / ``"bass"`` / ``"other"`` /
``"accompaniment"`` (handed to the backend so that nothing separates twice).
Out: ``labels["structure"]`` = ``{"bpm", "beats", "downbeats", "time_signature",
"sections": [{"start", "end", "label", "tag"}]}`` where ``label`` is the
analyser's and ``tag`` the training side's (``intro-short``, ``verse``, ...);
sections tile the whole song. Failures (unreadable audio, a backend error)
become dead letters.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from schemas.records import Song
from transforms.core import audio as au
from transforms.core import reading, shape, workdir
from transforms.core import vad as vad_mod
from transforms.core.activity import Region, active_regions, confirmed_regions
from transforms.core.stage import StageFn, StageTransform
from transforms.structure import sections as sec
from transforms.structure.dsp import ANALYSIS_RATE
from transforms.structure.tempo_cnn import DEFAULT_TEMPO_MODELS

STAGE = "structure"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "dsp": "transforms.structure.dsp:DspStructure",
    "madmom": "transforms.structure.madmom_backend:MadmomStructure",
    "allin1": "transforms.structure.allin1_backend:AllInOneStructure",
    "beatnet": "transforms.structure.beatnet:BeatNetStructure",
}

STEM_NAMES = ("vocals", "drums", "bass", "other", "accompaniment")


def structure_label(result: dict, duration: float, vocals: Optional[List[Region]] = None) -> dict:
    """The backend's result with sections shaped and training tags added.

    Shaping (``transforms.core.shape``): sections tile [0, duration], sit on
    downbeats, favour 4 / 8-bar phrases, have at least 2 bars, at most one intro
    (first) and one outro (last), no adjacent wordless runs, at most 14.
    ``vocals``: sung regions (``[]`` instrumental, None unknown). The analyser's
    own sections stay under ``raw_sections``.
    """
    bpm = float(result.get("bpm") or 0.0)
    shaped = shape.shape_sections(result.get("sections", []), duration, beats=result.get("beats", ()),
                                  downbeats=result.get("downbeats", ()), bpm=bpm, vocals=vocals,
                                  features=result.get("section_features"))
    sections = sec.with_tags(shaped)
    raw = [{k: s[k] for k in ("start", "end", "label")} for s in result.get("sections", [])]
    out = {k: v for k, v in result.items() if k not in ("section_features", "vocal_share")}
    return {**out, "bpm": bpm, "sections": sections, "num_sections": len(sections), "raw_sections": raw,
            "vocal_regions": None if vocals is None else [[round(a, 3), round(b, 3)] for a, b in vocals]}


def sung_regions(vocals: np.ndarray, sample_rate: int, vad=None) -> List[Region]:
    """Where the vocal stem sings: the energy gate's regions, confirmed by the VAD when there is one."""
    return sung_regions_16k(au.resample(au.to_mono(vocals), sample_rate, au.ASR_RATE)[0], vad)


def sung_regions_16k(mono: np.ndarray, vad=None) -> List[Region]:
    """:func:`sung_regions` of the vocal stem's mono mixdown at 16 kHz."""
    gated = active_regions(mono, au.ASR_RATE)
    return gated if vad is None else confirmed_regions(gated, vad_mod.vocal_regions(vad, mono))


class StructureFn(StageFn):
    stage = STAGE

    def setup(self) -> None:
        super().setup()
        self.vad = vad_mod.shared_vad() if self.config.get("vad", "silero") == "silero" else None

    def apply(self, song: Song) -> Song:
        if getattr(self.backend, "reads_mono", False):  # dsp, beatnet: bounded memory, mono copies only
            views = (reading.read_views(song.audio["vocals"], (ANALYSIS_RATE, au.ASR_RATE), 0.1)
                     if "vocals" in song.audio else None)  # the stem read once for all three views
            result, duration = self.backend.analyze_files(song.audio["mix"], views)
            vocals = sung_regions_16k(views.mono[au.ASR_RATE], self.vad) if views is not None else None
            song.set_label(self.stage, structure_label(result, duration, vocals), self.backend.provenance())
            return song
        mix, sr = workdir.load_audio(song.audio["mix"])
        stems = {}
        for name in STEM_NAMES:
            if name in song.audio:
                stems[name], stem_sr = workdir.load_audio(song.audio[name])
                if stem_sr != sr:
                    raise ValueError(f"stem {name} is at {stem_sr} Hz, the mix at {sr} Hz")
        result = self.backend.analyze(mix, sr, stems)
        vocals = sung_regions(stems["vocals"], sr, self.vad) if "vocals" in stems else None
        song.set_label(self.stage, structure_label(result, mix.shape[-1] / sr, vocals), self.backend.provenance())
        return song


class AnalyzeStructure(StageTransform):
    """Songs in; songs with ``labels["structure"]`` out, plus dead letters. Backend: ``--structure``."""

    stage = STAGE
    fn_class = StructureFn
    backends = BACKENDS
    default_backend = "beatnet"  # measured best on 39 real songs with known tempo (README)
    stage_params = ("vad",)

    @classmethod
    def add_options(cls, group) -> None:
        super().add_options(group)
        group.add_argument("--structure_tempo_level", default="auto", choices=("auto", "on", "off"),
                           help="re-pick the metrical level of the tracked beats from onset evidence and a "
                                "tempo prior (auto: on for dsp and beatnet, off for madmom)")
        group.add_argument("--structure_tempo_cnn", default=",".join(DEFAULT_TEMPO_MODELS),
                           help="level check evidence: comma-separated tempo-CNN models shipped by the tempocnn "
                                "package (AGPL-3.0 code and models; sha256 pinned), or none")
        group.add_argument("--structure_genre_prior", default="musicnn", choices=("musicnn", "none"),
                           help="level check evidence: the MTT musicnn tagger's metal score tilts the tempo "
                                "prior towards fast levels, or none")
        group.add_argument("--structure_beatnet_model", type=int, default=1, choices=(1, 2, 3),
                           help="beatnet: which of the three shipped models")
        group.add_argument("--structure_vad", default="silero", choices=("silero", "none"),
                           help="confirm the vocal stem's sung regions with silero-vad before shaping sections")
        group.add_argument("--structure_weights", default=None, help="allin1: weights folder or checkpoint")
        group.add_argument("--structure_device", default="cpu", help="allin1: cpu (natten is built without CUDA)")
