"""songshard's synthetic sample corpus (``songshard sample-corpus DIR``): a tool, not a stage.

Songs sung by festival over synthetic accompaniment, with known tempo, key,
sections, lyrics and true stems; plus bad files. ``corpus`` writes it, ``music``
makes the accompaniment, ``voice`` the vocals.
"""

from pipeline.sample_corpus.corpus import *  # noqa: F401,F403 - the tool's public names
from pipeline.sample_corpus.music import *  # noqa: F401,F403
from pipeline.sample_corpus.voice import *  # noqa: F401,F403
from pipeline.sample_corpus.corpus import main, make_sample_corpus  # noqa: F401
