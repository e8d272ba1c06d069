import json

import numpy as np
import pandas as pd
import pytest

from retrainer.core.errors import ConfigError, QualityError
from retrainer.core.spec_sections import Quality
from retrainer.evaluation.quality import QualityReport, Violation, check_quality

NUMERIC = ["age", "income"]
CATEGORICAL = ["plan"]


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 0.3, n),
            "plan": rng.choice(["basic", "gold"], n),
            "churn": np.tile([0, 1], n // 2),
        }
    )


def check(df: pd.DataFrame, task: str = "classification", target: str = "churn", **rules):
    return check_quality(
        df,
        task=task,
        target=target,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        rules=Quality(**rules),
    )


def checks(report: QualityReport) -> list[tuple[str, str | None]]:
    return [(v.check, v.feature) for v in report.violations]


def test_clean_frame_passes():
    report = check(frame())
    assert report.ok and report.violations == ()
    assert report.n_rows == 200
    assert report.class_balance == {"0": 0.5, "1": 0.5}
    assert report.missing == {"age": 0.0, "income": 0.0, "plan": 0.0}
    assert set(report.outliers) == {"age", "income"}
    assert report.render() == "Data quality: ok (200 rows)\nclasses: 0 50.0%, 1 50.0%"
    report.raise_if_failed()  # no error


def test_min_rows_boundary():
    df = frame(100)
    assert check(df, min_rows=100).ok
    report = check(df, min_rows=101)
    assert checks(report) == [("min_rows", None)]
    v = report.violations[0]
    assert (v.value, v.limit) == (100, 101)
    assert v.message == "100 rows, below min_rows 101"


def test_missing_fraction_boundary_and_message():
    df = frame(100)
    df.loc[:19, "age"] = np.nan  # exactly 20%: at the limit passes
    assert check(df, max_missing_fraction=0.2).ok
    df.loc[:30, "age"] = np.nan  # 31%
    report = check(df, max_missing_fraction=0.2)
    assert checks(report) == [("missing", "age")]
    assert report.missing["age"] == pytest.approx(0.31)
    assert report.violations[0].message == (
        "feature 'age': 31.0% missing, above max_missing_fraction 20.0%"
    )


def test_missing_applies_to_categorical_features():
    df = frame(100)
    df.loc[:49, "plan"] = None
    report = check(df)
    assert checks(report) == [("missing", "plan")]


def test_missing_message_shows_enough_decimals_to_differ():
    df = frame(1000)
    df.loc[:200, "age"] = np.nan  # 20.1% against 20%
    assert "20.1% missing, above max_missing_fraction 20.0%" in check(df).violations[0].message
    df = frame(10_000)
    df.loc[:2000, "age"] = np.nan  # 20.01%
    assert "20.01% missing, above max_missing_fraction 20.00%" in check(df).violations[0].message


def test_outliers_beyond_six_iqr():
    df = frame(100)
    q1, q3 = df["age"].quantile([0.25, 0.75])
    fence = q3 + 6 * (q3 - q1)
    df.loc[:4, "age"] = fence * 0.99  # inside the fence: not outliers
    assert check(df).outliers["age"] == 0.0
    df.loc[:5, "age"] = 1e6  # 6 of 100 rows far out, limit 5%
    report = check(df, iqr_outliers="block")
    assert checks(report) == [("outliers", "age")]
    assert report.outliers["age"] == pytest.approx(0.06)
    assert report.violations[0].message == (
        "feature 'age': 6.0% of rows beyond 6 IQR, above max_outlier_fraction 5.0%"
    )


def test_an_iqr_outlier_share_warns_by_default_and_does_not_block():
    df = frame(100)
    df.loc[:5, "age"] = 1e6  # a heavy tail, judged by the IQR alone
    report = check(df)
    assert report.ok and report.outliers["age"] == pytest.approx(0.06)
    (warning,) = report.warnings
    assert (warning.check, warning.feature) == ("outliers", "age")
    assert "warning: feature 'age': 6.0% of rows beyond 6 IQR" in report.render()
    assert report.to_dict()["warnings"][0]["feature"] == "age"


def test_outlier_fraction_boundary():
    df = frame(100)
    df.loc[:4, "income"] = -1e9  # exactly 5%
    assert check(df, max_outlier_fraction=0.05, iqr_outliers="block").ok
    assert not check(df, max_outlier_fraction=0.04, iqr_outliers="block").ok


def test_outliers_against_explicit_range():
    df = frame(100)
    df.loc[:9, "age"] = 121.0  # within 6 IQR of these ages, but outside the declared range
    assert check(df).ok
    report = check(df, ranges={"age": (0, 120)})
    assert checks(report) == [("outliers", "age")]
    assert report.violations[0].message == (
        "feature 'age': 10.0% of rows outside [0, 120], above max_outlier_fraction 5.0%"
    )
    # the bounds are inclusive
    df.loc[:9, "age"] = 120.0
    assert check(df, ranges={"age": (0, 120)}).ok


