"""Tags stage: gender, genre, emotion, instruments and the description line, plus the vocal decision.

Public: :class:`TagSongs`. Backends (``BACKENDS``, chosen with ``--tags``):
``musicnn`` (default: the MTT and MSD musicnn taggers with the weights the musicnn
package ships, ISC), ``dsp`` (metadata + signal descriptors, no weights) and
``clap`` (zero-shot tagging with local CLAP weights). Modules: ``stage``, ``backend`` (the tagger interface),
``metadata`` (controlled vocabulary, ``vocabulary.json``), ``descriptors``
(key, pitch gender, energy), ``descriptions`` (the line), ``vocals`` (the
vocal decision), one module per backend.
"""

from transforms.tags.stage import BACKENDS, STAGE, TagSongs

__all__ = ["BACKENDS", "STAGE", "TagSongs"]
