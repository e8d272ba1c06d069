"""The gate's row minimum scales with the model's data when ``gate.min_rows`` is unset: the
holdout a full retrain of the window gets, between 30 and 100; a number set wins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from retrainer.core.errors import ConfigError
from retrainer.core.spec import parse_spec
from retrainer.core.spec_sections import Gate
from retrainer.evaluation.gate import run_gate
from retrainer.evaluation.min_rows import MIN_ROWS, MIN_ROWS_FLOOR, MinRows, min_rows_for


@pytest.mark.parametrize(
    ("holdout", "rows", "scaled"),
    [(0, 30, True), (6, 30, True), (29, 30, True), (30, 30, True), (60, 60, True),
     (99, 99, True), (100, 100, False), (101, 100, False), (200_000, 100, False)],
)  # fmt: skip
def test_unset_min_rows_is_the_holdout_between_30_and_100(
    holdout: int, rows: int, scaled: bool
) -> None:
    need = min_rows_for(Gate(), holdout, holdout * 5)
    assert (need.rows, need.scaled, need.configured) == (rows, scaled, None)
    assert (need.note is not None) == scaled


def test_a_set_min_rows_wins_and_an_unknown_window_keeps_100() -> None:
    assert min_rows_for(Gate(min_rows=100), 40, 200) == MinRows(100, 100, 40, 200)
    assert min_rows_for(Gate(min_rows=10), 5_000, 25_000).rows == 10
    assert min_rows_for(Gate(min_rows=40), 40, 200).note is None  # as configured: no note
    assert min_rows_for(Gate()).rows == MIN_ROWS and not min_rows_for(Gate()).scaled


def test_a_set_min_rows_keeps_its_validation() -> None:
    assert Gate().min_rows is None
    with pytest.raises(ValidationError, match="greater than or equal to 10"):
        Gate(min_rows=5)
    raw = {
        "models": {
            "m": {"task": "regression", "target": "y", "id_column": "id", "time_column": "t",
                  "features": {"numeric": ["x"]}, "gate": {"min_rows": 5}}
        }
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"gate\.min_rows"):
        parse_spec(raw, environ={})


def test_a_scaled_gate_judges_40_rows_and_says_how_it_scaled() -> None:
    y = np.arange(40.0)
    need = min_rows_for(Gate(), 40, 200)
    r = run_gate(y, y + 2, y + 1, task="regression", gate=Gate(), min_rows=need)
    assert r.verdict == "pass" and r.min_rows == 40 and r.p_value is not None
    assert r.min_rows_scaled == "scaled: the holdout of a window of 200 rows holds 40"
    assert "min_rows 40 (scaled: the holdout of a window of 200 rows holds 40)" in r.reasons
    short = run_gate(y[:35], y[:35] + 2, y[:35] + 1, task="regression", gate=Gate(), min_rows=need)
    assert short.verdict == "insufficient"
    assert short.reasons[0] == (
        "only 35 labelled rows to compare on; the gate needs 40 "
        "(scaled: the holdout of a window of 200 rows holds 40)"
    )
    assert short.to_dict()["min_rows_scaled"] == r.min_rows_scaled


def test_the_significance_test_still_guards_a_small_slice_against_noise() -> None:
    """A new recipe that is no better, only luckier on 40 rows, is not deployed."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=40)
    champion, challenger = y + rng.normal(size=40), y + rng.normal(size=40) * 0.97
    r = run_gate(y, champion, challenger, task="regression", gate=Gate(),
                 min_rows=min_rows_for(Gate(), 40, 200))  # fmt: skip
    assert r.verdict == "reject" and r.p_value is not None and r.p_value >= 0.05


def test_a_stream_too_short_is_insufficient_with_the_numbers_never_an_error() -> None:
    need = min_rows_for(Gate(), 4, 20)  # a window of 20 rows holds out 4
    assert need.rows == MIN_ROWS_FLOOR
    y = np.arange(4.0)
    r = run_gate(y, y, y + 1, task="regression", gate=Gate(), min_rows=need)
    assert r.verdict == "insufficient"
    assert r.reasons[0] == (
        "only 4 labelled rows to compare on; the gate needs 30 "
        "(scaled: the holdout of a window of 20 rows holds 4; 30 at the least)"
    )
    empty = run_gate(np.empty(0), np.empty(0), np.empty(0), task="regression", gate=Gate(),
                     min_rows=min_rows_for(Gate(), 0, 0))  # fmt: skip
    assert empty.verdict == "insufficient" and empty.n_rows == 0


def test_big_windows_keep_the_fine_tune_rules_of_today() -> None:
    big = min_rows_for(Gate(), 2_000, 10_000)
    assert big.fine_tune_rows_needed(0.1) == 1000
    assert [big.validation_rows(n, 0.1) for n in (50, 500, 999, 5_000)] == [5, 50, 100, 500]
    explicit = min_rows_for(Gate(min_rows=40), 40, 200)  # a number set: the fraction alone
    assert explicit.fine_tune_rows_needed(0.1) == 400 and explicit.validation_rows(100, 0.1) == 10


def test_a_small_window_judges_a_fine_tune_of_100_rows() -> None:
    small = min_rows_for(Gate(), 60, 300)
    assert small.fine_tune_rows_needed(0.1) == 90  # 60 to validate, 30 to learn from
    assert small.validation_rows(100, 0.1) == 60
    assert small.validation_rows(89, 0.1) == 9  # cannot reach 60 and leave 30: the fraction


@given(
    holdout=st.integers(0, 400),
    fraction=st.floats(0.01, 0.49),
    new_rows=st.integers(1, 3_000),
)
def test_rows_needed_is_where_the_slice_reaches_the_minimum_up_to_rounding(
    holdout: int, fraction: float, new_rows: int
) -> None:
    need = min_rows_for(Gate(), holdout, holdout * 5)
    needed = need.fine_tune_rows_needed(fraction)
    k = need.validation_rows(new_rows, fraction)
    assert 1 <= k <= max(1, new_rows - 2) or new_rows < 3
    assert (k >= need.rows) == (new_rows >= needed) or round(new_rows * fraction) >= need.rows
    assert need.validation_rows(needed, fraction) >= need.rows
