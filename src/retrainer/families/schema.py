"""Feature schema learned at fit time: the column lists, category levels and class labels.

Every family sees the same float matrix: numeric columns as float64, categorical columns as
level codes (unseen or missing levels become NaN), in spec order.

>>> import pandas as pd
>>> df = pd.DataFrame({"age": [30, None], "plan": ["gold", "basic"]})
>>> s = FeatureSchema.learn(df, ["age"], ["plan"])
>>> s.categories["plan"]
('basic', 'gold')
>>> s.matrix(pd.DataFrame({"age": [1.5], "plan": ["platinum"]})).tolist()
[[1.5, nan]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import InputError


def _level(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


@dataclass(frozen=True)
class FeatureSchema:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    @property
    def categorical_indices(self) -> list[int]:
        return list(range(len(self.numeric), len(self.columns)))

    @classmethod
    def learn(
        cls, df: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
    ) -> FeatureSchema:
        schema = cls(tuple(numeric), tuple(categorical))
        schema.check_columns(df)
        cats = {}
        for col in categorical:
            values = df[col].dropna()
            cats[col] = tuple(sorted({_level(v) for v in values.unique()}))
        return cls(tuple(numeric), tuple(categorical), cats)

    def check_columns(self, df: pd.DataFrame | Mapping[str, Any]) -> None:
        present = set(df.columns) if isinstance(df, pd.DataFrame) else set(df)
        missing = [c for c in self.columns if c not in present]
        if missing:
            raise InputError(
                f"Missing feature column(s) {missing}. The model expects {list(self.columns)}; "
                "add the missing columns to the data.",
                missing=missing,
            )

    def matrix(self, df: pd.DataFrame) -> np.ndarray:
        """The float matrix every family trains and predicts on."""
        self.check_columns(df)
        out = np.empty((len(df), len(self.columns)), dtype=np.float64)
        for j, col in enumerate(self.numeric):
            try:
                out[:, j] = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=np.float64)
            except (ValueError, TypeError) as exc:
                raise InputError(
                    f"Feature {col!r} must be numeric: {exc}. Fix or drop the offending values.",
                    feature=col,
                ) from None
        for k, col in enumerate(self.categorical):
            out[:, len(self.numeric) + k] = self._codes(col, df[col])
        return out

    def _codes(self, col: str, values: pd.Series) -> np.ndarray:
        """Level codes of a column (NaN for unseen or missing), one lookup per distinct value."""
        levels = self.categories.get(col, ())
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        lookup = {v: i for i, v in enumerate(levels)}
        table = np.array(
            [lookup.get(_level(u), np.nan) for u in uniques] + [np.nan], dtype=np.float64
        )
        return table[codes]  # code -1 (missing) takes the last entry, NaN

    def row_vector(self, row: Mapping[str, Any]) -> np.ndarray:
        """One row as a (1, p) matrix without building a DataFrame (the serving hot path)."""
        out = np.empty((1, len(self.columns)), dtype=np.float64)
        for j, col in enumerate(self.numeric):
            v = row[col]
            out[0, j] = np.nan if v is None else float(v)
        for k, col in enumerate(self.categorical):
            v = row[col]
            levels = self.categories.get(col, ())
            code = levels.index(_level(v)) if v is not None and _level(v) in levels else np.nan
            out[0, len(self.numeric) + k] = code
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "categories": {k: list(v) for k, v in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSchema:
        return cls(
            tuple(d["numeric"]),
            tuple(d["categorical"]),
            {k: tuple(v) for k, v in d.get("categories", {}).items()},
        )

    def signature(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What must stay equal for a fine-tune (levels may grow, columns may not)."""
        return self.numeric, self.categorical
