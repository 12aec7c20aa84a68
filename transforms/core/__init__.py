"""Shared machinery of every stage: the stage base (``stage``), resolved configuration (``config``),
audio helpers (``audio``), work-dir I/O (``workdir``), weights digests (``weights``) and the facts
defined once (``facts``: rates and caps; ``sections``: the section tags; ``tiers``: musicality tiers).
Nothing here imports a stage."""
