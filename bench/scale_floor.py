"""The child processes of ``bench.scale`` besides ``retrainer``: the data generator, and the
floors, the least work each data-path step needs, one step per process.

    python -m bench.scale_floor generate FOLDER ROWS   (rows.csv, score.csv, actuals.csv)
    python -m bench.scale_floor ingest ROWS_CSV OUT_PARQUET
    python -m bench.scale_floor train ROWS_PARQUET RECIPE_JSON
    python -m bench.scale_floor predict SCORE_CSV RECIPE_JSON OUT_CSV
    python -m bench.scale_floor feedback ACTUALS_CSV SCORED_CSV OUT_PARQUET
    python -m bench.scale_floor compare OURS_CSV FLOOR_CSV    (a check, not timed)

``bench.scale`` times each floor as a whole process (interpreter start and imports
included, like the ``retrainer`` step it stands beside). Each imports only what it uses, inside
its function. RECIPE_JSON is written by ``bench.scale`` from ``retrainer versions --detail
--json`` and the trained artifact: the column names, the recipe's parameters, the holdout and
early-stopping fractions, the rounds of the final fit, and the artifact's path.
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from .common import emit

# retrainer's default threads: every fit on the CPUs this process may use (its num_threads
# default was a fixed 2, this machine's count); a prediction on one thread below BATCH_ROWS rows
# (a request's rows) and on the training count from there (a batch file).
CPUS = len(os.sched_getaffinity(0))
BATCH_ROWS = 10_000
# The data: one model's columns, and how they are drawn.
DATA_FORMAT = 1  # bump when the generator changes: cached files are then made again
SEED = 20261206
NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = ["segment", "city"]
SEGMENTS = {"A": 0.0, "B": 0.6, "C": -0.4, "D": 1.2}
CITIES = [f"c{k:02d}" for k in range(30)]
ID, TIME, TARGET = "customer_id", "event_time", "converted"
START, DAYS = "2026-01-01", 60


def predict_threads(rows: int) -> int:
    return 1 if rows < BATCH_ROWS else CPUS


# -- the data -----------------------------------------------------------------------------


def _frame(n: int, seed: int, first_day: int, days: int, prefix: str) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)  # ids not in time order
    step = days * 86_400 / n
    cols: dict[str, Any] = {
        ID: np.char.add(prefix, np.char.zfill(order.astype("U8"), 8)),
        TIME: pd.Timestamp(START)
        + pd.Timedelta(days=first_day)
        + pd.to_timedelta((np.arange(n) * step).astype(np.int64), "s"),
    }
    for i, name in enumerate(NUMERIC):
        x = rng.normal(i % 7, 1 + (i % 5) / 2, n) if i % 3 else rng.gamma(2.0, 10.0 + i, n)
        x = np.round(x, 4)
        if i >= 16:
            x[rng.random(n) < 0.01] = np.nan
        cols[name] = x
    cols["segment"] = rng.choice(list(SEGMENTS), n, p=[0.4, 0.3, 0.2, 0.1])
    weight = 1 / np.arange(1, len(CITIES) + 1)
    cols["city"] = rng.choice(CITIES, n, p=weight / weight.sum())
    df = pd.DataFrame(cols)

    def std(col: str) -> Any:
        return (df[col] - df[col].mean()) / df[col].std()

    z = (
        -1.0
        + 0.9 * std("x01")
        - 0.7 * std("x02")
        + 0.5 * std("x03")
        + 0.5 * np.tanh(std("x04") * 2)
        + df["segment"].map(SEGMENTS).to_numpy()
        + 0.4 * df["city"].isin(CITIES[:3]).to_numpy()
    )
    df[TARGET] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return df


def _write_csv(df: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrow = pa.Table.from_pandas(df, preserve_index=False)
    if TIME in df.columns:
        i = arrow.schema.get_field_index(TIME)
        arrow = arrow.set_column(i, TIME, arrow[TIME].cast(pa.timestamp("s")))
    pacsv.write_csv(arrow, path)


def generate(folder: Path, n: int) -> dict[str, Any]:
    """Write rows.csv, score.csv and actuals.csv for ``n`` rows into ``folder``."""
    rows = _frame(n, SEED, 0, DAYS, "c")
    _write_csv(rows, folder / "rows.csv")
    positive = float(rows[TARGET].mean())
    del rows
    new = _frame(n, SEED + 1, DAYS, 1, "n")
    _write_csv(new[[ID, *NUMERIC, *CATEGORICAL]], folder / "score.csv")
    _write_csv(new[[ID, TIME, TARGET]], folder / "actuals.csv")
    return {"rows": n, "positive": positive}


# -- the floors ---------------------------------------------------------------------------


def ingest(rows_csv: Path, out: Path) -> dict[str, Any]:
    """pandas reads the CSV with the pyarrow engine into Arrow-backed columns (the event time
    parsed as a timestamp by the reader); the same rows go to Parquet, no validation."""
    import pandas as pd

    df = pd.read_csv(rows_csv, engine="pyarrow", dtype_backend="pyarrow")
    df.to_parquet(out, index=False)
    return {"rows": len(df)}


def _booster_params(recipe: dict[str, Any]) -> dict[str, Any]:
    """What ``LightGBMModel._booster_params`` passes to ``lgb.train`` for a binary target."""
    params = {
        k: v
        for k, v in recipe["params"].items()
        if k not in ("n_estimators", "early_stopping_rounds")
    }
    params.update(
        verbosity=-1,
        seed=recipe["seed"],
        deterministic=True,
        force_row_wise=True,
        num_threads=recipe["params"].get("num_threads", CPUS),
        objective="binary",
    )
    return params


def train(rows_parquet: Path, recipe_path: Path) -> dict[str, Any]:
    """The LightGBM fits ``fit_family`` makes, on the same float matrix, in the same order:

    1. evaluation fit on the oldest (1 - holdout) of the rows, early stopping on its newest
       10% (cap ``n_estimators``, patience ``early_stopping_rounds``), then a predict of the
       holdout (its metrics);
    2. when 1 stopped before the cap: the settling fit, the same on every row;
    3. the final fit on every row with the rounds of the trained artifact (retrainer: the larger
       of the two early-stopping estimates).
    """
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    recipe = json.loads(recipe_path.read_text())
    numeric, categorical = recipe["numeric"], recipe["categorical"]
    df = pd.read_parquet(rows_parquet, columns=[*numeric, *categorical, recipe["target"]])
    X = np.empty((len(df), len(numeric) + len(categorical)), dtype=np.float64)
    X[:, : len(numeric)] = df[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    for k, col in enumerate(categorical):  # codes of the sorted levels, missing as NaN
        codes = pd.Categorical(df[col], categories=sorted(df[col].dropna().unique())).codes
        X[:, len(numeric) + k] = np.where(codes < 0, np.nan, codes)
    y = df[recipe["target"]].to_numpy(dtype=np.int64)
    del df
    params = _booster_params(recipe)
    cap = int(recipe["params"]["n_estimators"])
    patience = int(recipe["params"]["early_stopping_rounds"])
    cats = list(range(len(numeric), X.shape[1]))

    def dataset(rows: slice, ref: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            X[rows], label=y[rows], categorical_feature=cats, reference=ref, free_raw_data=False
        )

    def early_stopped(stop: int) -> int:
        cut = stop - int(stop * recipe["early_stop_fraction"])
        fit_rows = dataset(slice(0, cut))
        booster = lgb.train(
            params,
            fit_rows,
            num_boost_round=cap,
            valid_sets=[dataset(slice(cut, stop), fit_rows)],
            callbacks=[lgb.early_stopping(patience, verbose=False)],
        )
        if stop < len(y):
            booster.predict(X[stop:], num_threads=params["num_threads"])  # the holdout
        return int(booster.best_iteration or booster.current_iteration())

    n = len(y)
    n_hold = max(1, round(n * recipe["holdout_fraction"]))
    first = early_stopped(n - n_hold)
    second = early_stopped(n) if first < cap else None
    rounds = int(recipe["rounds"] or max(first, second or first))  # none given: as retrainer
    final = lgb.train(params, dataset(slice(0, n)), num_boost_round=rounds)
    return {
        "rows": n,
        "fits": 3 if second is not None else 2,
        "eval_rounds": first,
        "settle_rounds": second,
        "final_rounds": final.current_iteration(),
        "own_estimate": max(first, second or first),
    }


def _artifact(path: str) -> tuple[str, dict[str, Any]]:
    with zipfile.ZipFile(path) as z:
        return z.read("model.txt").decode(), json.loads(z.read("meta.json"))


def predict(score_csv: Path, recipe_path: Path, out: Path) -> dict[str, Any]:
    """The booster from the artifact's model.txt scores the file's feature frame (categorical
    columns as pandas categories with the training levels) with :func:`predict_threads`; the
    input with the prediction and class probabilities is written as CSV by pyarrow."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    recipe = json.loads(recipe_path.read_text())
    model_txt, meta = _artifact(recipe["artifact"])
    booster = lgb.Booster(model_str=model_txt)
    df = pd.read_csv(score_csv, engine="pyarrow")
    feats = df[[*recipe["numeric"], *recipe["categorical"]]].copy()
    for col in recipe["categorical"]:
        feats[col] = pd.Categorical(feats[col], categories=meta["schema"]["categories"][col])
    p = booster.predict(feats, num_threads=predict_threads(len(feats)))
    neg, pos = meta["classes"]
    df["prediction"] = np.where(p > 0.5, pos, neg)
    df[f"proba_{neg}"] = 1.0 - p
    df[f"proba_{pos}"] = p
    pacsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), out)
    return {"rows": len(df)}


