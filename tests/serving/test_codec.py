"""The predict codec's bulk path agrees with its row-by-row checked path on every input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrainer.core.errors import InputError
from retrainer.families.schema import FeatureSchema
from retrainer.serving.predict import RowCodec

SCHEMA = FeatureSchema(("a", "b"), ("plan",), {"plan": ("basic", "gold")})

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(),
    st.none(),
    st.sampled_from(["basic", "gold", "platinum", "x"]),
    st.lists(st.integers(), max_size=1),
)
entity = st.one_of(st.text(max_size=3), st.integers(0, 9), st.text(min_size=129, max_size=130))
clean = st.fixed_dictionaries(
    {
        "a": st.floats(-1e6, 1e6),
        "b": st.integers(-5, 5),
        "plan": st.sampled_from(["basic", "gold"]),
    },
    optional={"entity_id": entity},
)
keys = st.sampled_from(["a", "b", "plan", "entity_id", "member_id", "t", "extra"])
row = st.dictionaries(keys, values) | clean


def outcome(fn: Any, rows: list[Any]) -> Any:
    try:
        X, ids, unknown = fn(rows)
    except InputError as exc:
        return ("error", exc.details["errors"])
    return ("ok", np.where(np.isnan(X), -math.pi, X).tolist(), ids, unknown)


@pytest.mark.parametrize("handles_missing", [True, False])
@pytest.mark.parametrize("extra", ["ignore", "forbid"])
@pytest.mark.parametrize("unknown", ["reject", "accept"])
@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row | st.integers(), min_size=1, max_size=4))
def test_bulk_and_checked_paths_agree(
    rows: list[Any], handles_missing: bool, extra: str, unknown: str
) -> None:
    codec = RowCodec(
        SCHEMA,
        handles_missing=handles_missing,
        extra=extra,
        unknown_category=unknown,
        id_column="member_id",
        time_column="t",
    )
    assert outcome(codec.encode, rows) == outcome(codec._encode_checked, rows)


def test_the_bulk_path_takes_clean_rows() -> None:
    codec = RowCodec(SCHEMA, handles_missing=False, extra="forbid", unknown_category="reject",
                     id_column="member_id", time_column="t")  # fmt: skip
    rows = [
        {"a": 1.5, "b": 2, "plan": "gold", "member_id": 7},
        {"a": 0.0, "b": -1, "plan": "basic"},
    ]
    got = codec._encode_clean(rows)
    assert got is not None
    X, ids, unknown = got
    assert X.tolist() == [[1.5, 2.0, 1.0], [0.0, -1.0, 0.0]] and ids == ["7", None]
    assert unknown == []
    assert codec._encode_clean([{"a": True, "b": 2, "plan": "gold"}]) is None  # checked path
