"""Reference statistics: what they hold, their sketch's accuracy, and the exact round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrainer.core.errors import InputError
from retrainer.monitoring.reference import (
    CategoricalReference,
    NumericReference,
    ReferenceStats,
    category_counts,
)


def ecdf(sample: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(sample), x, side="right") / len(sample)


def test_numeric_summary_counts_nan_none_and_inf_as_missing() -> None:
    df = pd.DataFrame({"x": pd.array([1.0, 2.0, None, 4.0, np.inf, 5.0], dtype="Float64")})
    r = ReferenceStats.from_frame(df, ["x"], []).numeric["x"]
    assert (r.count, r.n_missing) == (4, 2)
    assert r.missing_rate == pytest.approx(2 / 6)
    values = np.array([1.0, 2.0, 4.0, 5.0])
    assert r.mean == pytest.approx(values.mean())
    assert r.std == pytest.approx(values.std(ddof=1))
    assert (r.min, r.max) == (1.0, 5.0)
    assert r.exact and r.knots == (1.0, 2.0, 4.0, 5.0)


def test_integer_and_boolean_columns_are_numeric() -> None:
    df = pd.DataFrame({"i": [1, 2, 2, 3], "b": [True, False, True, True]})
    ref = ReferenceStats.from_frame(df, ["i", "b"], [])
    assert ref.numeric["i"].count_le == (1, 3, 4)
    assert ref.numeric["b"].knots == (0.0, 1.0)


def test_bins_are_reference_deciles_with_exact_counts() -> None:
    x = np.random.default_rng(3).exponential(size=10_000)
    r = NumericReference.from_values(x)
    assert r.bin_edges == pytest.approx(np.quantile(x, np.linspace(0, 1, 11)[1:-1]))
    expected = np.bincount(np.searchsorted(np.asarray(r.bin_edges), x, side="right"))
    assert r.bin_counts == tuple(expected.tolist())
    assert sum(r.bin_counts) == 10_000


def test_tied_deciles_collapse_to_distinct_edges() -> None:
    x = np.concatenate([np.zeros(900), np.arange(1.0, 101.0)])
    r = NumericReference.from_values(x)
    assert len(set(r.bin_edges)) == len(r.bin_edges)
    assert r.bin_counts[0] == 0 and r.bin_counts[1] == 900


def test_small_or_discrete_columns_get_an_exact_sketch() -> None:
    rng = np.random.default_rng(0)
    x = rng.poisson(4, size=100_000).astype(float)  # many rows, few distinct values
    r = NumericReference.from_values(x, sketch_size=200)
    assert r.exact and r.ks_bound == 0.0 and r.wasserstein_bound == 0.0
    probe = np.linspace(-1, 20, 301)
    np.testing.assert_allclose(r.cdf(probe), ecdf(x, probe), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3_000, 30_000),
    sketch_size=st.integers(50, 1_500),
    dist=st.sampled_from(["normal", "lognormal", "mixed"]),
)
def test_sketch_cdf_stays_within_its_bound(seed: int, n: int, sketch_size: int, dist: str) -> None:
    rng = np.random.default_rng(seed)
    if dist == "normal":
        x = rng.normal(size=n)
    elif dist == "lognormal":
        x = rng.lognormal(sigma=2, size=n)
    else:  # a point mass and a continuous part
        x = np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n))
    r = NumericReference.from_values(x, sketch_size=sketch_size)
    assert len(r.knots) <= sketch_size
    assert r.ks_bound <= 1.0 / (sketch_size - sketch_size // 4 - 1) + 1.0 / n + 1e-12
    probe = np.concatenate([rng.choice(x, 500), np.asarray(r.knots), [x.min() - 1, x.max() + 1]])
    assert np.max(np.abs(r.cdf(probe) - ecdf(x, probe))) <= r.ks_bound + 1e-12


def test_categorical_top_k_with_other() -> None:
    s = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None, np.nan])
    r = CategoricalReference.from_series(s, top_k=2)
    assert (r.categories, r.counts) == (("a", "b"), (5, 3))
    assert (r.other_count, r.n_other, r.count, r.n_missing) == (3, 2, 11, 2)
    assert r.missing_rate == pytest.approx(2 / 13)


def test_categories_compare_by_string_form() -> None:
    counts, missing = category_counts(pd.Series([1, 2, 2, None], dtype="Int64"))
    assert counts == {"1": 1, "2": 2} and missing == 1
    counts, _ = category_counts(pd.Series(pd.Categorical(["x", "y"], categories=["x", "y", "z"])))
    assert counts == {"x": 1, "y": 1}  # unused categories of a Categorical are not counted


def test_all_missing_numeric_column() -> None:
    ref = ReferenceStats.from_frame(pd.DataFrame({"x": [np.nan, np.nan]}), ["x"], [])
    r = ref.numeric["x"]
    assert (r.count, r.n_missing, r.mean, r.knots, r.ks_bound) == (0, 2, None, (), 0.0)
    assert ReferenceStats.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref


frames = st.integers(1, 60).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "x": st.lists(
                st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
                min_size=n,
                max_size=n,
            ),
            "k": st.lists(st.integers(-3, 3), min_size=n, max_size=n),
            "c": st.lists(st.one_of(st.none(), st.text(max_size=3)), min_size=n, max_size=n),
        }
    )
)


@settings(max_examples=60, deadline=None)
@given(data=frames, sketch_size=st.integers(2, 20), top_k=st.integers(1, 5))
def test_round_trip_through_json_is_exact(
    data: dict[str, list[object]], sketch_size: int, top_k: int
) -> None:
    df = pd.DataFrame({"x": pd.Series(data["x"], dtype="float64"), "k": data["k"], "c": data["c"]})
    ref = ReferenceStats.from_frame(
        df, ["x", "k"], ["c"], model_version="1.2.0", sketch_size=sketch_size, top_k=top_k
    )
    text = json.dumps(ref.to_dict(), allow_nan=False)  # strict JSON: no NaN or infinity
    back = ReferenceStats.from_dict(json.loads(text))
    assert back == ref
    assert back.to_dict() == ref.to_dict()
    assert back.model_version == "1.2.0"


def test_unknown_column_names_the_columns_and_the_fix() -> None:
    df = pd.DataFrame({"a": [1.0]})
    with pytest.raises(InputError, match=r"no column\(s\) \['b'\]. Columns present: \['a'\]"):
        ReferenceStats.from_frame(df, ["a"], ["b"])


def test_feature_listed_twice_is_an_error() -> None:
    with pytest.raises(InputError, match="more than once"):
        ReferenceStats.from_frame(pd.DataFrame({"a": [1.0]}), ["a"], ["a"])


def test_text_in_a_numeric_feature_is_an_error() -> None:
    with pytest.raises(
        InputError, match=r"Numeric feature 'a' has dtype .* list it as categorical"
    ):
        ReferenceStats.from_frame(pd.DataFrame({"a": ["x", "y"]}), ["a"], [])


def test_empty_frame_and_bad_settings_are_errors() -> None:
    with pytest.raises(InputError, match="no rows"):
        ReferenceStats.from_frame(pd.DataFrame({"a": pd.Series([], dtype=float)}), ["a"], [])
    with pytest.raises(InputError, match=r"'bins' parameter .* must be an int >= 2\. Got 1"):
        ReferenceStats.from_frame(pd.DataFrame({"a": [1.0]}), ["a"], [], bins=1)


def test_from_dict_rejects_other_formats_and_malformed_input() -> None:
    good = ReferenceStats.from_frame(pd.DataFrame({"a": [1.0, 2.0]}), ["a"], []).to_dict()
    with pytest.raises(InputError, match="format 2; this retrainer reads format 1"):
        ReferenceStats.from_dict({**good, "format": 2})
    broken = {**good, "numeric": {"a": {"count": 2}}}
    with pytest.raises(InputError, match="malformed: KeyError"):
        ReferenceStats.from_dict(broken)
    inconsistent = json.loads(json.dumps(good))
    inconsistent["numeric"]["a"]["count_le"] = [1]
    with pytest.raises(InputError, match="2 knots but 1 count_le"):
        ReferenceStats.from_dict(inconsistent)