def test_constant_quartiles_are_not_judged_by_iqr_but_infinity_is():
    df = frame(100)
    df["age"] = [0.0] * 90 + [1.0] * 10  # a flag: IQR is 0
    assert check(df).ok
    df.loc[:5, "age"] = np.inf
    assert checks(check(df)) == [("outliers", "age")]  # infinities block even by default
    assert "6.0% of rows infinite" in check(df).violations[0].message


def test_numeric_column_that_is_not_numeric():
    df = frame(100).astype({"age": object})
    df.loc[3, "age"] = "n/a"
    df.loc[7, "age"] = "forty"
    report = check(df)
    assert checks(report) == [("not_numeric", "age")]
    v = report.violations[0]
    assert v.value == pytest.approx(0.02) and v.limit == 0.0
    assert v.message == (
        "feature 'age': 2 value(s) not numeric (e.g. 'n/a'); fix them or declare the column "
        "categorical"
    )


def test_numbers_as_strings_and_booleans_are_numeric():
    df = frame(100)
    df["age"] = df["age"].round(1).astype(str)
    df["income"] = df["income"] > 20_000
    assert check(df).ok


def test_dates_are_not_numeric():
    df = frame(100)
    df["age"] = pd.date_range("2024-01-01", periods=100)
    assert checks(check(df)) == [("not_numeric", "age")]


def test_target_missing():
    df = frame(100).astype({"churn": float})
    df.loc[0, "churn"] = np.nan
    report = check(df)
    assert checks(report) == [("target_missing", "churn")]
    assert report.violations[0].message == (
        "target 'churn': 1 of 100 rows (1.0%) have no label; drop unlabelled rows before training"
    )
    # balance is over labelled rows, with float labels shown as integers
    assert set(report.class_balance) == {"0", "1"}


def test_class_fraction_boundary():
    df = frame(100)
    df["churn"] = [1] * 5 + [0] * 95
    assert check(df, min_class_fraction=0.05).ok
    report = check(df, min_class_fraction=0.06)
    assert checks(report) == [("class_fraction", "churn")]
    assert report.violations[0].message == (
        "target 'churn': class '1' is 5.0% of rows, below min_class_fraction 6.0%"
    )


def test_single_class_fails():
    df = frame(100)
    df["churn"] = 1
    report = check(df)
    assert checks(report) == [("min_classes", "churn")]
    assert report.class_balance == {"1": 1.0}


def test_class_labels_sort_numerically():
    df = frame(100)
    df["churn"] = [2] * 50 + [10] * 50
    assert list(check(df).class_balance) == ["2", "10"]


def test_regression_has_no_class_checks_but_a_numeric_target():
    df = frame(100)
    df["churn"] = 0.5  # a constant regression target is not a class problem
    report = check(df, task="regression")
    assert report.ok and report.class_balance == {}
    df = df.astype({"churn": object})
    df.loc[1, "churn"] = "high"
    assert checks(check(df, task="regression")) == [("not_numeric", "churn")]


def test_absent_columns_are_violations():
    df = frame(100).drop(columns=["income", "churn"])
    report = check(df)
    assert checks(report) == [("column_missing", "income"), ("column_missing", "churn")]
    assert report.violations[1].message.startswith("target 'churn': not a column of the data")
    assert "income" not in report.missing


def test_empty_frame_reports_instead_of_dividing_by_zero():
    report = check(frame(0))
    assert checks(report) == [("min_rows", None), ("min_classes", "churn")]
    assert report.missing == {"age": 0.0, "income": 0.0, "plan": 0.0}


def test_several_violations_render_as_a_table_and_raise():
    df = frame(50)
    df.loc[:19, "age"] = np.nan
    report = check(df)
    assert checks(report) == [("min_rows", None), ("missing", "age")]
    assert report.render().splitlines() == [
        "Data quality: FAILED, 2 violation(s) (50 rows)",
        "check     column  value  limit",
        "min_rows  -       50     100",
        "missing   age     40.0%  20.0%",
        "classes: 0 50.0%, 1 50.0%",
    ]
    with pytest.raises(QualityError, match="50 rows, below min_rows 100; feature 'age'") as info:
        report.raise_if_failed()
    assert info.value.code == "quality_failed"
    assert len(info.value.details["violations"]) == 2


def test_to_dict_is_json_safe():
    df = frame(50)
    df.loc[:19, "age"] = np.nan
    body = check(df).to_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["ok"] is False and body["n_rows"] == 50
    assert (
        body["violations"][1]
        == Violation(
            "missing",
            "age",
            0.4,
            0.2,
            "feature 'age': 40.0% missing, above max_missing_fraction 20.0%",
        ).to_dict()
    )


def test_bad_rules_are_config_errors():
    with pytest.raises(ConfigError, match="task must be one of classification, regression"):
        check(frame(), task="ranking")
    with pytest.raises(ConfigError, match=r"quality\.ranges names 'plan', which is not a numeric"):
        check(frame(), ranges={"plan": (0, 1)})
    with pytest.raises(ConfigError, match="low <= high"):
        check(frame(), ranges={"age": (120, 0)})
