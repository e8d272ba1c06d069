"""Feature schema learned at fit time: the column lists, category levels and class labels,
and the kind of each numeric column (``boolean`` when its training values were booleans or
only 0 and 1, ``integer`` when they were whole numbers, else a plain number).

Every family sees the same float matrix: numeric columns as float64, categorical columns as
level codes (unseen or missing levels become NaN: an unknown category is scored as a missing
value), in spec order. A value becomes a level by :func:`level` (``True`` -> ``"True"``,
``2.0`` -> ``"2"``), in batch predict and in serving alike, so a JSON ``true`` and the text
``"True"`` are one level; a numeric ``boolean`` column takes ``true``/``false`` as 1/0.

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
from ..core.levels import level

BOOLEAN_LEVELS = frozenset({"False", "True"})


def _numeric_kind(values: pd.Series) -> str | None:
    """``boolean`` when the training values are booleans or only 0 and 1, ``integer`` when
    they are whole numbers, else None (a number). Read from the values, not the dtype: the
    store keeps every numeric feature as float64."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    try:
        v = pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        return None  # matrix() names the column
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    if np.isin(v, (0.0, 1.0)).all():
        return "boolean"
    if (v == np.trunc(v)).all():
        return "integer"
    return None


@dataclass(frozen=True)
class FeatureSchema:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # numeric column -> integer | boolean

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
            cats[col] = tuple(sorted({level(v) for v in values.unique()}))
        kinds = {c: k for c in numeric if (k := _numeric_kind(df[c])) is not None}
        return cls(tuple(numeric), tuple(categorical), cats, kinds)

    def boolean_like(self, col: str) -> bool:
        """Whether JSON ``true``/``false`` is a value of feature ``col``: a numeric column
        whose training values were booleans, or a categorical one whose known levels are
        ``"True"``/``"False"``.

        >>> s = FeatureSchema(("n", "flag"), ("member",), {"member": ("False", "True")},
        ...                   {"flag": "boolean"})
        >>> [s.boolean_like(c) for c in ("n", "flag", "member")]
        [False, True, True]
        """
        if col in self.categories:
            levels = self.categories[col]
            return bool(levels) and BOOLEAN_LEVELS.issuperset(levels)
        return self.kinds.get(col) == "boolean"

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
            [lookup.get(level(u), np.nan) for u in uniques] + [np.nan], dtype=np.float64
        )
        return table[codes]  # code -1 (missing) takes the last entry, NaN

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "categories": {k: list(v) for k, v in self.categories.items()},
            **({"kinds": dict(sorted(self.kinds.items()))} if self.kinds else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSchema:
        return cls(
            tuple(d["numeric"]),
            tuple(d["categorical"]),
            {k: tuple(v) for k, v in d.get("categories", {}).items()},
            dict(d.get("kinds", {})),  # absent in artifacts made before kinds were learned
        )

    def signature(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What must stay equal for a fine-tune (levels may grow, columns may not)."""
        return self.numeric, self.categorical
