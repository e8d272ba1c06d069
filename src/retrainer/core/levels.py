"""The text of a category level or a label, the same from every source: a whole float (a
numeric column with gaps reads ``1`` as ``1.0``) is its integer's text, a numpy scalar its
Python value's. Training schemas, reference statistics, the row store, labels and drift
counts all name a level by it, so ``1``, ``1.0``, ``np.int64(1)`` and ``"1"`` are one level.

>>> import numpy as np
>>> level(True), level(2.0), level("gold"), level(np.int64(0)), level(1.5)
('True', '2', 'gold', '0', '1.5')
"""

from __future__ import annotations

from typing import Any


def level(value: Any) -> str:
    """The level text of a raw value (see the module docstring)."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        value = item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
