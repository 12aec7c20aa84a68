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

from schemas.records import Song
from transforms.core import workdir
from transforms.core.stage import StageFn, StageTransform
from transforms.structure import sections as sec

STAGE = "structure"
# backend name -> "module:Class", imported only when the backend is checked or loaded
BACKENDS = {
    "dsp": "transforms.structure.dsp:DspStructure",
    "madmom": "transforms.structure.madmom_backend:MadmomStructure",
    "allin1": "transforms.structure.allin1_backend:AllInOneStructure",
}

STEM_NAMES = ("vocals", "drums", "bass", "other", "accompaniment")


def structure_label(result: dict, duration: float) -> dict:
    """The backend's result with sections tiled over [0, duration] and training tags added."""
    sections = sec.with_tags(sec.tile(result.get("sections", []), duration))
    return {**result, "bpm": float(result.get("bpm") or 0.0), "sections": sections,
            "num_sections": len(sections)}


class StructureFn(StageFn):
    stage = STAGE

    def apply(self, song: Song) -> Song:
        mix, sr = workdir.load_audio(song.audio["mix"])
        stems = {}
        for name in STEM_NAMES:
            if name in song.audio:
                stems[name], stem_sr = workdir.load_audio(song.audio[name])
                if stem_sr != sr:
                    raise ValueError(f"stem {name} is at {stem_sr} Hz, the mix at {sr} Hz")
        result = self.backend.analyze(mix, sr, stems)
        song.set_label(self.stage, structure_label(result, mix.shape[-1] / sr), self.backend.provenance())
        return song


class AnalyzeStructure(StageTransform):
    """Songs in; songs with ``labels["structure"]`` out, plus dead letters. Backend: ``--structure``."""

    stage = STAGE
    fn_class = StructureFn
    backends = BACKENDS
    default_backend = "dsp"

    @classmethod
    def add_options(cls, group) -> None:
        super().add_options(group)
        group.add_argument("--structure_weights", default=None, help="allin1: weights folder or checkpoint")
        group.add_argument("--structure_device", default="cpu", help="allin1: cpu (natten is built without CUDA)")
