"""Structure stage: bpm, beats, downbeats, meter and labelled sections in the training side's tags.

Public: :class:`AnalyzeStructure`. Backends (``BACKENDS``, chosen with ``--structure``):
``dsp`` (librosa, no weights), ``madmom`` (its shipped RNNs, CC BY-NC-SA),
``allin1`` (optional extra, local weights). A backend's ``analyze(mix, sample_rate,
stems)`` returns ``{"bpm", "beats", "downbeats", "time_signature", "sections":
[{"start", "end", "label"}]}``; the stage tiles the sections and adds the tags.
"""

from transforms.structure.stage import BACKENDS, STAGE, AnalyzeStructure

__all__ = ["BACKENDS", "STAGE", "AnalyzeStructure"]
