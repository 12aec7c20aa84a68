"""Codec tokens stage: mixed, vocal and accompaniment token streams [3, T] at 25 Hz, plus the prompt.

Public: :class:`EncodeTokens`. Backends (``BACKENDS``, chosen with ``--tokens``):
``kmeans`` (embedded, a codebook learnt from the corpus; not a neural codec),
``encodec`` and ``songgen`` (local weights). Modules: ``stage``, ``backend``
(the codec interface), ``frames`` (frame maths and the training side's
conventions), one module per backend.
"""

from transforms.tokens.stage import BACKENDS, STAGE, EncodeTokens

__all__ = ["BACKENDS", "STAGE", "EncodeTokens"]
