"""What a feedback call did: counts of actuals received, matched, unmatched, duplicated and
rejected, summed over the chunks of a file or the batches of a followed log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .ingest import MAX_REPORTED, Reject

__all__ = ["EMPTY", "FeedbackResult"]


@dataclass(frozen=True)
class FeedbackResult:
    """What one feedback call did. ``received == matched + unmatched + duplicates + rejected``;
    the results of a file's chunks add up.

    >>> total = FeedbackResult(3, 2, 1, 0, 0, training_rows_added=2) + FeedbackResult(2, 1, 0, 1, 0)
    >>> total.received, total.matched, total.duplicates, total.training_rows_added
    (5, 3, 1, 2)
    """

    received: int
    matched: int
    unmatched: int
    duplicates: int
    rejected: int
    first_rejects: list[Reject] = field(default_factory=list)
    training_rows_added: int = 0

    def __add__(self, other: FeedbackResult) -> FeedbackResult:
        return FeedbackResult(
            self.received + other.received,
            self.matched + other.matched,
            self.unmatched + other.unmatched,
            self.duplicates + other.duplicates,
            self.rejected + other.rejected,
            (self.first_rejects + other.first_rejects)[:MAX_REPORTED],
            self.training_rows_added + other.training_rows_added,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "first_rejects": [{"line": r.line, "reason": r.reason} for r in self.first_rejects],
            "training_rows_added": self.training_rows_added,
        }


EMPTY = FeedbackResult(0, 0, 0, 0, 0)
