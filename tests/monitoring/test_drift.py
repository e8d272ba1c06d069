"""Drift statistics equal scipy's on the same data; drift is decided on effect and significance."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from retrainer.core.errors import InputError
from retrainer.core.spec_sections import Drift
from retrainer.monitoring.drift import (
    CurrentAccumulator,
    CurrentStats,
    FeatureDrift,
    Status,
    drift_report,
    ks_against_sketch,
    ks_p_value,
    psi,
    summarize,
    wasserstein_against_sketch,
)
from retrainer.monitoring.reference import NumericReference, ReferenceStats

T = Drift()


def check(
    train: pd.DataFrame,
    window: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    thresholds: Drift = T,
    sketch_size: int = 2000,
    top_k: int = 100,
) -> dict[str, FeatureDrift]:
    ref = ReferenceStats.from_frame(
        train, numeric, categorical, sketch_size=sketch_size, top_k=top_k
    )
    acc = CurrentAccumulator(ref)
    acc.update(window)
    return {f.feature: f for f in drift_report(ref, acc.result(), thresholds)}


def numpy_psi(a: np.ndarray, b: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1) / len(a)
    q = np.bincount(np.searchsorted(edges, b, side="right"), minlength=len(edges) + 1) / len(b)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def binned(a: np.ndarray, b: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1]))
    n = len(edges) + 1
    return (
        np.bincount(np.searchsorted(edges, a, side="right"), minlength=n),
        np.bincount(np.searchsorted(edges, b, side="right"), minlength=n),
    )


samples = st.one_of(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=80),
    st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=80),  # heavy ties
)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy, n = 1
@settings(max_examples=150, deadline=None)
@given(a=samples, b=samples)
def test_exact_sketch_ks_and_wasserstein_equal_scipy(a: list[float], b: list[float]) -> None:
    ref = NumericReference.from_values(np.array(a))
    assert ref.exact
    y = np.sort(np.array(b))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert ks_against_sketch(ref, y) == pytest.approx(expected.statistic, abs=1e-12)
    w = wasserstein_against_sketch(ref, y)
    assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0, 0.5),
    scale=st.floats(0.5, 2),
    sketch_size=st.integers(100, 2000),
)
def test_sketch_statistics_stay_within_their_reported_bounds(
    seed: int, shift: float, scale: float, sketch_size: int
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(size=20_000)
    b = rng.lognormal(shift, scale, size=8_000)
    ref = NumericReference.from_values(a, sketch_size=sketch_size)
    y = np.sort(b)
    ks = ks_against_sketch(ref, y)
    assert abs(ks - stats.ks_2samp(a, b).statistic) <= ref.ks_bound + 1e-12
    w = wasserstein_against_sketch(ref, y)
    assert abs(w - stats.wasserstein_distance(a, b)) <= ref.wasserstein_bound + 1e-9


def test_report_statistics_equal_scipy_on_the_same_data() -> None:
    rng = np.random.default_rng(7)
    n, m = 3_000, 2_000
    train = pd.DataFrame(
        {"x": rng.gamma(2.0, size=n), "c": rng.choice(list("abcd"), n, p=[0.4, 0.3, 0.2, 0.1])}
    )
    window = pd.DataFrame(
        {"x": rng.gamma(2.2, size=m), "c": rng.choice(list("abcd"), m, p=[0.3, 0.3, 0.3, 0.1])}
    )
    out = check(train, window, ["x"], ["c"], sketch_size=5_000)
    x, c = out["x"], out["c"]
    a, b = train["x"].to_numpy(), window["x"].to_numpy()
    ks = stats.ks_2samp(a, b, method="asymp")
    assert x.ks == pytest.approx(ks.statistic, abs=1e-12)
    assert x.ks_p_value == pytest.approx(ks.pvalue, rel=1e-9)
    assert x.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)
    assert x.psi == pytest.approx(numpy_psi(a, b), rel=1e-12)
    p, q = binned(a, b)
    assert x.jensen_shannon == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    assert (x.ks_bound, x.wasserstein_bound, x.chi2) == (0.0, 0.0, None)

    table = pd.crosstab(
        pd.concat([train["c"], window["c"]]), np.r_[np.zeros(n), np.ones(m)]
    ).to_numpy()
    chi2 = stats.chi2_contingency(table.T)
    assert c.chi2 == pytest.approx(chi2.statistic, rel=1e-12)
    assert c.chi2_p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert c.jensen_shannon == pytest.approx(jensenshannon(table[:, 0], table[:, 1], base=2))
    assert c.ks is None and c.wasserstein is None
    assert c.drift and x.drift


def test_ks_p_value_matches_scipy_and_is_fast_for_large_samples() -> None:
    for d in (0.001, 0.01, 0.03, 0.1, 0.5):
        assert ks_p_value(d, 5_000, 3_000) == pytest.approx(
            stats.kstwo.sf(d, round(5_000 * 3_000 / 8_000)), rel=1e-12
        )
    # past en = 10,000 and below p = 0.05: Kolmogorov's limit, within about 1% near p = 0.01
    n = m = 1_000_000
    d = 1.63 / math.sqrt(n * m / (n + m))
    assert ks_p_value(d, n, m) == pytest.approx(0.00983121, rel=0.01)


def test_psi_floors_empty_bins() -> None:
    value = psi(np.array([100, 0]), np.array([50, 50]))
    assert math.isfinite(value) and value == pytest.approx(
        (0.5 - 1.0) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    )


def test_nan_is_removed_reported_and_never_read_as_no_drift() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=4_000)
    b = rng.normal(1.0, size=3_000)
    a[::10] = np.nan  # 10% missing in training
    b[::20] = np.nan  # 5% missing in the window
    assert math.isnan(stats.ks_2samp(a, b).pvalue)  # the pitfall: p = NaN
    x = check(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), ["x"], [], sketch_size=10_000)["x"]
    a_, b_ = a[~np.isnan(a)], b[~np.isnan(b)]
    assert x.ks == pytest.approx(stats.ks_2samp(a_, b_).statistic, abs=1e-12)
    assert (x.n_reference, x.n_current) == (3_600, 2_850)
    assert x.missing_reference == pytest.approx(0.10)
    assert x.missing_current == pytest.approx(0.05)
    assert x.drift and x.ks_p_value is not None and x.ks_p_value < 1e-10


def test_a_jump_in_missing_rate_is_a_drift_reason() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=5_000)
    b = rng.normal(size=5_000)
    b[: 5_000 // 4] = np.nan  # 0% -> 25% missing, same distribution otherwise
    c = np.array(["u", "v"], dtype=object)[rng.integers(0, 2, 5_000)]
    d = c.copy()
    d[:400] = None  # 0% -> 8% missing: a small jump, but from nothing (PSI 0.34)
    out = check(pd.DataFrame({"x": a, "c": c}), pd.DataFrame({"x": b, "c": d}), ["x"], ["c"])
    assert out["x"].drift and out["x"].reasons[0].startswith("missing rate rose from 0.0% to 25.0%")
    assert out["x"].ks is not None and out["x"].ks < T.ks  # the values themselves did not move
    assert out["c"].drift and "missing rate rose" in out["c"].reasons[0]


def test_all_missing_window_is_drift_not_lack_of_data() -> None:
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"x": rng.normal(size=1_000)})
    x = check(train, pd.DataFrame({"x": np.full(500, np.nan)}), ["x"], [])["x"]
    assert x.drift and x.status == "drift" and x.ks is None
    assert "missing rate rose from 0.0% to 100.0%" in x.reasons[0]


def test_too_few_current_rows_is_not_enough_data_never_drift() -> None:
    rng = np.random.default_rng(4)
    train = pd.DataFrame({"x": rng.normal(size=1_000), "c": rng.choice(list("ab"), 1_000)})
    window = pd.DataFrame({"x": rng.normal(10, size=150), "c": ["z"] * 150})  # wildly off
    out = check(train, window, ["x"], ["c"])
    for f in out.values():
        assert (f.drift, f.status) == (False, "not_enough_data")
        assert f.reasons == ("only 150 current rows; need at least 200",)
    summary = summarize(list(out.values()), T)
    assert (summary.n_checked, summary.share, summary.drift) == (0, 0.0, False)
    assert summary.not_enough_data == ("x", "c")


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dist=st.sampled_from(["normal", "exponential", "poisson", "uniform"]),
)
def test_identical_distributions_do_not_drift_at_large_n(seed: int, dist: str) -> None:
    rng = np.random.default_rng(seed)
    n = 40_000

    def draw(size: int) -> np.ndarray:
        if dist == "poisson":
            return rng.poisson(3, size).astype(float)
        return np.asarray(getattr(rng, dist)(size=size))

    labels = np.array([f"k{i}" for i in range(12)], dtype=object)
    probs = np.linspace(1, 3, 12) / np.linspace(1, 3, 12).sum()
    train = pd.DataFrame({"x": draw(n), "c": labels[rng.choice(12, n, p=probs)]})
    window = pd.DataFrame({"x": draw(n), "c": labels[rng.choice(12, n, p=probs)]})
    out = check(train, window, ["x"], ["c"])
    assert not out["x"].drift and not out["c"].drift


def test_a_tiny_but_significant_shift_is_not_drift() -> None:
    rng = np.random.default_rng(5)
    n = 200_000
    train = pd.DataFrame({"x": rng.normal(size=n)})
    window = pd.DataFrame({"x": rng.normal(0.03, size=n)})
    x = check(train, window, ["x"], [])["x"]
    assert x.ks_p_value is not None and x.ks_p_value < 1e-10  # p alone would flag it
    assert not x.drift
    assert x.reasons[0].startswith("significant (KS p = ")


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0.5, 3.0),
    n=st.integers(500, 5_000),
)
def test_shifted_distributions_drift(seed: int, shift: float, n: int) -> None:
    rng = np.random.default_rng(seed)
    train = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(list("abc"), n)})
    window = pd.DataFrame(
        {"x": rng.normal(shift, size=n), "c": rng.choice(list("abc"), n, p=[0.7, 0.2, 0.1])}
    )
    out = check(train, window, ["x"], ["c"])
    assert out["x"].drift and any(r.startswith("KS D") for r in out["x"].reasons)
    assert out["c"].drift


def test_unseen_categories_in_the_window() -> None:
    rng = np.random.default_rng(6)
    train = pd.DataFrame({"c": rng.choice(list("abc"), 3_000)})
    cur = rng.choice(list("abc"), 3_000).astype(object)
    cur[:600] = "new"
    cur[600:660] = "newer"
    c = check(train, pd.DataFrame({"c": cur}), [], ["c"])["c"]
    assert c.unseen == ("new", "newer")
    assert c.unseen_share == pytest.approx(660 / 3_000)
    assert c.drift and any(
        "unseen categories (22.0% of rows): 'new', 'newer'" in r for r in c.reasons
    )
    # scipy on the same table, the unseen categories lumped in one column as the report does
    lumped = np.where(np.isin(cur, ["new", "newer"]), "~unseen", cur)
    table = pd.crosstab(
        np.r_[train["c"].to_numpy(), lumped], np.r_[np.zeros(3_000), np.ones(3_000)]
    ).to_numpy()
    assert c.chi2 == pytest.approx(stats.chi2_contingency(table).statistic, rel=1e-12)


def test_categories_beyond_top_k_are_compared_as_other_not_as_unseen() -> None:
    train = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 300 + ["r1"] * 10 + ["r2"] * 10})
    window = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 300 + ["r2"] * 10 + ["r3"] * 10})
    c = check(train, window, [], ["c"], top_k=2)["c"]
    assert c.unseen == () and c.unseen_share is None  # rare training categories were lumped
    assert c.chi2 == pytest.approx(0.0) and not c.drift


frames = st.integers(1, 400).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "x": st.lists(
                st.one_of(st.floats(-100, 100), st.just(math.nan)), min_size=n, max_size=n
            ),
            "c": st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=n, max_size=n),
        }
    )
)


@settings(max_examples=40, deadline=None)
@given(data=frames, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_chunked_accumulation_equals_one_shot(
    data: dict[str, list[object]], cuts: list[int]
) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=500) * 50, "c": rng.choice(list("abc"), 500)})
    ref = ReferenceStats.from_frame(train, ["x"], ["c"], top_k=2)
    window = pd.DataFrame({"x": pd.Series(data["x"], dtype=float), "c": data["c"]})
    one = CurrentAccumulator(ref)
    one.update(window)
    many = CurrentAccumulator(ref)
    bounds = [0, *sorted(min(c, len(window)) for c in cuts), len(window)]
    for lo, hi in itertools.pairwise(bounds):
        many.update(window.iloc[lo:hi])
    a, b = one.result(), many.result()
    assert_same(a, b)
    thresholds = Drift(min_samples=10)
    assert drift_report(ref, a, thresholds) == drift_report(ref, b, thresholds)


def assert_same(a: CurrentStats, b: CurrentStats) -> None:
    assert a.n_rows == b.n_rows and a.categorical == b.categorical
    np.testing.assert_array_equal(a.numeric["x"].values, b.numeric["x"].values)
    assert a.numeric["x"].n_missing == b.numeric["x"].n_missing


def test_update_after_result_keeps_accumulating_and_results_are_read_only() -> None:
    ref = ReferenceStats.from_frame(pd.DataFrame({"x": [1.0, 2.0]}), ["x"], [])
    acc = CurrentAccumulator(ref)
    acc.update(pd.DataFrame({"x": [3.0, 1.0]}))
    first = acc.result()
    acc.update(pd.DataFrame({"x": [2.0, np.inf]}))
    second = acc.result()
    assert first.numeric["x"].values.tolist() == [1.0, 3.0]
    assert second.numeric["x"].values.tolist() == [1.0, 2.0, 3.0]
    assert (second.n_rows, second.numeric["x"].n_missing) == (4, 1)
    with pytest.raises(ValueError):
        second.numeric["x"].values[0] = 9.0


def test_empty_accumulator_reports_not_enough_data() -> None:
    ref = ReferenceStats.from_frame(pd.DataFrame({"x": [1.0], "c": ["a"]}), ["x"], ["c"])
    report = drift_report(ref, CurrentAccumulator(ref).result(), T)
    assert [f.status for f in report] == ["not_enough_data", "not_enough_data"]


def test_missing_column_in_a_chunk_names_it() -> None:
    ref = ReferenceStats.from_frame(pd.DataFrame({"x": [1.0], "c": ["a"]}), ["x"], ["c"])
    with pytest.raises(InputError, match=r"no column\(s\) \['c'\]\. Columns present: \['x'\]"):
        CurrentAccumulator(ref).update(pd.DataFrame({"x": [1.0]}))


def test_current_stats_of_another_reference_are_rejected() -> None:
    ref = ReferenceStats.from_frame(pd.DataFrame({"x": [1.0], "y": [2.0]}), ["x", "y"], [])
    other = ReferenceStats.from_frame(pd.DataFrame({"x": [1.0]}), ["x"], [])
    with pytest.raises(InputError, match=r"lack feature\(s\) \['y'\]"):
        drift_report(ref, CurrentAccumulator(other).result(), T)


def test_summary_shares_and_thresholds() -> None:
    def f(name: str, drift: bool, status: Status | None = None) -> FeatureDrift:
        status = status or ("drift" if drift else "no_drift")
        return FeatureDrift(name, "numeric", drift, status, 500, 500, 0.0, 0.0)

    t = Drift(share=0.3, critical_share=0.6)
    report = [
        f("a", True),
        f("b", True),
        f("c", False),
        f("d", False),
        f("e", False, "not_enough_data"),
    ]
    s = summarize(report, t)
    assert (s.n_features, s.n_checked, s.n_drifted, s.share) == (5, 4, 2, 0.5)
    assert (s.drift, s.critical, s.drifted, s.not_enough_data) == (True, False, ("a", "b"), ("e",))
    assert summarize(report[:2] + report[2:3], t).critical  # 2 of 3
    assert not summarize(report[2:], t).drift
    assert json.loads(json.dumps(s.to_dict()))["drifted"] == ["a", "b"]


def test_report_rows_are_json_serialisable() -> None:
    rng = np.random.default_rng(8)
    train = pd.DataFrame({"x": rng.normal(size=1_000), "c": rng.choice(list("ab"), 1_000)})
    out = check(train, train, ["x"], ["c"])
    rows = json.loads(json.dumps([f.to_dict() for f in out.values()], allow_nan=False))
    assert rows[0]["feature"] == "x" and rows[0]["ks"] == 0.0 and rows[1]["chi2"] == 0.0


def test_a_fall_in_missing_rate_is_a_drift_reason_too() -> None:
    rng = np.random.default_rng(9)
    a = rng.normal(size=4_000)
    a[:1_000] = np.nan  # 25% missing in training, none now (imputed upstream, say)
    x = check(pd.DataFrame({"x": a}), pd.DataFrame({"x": rng.normal(size=4_000)}), ["x"], [])["x"]
    assert x.drift and x.reasons[0].startswith("missing rate fell from 25.0% to 0.0%")


def test_sketch_statistics_refuse_unsorted_or_missing_values() -> None:
    ref = NumericReference.from_values(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InputError, match="sorted and finite"):
        ks_against_sketch(ref, np.array([2.0, 1.0]))
    with pytest.raises(InputError, match="sorted and finite"):
        wasserstein_against_sketch(ref, np.array([1.0, np.nan]))
    with pytest.raises(InputError, match="got 3 reference and 0 current values"):
        ks_against_sketch(ref, np.array([]))
