"""The dashboard's coloured words: a :class:`Badge` and the level of a degradation.

>>> badge_level(0.2, 0.08, 0.15), badge_level(0.1, 0.08, 0.15), badge_level(-0.01, 0.08, 0.15)
('bad', 'warn', 'ok')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Badge:
    """A coloured word: ``level`` is ok, warn, bad or none; ``title`` the numbers behind it."""

    level: str
    text: str
    title: str = ""


def badge_level(degradation: float, moderate: float, critical: float) -> str:
    """The health level of a relative degradation (positive: worse than the baseline)."""
    if degradation > critical:
        return "bad"
    return "warn" if degradation > moderate else "ok"