def feedback(actuals_csv: Path, scored_csv: Path, out: Path) -> dict[str, Any]:
    """The actuals joined to the scored rows by id (pandas merge), the joined rows (id, time,
    label and the features) written to Parquet."""
    import pandas as pd

    actuals = pd.read_csv(actuals_csv, engine="pyarrow")
    scored = pd.read_csv(scored_csv, engine="pyarrow")
    id_col = actuals.columns[0]
    drop = [c for c in scored.columns if c == "prediction" or c.startswith("proba_")]
    joined = actuals.merge(scored.drop(columns=drop), on=id_col, how="inner")
    joined.to_parquet(out, index=False)
    return {"rows": len(joined)}


def compare(ours: Path, floor: Path) -> dict[str, Any]:
    """How far the floor's probabilities are from retrainer's, row by row."""
    import numpy as np
    import pandas as pd

    a, b = pd.read_csv(ours, engine="pyarrow"), pd.read_csv(floor, engine="pyarrow")
    cols = [c for c in a.columns if c.startswith("proba_")]
    same_ids = bool((a.iloc[:, 0].astype(str) == b.iloc[:, 0].astype(str)).all())
    diff = float(np.nanmax(np.abs(a[cols].to_numpy() - b[cols].to_numpy())))
    agree = float((a["prediction"].astype(str) == b["prediction"].astype(str)).mean())
    return {"rows": len(a), "same_ids": same_ids, "max_abs_diff": diff, "agreement": agree}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_floor", description="one floor")
    parser.add_argument(
        "worker", choices=["generate", "ingest", "train", "predict", "feedback", "compare"]
    )
    parser.add_argument("args", nargs="+")
    args = parser.parse_args(argv)
    if args.worker == "generate":
        emit(generate(Path(args.args[0]), int(args.args[1])))
        return
    fn = {
        "ingest": ingest,
        "train": train,
        "predict": predict,
        "feedback": feedback,
        "compare": compare,
    }[args.worker]
    emit(fn(*map(Path, args.args)))


if __name__ == "__main__":
    main()
