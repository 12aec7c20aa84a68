"""Quality stage: technical quality measures, musicality score and tier, ``[Pure-Music]``.

Public: :class:`MeasureQuality`. Modules: ``stage``, ``measures`` (pure measures,
score), ``scorer`` (an optional learned aesthetic scorer).
"""

from transforms.quality.stage import STAGE, MeasureQuality

__all__ = ["STAGE", "MeasureQuality"]
