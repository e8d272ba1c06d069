"""The fewest labelled rows the gate compares on: ``gate.min_rows`` when set, else scaled to
the model's window (:func:`min_rows_for`), so a model that only ever has a few hundred rows is
judged by the paired bootstrap instead of found "insufficient" every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.spec_sections import Gate

MIN_ROWS = 100  # gate.min_rows when unset and the window's holdout holds at least as many
MIN_ROWS_FLOOR = 30  # the least a scaled gate.min_rows goes: the bootstrap's own floor


@dataclass(frozen=True)
class MinRows:
    """The fewest rows the gate compares on: ``gate.min_rows`` when set, else scaled to the
    model's window by :func:`min_rows_for`, with the numbers it was scaled from."""

    rows: int
    configured: int | None  # gate.min_rows as set; None: scaled to the window
    holdout_rows: int | None = None  # the holdout a full retrain of the window gets
    window_rows: int | None = None

    @property
    def scaled(self) -> bool:
        """Unset ``gate.min_rows`` taken below :data:`MIN_ROWS` for a small window."""
        return self.configured is None and self.rows != MIN_ROWS

    @property
    def why(self) -> str | None:
        """How the number was scaled; None when it is the configured (or default) one."""
        if not self.scaled:
            return None
        text = f"scaled: the holdout of a window of {self.window_rows} rows holds "
        text += f"{self.holdout_rows}"
        return text + (f"; {MIN_ROWS_FLOOR} at the least" if self.rows == MIN_ROWS_FLOOR else "")

    @property
    def note(self) -> str | None:
        """``min_rows 40 (scaled: ...)`` for the gate result and decision reasons."""
        return None if self.why is None else f"min_rows {self.rows} ({self.why})"

    def validation_rows(self, new_rows: int, fraction: float) -> int:
        """A fine-tune's validation slice of ``new_rows``: their newest ``fraction``
        (``fine_tune.validation_fraction``); when the minimum is scaled to a small window and
        the fraction falls short of it, the minimum, as long as at least
        :data:`MIN_ROWS_FLOOR` rows are left to learn from (else the fraction, and the gate
        says "insufficient").

        >>> scaled = MinRows(60, None, 60, 300)
        >>> scaled.validation_rows(100, 0.1), scaled.validation_rows(80, 0.1)
        (60, 8)
        >>> MinRows(100, None).validation_rows(500, 0.1)  # a big window: the fraction alone
        50
        """
        share = max(1, round(new_rows * fraction))
        if self.scaled and share < self.rows <= new_rows - MIN_ROWS_FLOOR:
            return self.rows
        return share

    def fine_tune_rows_needed(self, fraction: float) -> int:
        """The fewest new rows whose validation slice (:meth:`validation_rows`) reaches the
        minimum, so that the gate can judge a fine-tune on them.

        >>> big, small = MinRows(100, None), MinRows(60, None, 60, 300)
        >>> big.fine_tune_rows_needed(0.1), small.fine_tune_rows_needed(0.1)
        (1000, 90)
        """
        by_share = math.ceil(self.rows / fraction)
        return min(by_share, self.rows + MIN_ROWS_FLOOR) if self.scaled else by_share


def min_rows_for(
    gate: Gate, holdout_rows: int | None = None, window_rows: int | None = None
) -> MinRows:
    """The gate's minimum for a model whose full retrain holds out ``holdout_rows`` of
    ``window_rows``: ``gate.min_rows`` when set; unset, the holdout itself between
    :data:`MIN_ROWS_FLOOR` (30) and :data:`MIN_ROWS` (100). A window of 200 rows has a
    holdout of 40 (the default 20%), and a floor of 100 would reject every challenger such a
    model trains as "insufficient"; the paired bootstrap (kept) guards 40 rows against noise.
    A window with a holdout of 100 rows or more keeps 100. Unknown window: 100.

    >>> min_rows_for(Gate(), 40, 200).note
    'min_rows 40 (scaled: the holdout of a window of 200 rows holds 40)'
    >>> min_rows_for(Gate(), 10, 50).note
    'min_rows 30 (scaled: the holdout of a window of 50 rows holds 10; 30 at the least)'
    >>> min_rows_for(Gate(), 2000, 10000).rows, min_rows_for(Gate(min_rows=100), 40, 200).rows
    (100, 100)
    """
    if gate.min_rows is not None:
        return MinRows(gate.min_rows, gate.min_rows, holdout_rows, window_rows)
    if holdout_rows is None:
        return MinRows(MIN_ROWS, None, None, window_rows)
    rows = min(MIN_ROWS, max(MIN_ROWS_FLOOR, holdout_rows))
    return MinRows(rows, None, holdout_rows, window_rows)
