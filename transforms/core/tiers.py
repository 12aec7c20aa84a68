"""Musicality tiers, in one place: names, order, the conditioning token and parsing.

The quality stage assigns a tier; the filter stage drops songs below a floor.
"""

from __future__ import annotations

from typing import Any, Sequence, Tuple

TIER_NAMES = ("very-high", "high", "medium", "low", "very-low")  # best first
DEFAULT_THRESHOLDS = (0.85, 0.7, 0.5, 0.3)  # score at or above -> tier, best first
PURE_MUSIC = "[Pure-Music]"


def tier_token(name: str) -> str:
    """"high" -> "[Musicality-high]"."""
    if name not in TIER_NAMES:
        raise ValueError(f"unknown musicality tier {name!r}; one of {TIER_NAMES}")
    return f"[Musicality-{name}]"


def tier_name(tier: Any) -> str:
    """"[Musicality-high]" or "high" -> "high"; "" if it is not a tier."""
    name = str(tier or "").strip("[] ").lower()
    name = name[len("musicality-"):] if name.startswith("musicality-") else name
    return name if name in TIER_NAMES else ""


def tier_for_score(score: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> str:
    """The tier token for a score and 4 descending thresholds."""
    for name, threshold in zip(TIER_NAMES, thresholds):
        if score >= threshold:
            return tier_token(name)
    return tier_token(TIER_NAMES[-1])


def parse_thresholds(text: Any) -> Tuple[float, float, float, float]:
    """"0.85,0.7,0.5,0.3" (or a sequence; None/"" for the defaults) -> 4 strictly descending numbers.

    Raises ValueError otherwise.
    """
    if text is None or text == "":
        return DEFAULT_THRESHOLDS
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"musicality thresholds must be 4 numbers, got {text!r}") from exc
    if len(values) != 4 or any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError(f"musicality thresholds need 4 strictly descending numbers, got {text!r}")
    return tuple(values)  # type: ignore[return-value]


def parse_floor(value: Any) -> Tuple[str, float | None]:
    """A minimum-musicality floor: a tier name ("medium") or a score ("0.6") -> (tier name, score).

    Exactly one of the two is set; ("", None) for no floor. Raises ValueError for anything else.
    """
    if value is None or value == "":
        return "", None
    try:
        return "", float(value)
    except (TypeError, ValueError):
        pass
    name = tier_name(value)
    if not name:
        raise ValueError(f"minimum musicality {value!r}: use one of {', '.join(TIER_NAMES)} or a number")
    return name, None


def below_floor(tier: Any, floor_name: str) -> bool:
    """True when ``tier`` is worse than the floor tier ``floor_name``."""
    have = tier_name(tier)
    return bool(have and floor_name) and TIER_NAMES.index(have) > TIER_NAMES.index(floor_name)
