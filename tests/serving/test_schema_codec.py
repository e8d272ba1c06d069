"""The predict codec with boolean-like features and unknown categories: its bulk path agrees
with its row-by-row checked path (values, ids, the unknown categories reported), a JSON
boolean is taken only where the feature is boolean-like, and batch predict's matrix
(``FeatureSchema.matrix``) gives the same codes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrainer.core.errors import InputError
from retrainer.families.schema import FeatureSchema
from retrainer.serving.predict import RowCodec, Unknown

SCHEMA = FeatureSchema(
    ("a", "flag"),
    ("plan", "member"),
    {"plan": ("basic", "gold"), "member": ("False", "True")},
    {"flag": "boolean"},
)

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.sampled_from(["basic", "gold", "platinum", "True", "False", "true"]),
)
row = st.fixed_dictionaries({"a": values, "flag": values, "plan": values, "member": values})


def codec(unknown: str) -> RowCodec:
    return RowCodec(SCHEMA, handles_missing=True, extra="ignore", unknown_category=unknown,
                    id_column="id", time_column="t")  # fmt: skip


def outcome(fn: Any, rows: list[Any]) -> Any:
    try:
        X, ids, unknown = fn(rows)
    except InputError as exc:
        return ("error", exc.details["errors"])
    return ("ok", np.where(np.isnan(X), -math.pi, X).tolist(), ids, unknown)


@pytest.mark.parametrize("unknown", ["reject", "accept"])
@settings(max_examples=200, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=5))
def test_bulk_and_checked_paths_agree(rows: list[Any], unknown: str) -> None:
    c = codec(unknown)
    assert outcome(c.encode, rows) == outcome(c._encode_checked, rows)


def test_booleans_where_boolean_like_and_unknowns_reported_in_bulk() -> None:
    c = codec("accept")
    rows = [
        {"a": 1.5, "flag": True, "plan": "gold", "member": False},
        {"a": 0, "flag": 0, "plan": "platinum", "member": "True"},
        {"a": 2, "flag": False, "plan": "basic", "member": True},
    ]
    fast = c._encode_clean(rows)
    assert fast is not None  # booleans and an unknown category stay on the bulk path
    X, _, unknown = fast
    assert np.isnan(X[1, 2]) and X[:, 1].tolist() == [1.0, 0.0, 0.0]
    assert X[:, 3].tolist() == [0.0, 1.0, 1.0]
    assert unknown == [Unknown(1, "plan", "platinum")]
    # the same values in a frame (batch predict) give the same matrix
    assert np.array_equal(SCHEMA.matrix(pd.DataFrame(rows)), X, equal_nan=True)
    with pytest.raises(InputError) as err:
        c.encode([{"a": True, "flag": 1, "plan": True, "member": None}])
    assert err.value.details["errors"] == [
        {"row": 0, "field": "a", "problem": "must be a number, got a boolean"},
        {"row": 0, "field": "plan", "problem": "must be a string or a number, got a boolean"},
    ]


def test_many_unknowns_in_bulk_are_in_row_order() -> None:
    c = codec("accept")
    rows = [{"a": 1.0, "flag": 1, "plan": p, "member": m}
            for p, m in [("x", "False"), ("gold", "maybe"), ("y", "nope")]]  # fmt: skip
    _, _, unknown = c.encode(rows)
    assert [(u.row, u.feature) for u in unknown] == [
        (0, "plan"), (1, "member"), (2, "plan"), (2, "member")
    ]  # fmt: skip


def test_kinds_are_learned_and_saved() -> None:
    df = pd.DataFrame({"x": [0.5, 1.0], "n": [1, 4], "f": [1.0, 0.0], "b": [True, False]})
    s = FeatureSchema.learn(df, ["x", "n", "f", "b"], [])
    assert s.kinds == {"n": "integer", "f": "boolean", "b": "boolean"}
    assert FeatureSchema.from_dict(s.to_dict()) == s
    old = {"numeric": ["x"], "categorical": [], "categories": {}}  # an artifact made before
    assert FeatureSchema.from_dict(old).kinds == {}
