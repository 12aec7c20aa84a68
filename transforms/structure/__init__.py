"""Structure backends (registered by name; nothing heavy is imported here).

A backend's ``analyze(mix, sample_rate, stems)`` takes the 48 kHz stereo mix and
the stems the separation stage made (``{"vocals": array, "drums": ..., ...}``,
whichever exist) and returns ``{"bpm", "beats", "downbeats", "time_signature",
"sections": [{"start", "end", "label"}]}`` with the analyser's own labels; the
stage maps them to the training side's tags (``sections.to_training_tag``).
"""

from transforms.base import register_backend

register_backend("structure", "dsp", "transforms.structure.dsp:DspStructure")
register_backend("structure", "madmom", "transforms.structure.madmom_backend:MadmomStructure")
register_backend("structure", "allin1", "transforms.structure.allin1_backend:AllInOneStructure")
