"""The tags-and-quality stage's pieces: vocabulary, metadata mapping, descriptors, quality, backends.

Importing this package registers the backends of stage "tags" by name only
(nothing heavy is imported): ``dsp`` (embedded default: metadata + signal
descriptors, no learned weights) and ``clap`` (zero-shot text-audio tagging with
a CLAP model from ``--tagger_weights``).
"""

from transforms.base import register_backend

register_backend("tags", "dsp", "transforms.tagging.backend:DspTagger")
register_backend("tags", "clap", "transforms.tagging.clap_backend:ClapTagger")
