"""The separation stage's pieces: backends, streaming overlap-add, block-wise work-dir I/O, metrics.

Importing this package registers the backends of stage "separate" by name only
(nothing heavy is imported): ``dsp`` (embedded default, weight-free) and
``demucs`` (htdemucs from local weights).
"""

from transforms.base import register_backend

register_backend("separate", "dsp", "transforms.separation.dsp:DspSeparator")
register_backend("separate", "demucs", "transforms.separation.demucs_backend:DemucsSeparator")
