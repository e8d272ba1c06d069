"""The training choice on a window that stays on the Dask cluster (``training.engine: dask``).

:class:`ClusterRows` is how :func:`retrainer.lifecycle.choice.decide` reaches the window's
partitions: a row position is a time in the window's event times (the one column this
process holds, 8 bytes a row), a candidate is fitted on the workers over the rows from its
start's time to the holdout's (:func:`fit_rows`), and the holdout is the gate's, already in
this process. Recency weights are computed by the worker holding each partition from its
event times (:class:`Recency`); the mean they are scaled by is reduced on the cluster.

>>> r = Recency(pd.Timestamp("2020-01-05"), 2.0)
>>> t = pd.DataFrame({"event_time": pd.date_range("2020-01-01", periods=5, freq="D")})
>>> w = _decay(t, None, None, r)
>>> (w / w.mean()).round(3).tolist()  # as choice.recency_weights
[0.445, 0.629, 0.889, 1.258, 1.779]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.spec import ModelSpec
from ..evaluation.calibration import Calibrator
from ..evaluation.splits import Fold
from ..families import FamilyModel, dask_boosting
from ..families.schema import FeatureSchema
from . import dask_rows
from .choice import DAY, Fit, with_leaves
from .dask_rows import Cut, PartitionedWindow, WindowFacts, select_rows
from .fitting import EARLY_STOP_FRACTION, make_model, metric_proba
from .time_inputs import TimeInputs


@dataclass(frozen=True)
class Recency:
    """Weights halving every ``days`` back from ``newest`` (the newest row fitted)."""

    newest: pd.Timestamp
    days: float


def _decay(df: pd.DataFrame, lo: Cut | None, hi: Cut | None, r: Recency) -> np.ndarray:
    t = pd.to_datetime(select_rows(df, lo, hi)["event_time"])
    age = ((r.newest - t) / DAY).to_numpy(dtype=float)
    return np.asarray(np.power(0.5, age / r.days))


def _decay_sum(df: pd.DataFrame, lo: Cut | None, hi: Cut | None, r: Recency) -> tuple[int, float]:
    w = _decay(df, lo, hi, r)
    return len(w), float(w.sum())


def _scaled(df: pd.DataFrame, lo: Cut | None, hi: Cut | None, r: Recency, mean: float) -> Any:
    return _decay(df, lo, hi, r) / mean


def mean_decay(window: PartitionedWindow, lo: Cut | None, hi: Cut | None, r: Recency) -> float:
    """The mean unscaled weight of the rows between the cuts, each partition's sum and count
    reduced on the cluster (1.0 for no rows)."""
    import dask

    parts = window.read(["event_time"])
    sums = dask.compute(*[dask.delayed(_decay_sum)(p, lo, hi, r) for p in parts])
    n = sum(c for c, _ in sums)
    return 1.0 if n == 0 else sum(s for _, s in sums) / n


def weights(
    window: PartitionedWindow,
    lo: Cut | None,
    hi: Cut | None,
    r: Recency,
    mean: float,
    rows_like: Any,
) -> Any:
    """The weights of the rows between the cuts as a dask array chunked as ``rows_like``
    (the matrix of the same rows, :func:`retrainer.lifecycle.dask_rows.matrices`: rows in
    partition order), each chunk computed by the worker holding its partition."""
    import dask.array as da

    import dask

    parts = window.read(["event_time"])
    counts = dask.compute(*[dask.delayed(len)(dask.delayed(select_rows)(p, lo, hi)) for p in parts])
    chunks = [
        da.from_delayed(dask.delayed(_scaled)(p, lo, hi, r, mean), (n,), dtype=np.float64)
        for p, n in zip(parts, counts, strict=True)
        if n
    ]
    return da.concatenate(chunks).rechunk((rows_like.chunks[0],))


def fit_rows(
    window: PartitionedWindow,
    model: FamilyModel,
    schema: FeatureSchema,
    facts: WindowFacts,
    lo: Cut | None,
    hi: Cut | None,
    *,
    stop: bool = True,
    recency: Recency | None = None,
) -> FamilyModel:
    """``model`` fitted on the rows between the cuts, the newest 10% of them held out for
    early stopping when ``stop`` (as :func:`retrainer.lifecycle.fitting.fit_with_early_stopping`),
    weighted by ``recency`` when given (scaled to mean 1 over the rows between the cuts; the
    early-stopping slice's rows are left out of the fit as their weights are)."""
    dask_boosting.learn_classes(model, schema, list(facts.labels))
    encode = dask_boosting.target_encoder(model)
    X, y, n = dask_rows.matrices(window, schema, encode, lo, hi)
    mean = 1.0 if recency is None else mean_decay(window, lo, hi, recency)

    def weigh(until: Cut | None, rows_like: Any) -> Any:
        return None if recency is None else weights(window, lo, until, recency, mean, rows_like)

    n_val = int(n * EARLY_STOP_FRACTION)
    if not stop or n_val < 20 or n - n_val < 20:
        return dask_boosting.fit_arrays(model, X, y, None, weigh(hi, X))
    es = dask_rows.newest_cut(window, n, EARLY_STOP_FRACTION, hi)
    Xt, yt, _ = dask_rows.matrices(window, schema, encode, lo, es)
    Xv, yv, _ = dask_rows.matrices(window, schema, encode, es, hi)
    return dask_boosting.fit_arrays(model, Xt, yt, (Xv, yv), weigh(es, Xt))


def fit_calibrated(
    window: PartitionedWindow,
    spec: ModelSpec,
    family: str,
    schema: FeatureSchema,
    facts: WindowFacts,
    lo: Cut | None,
    hi: Cut | None,
    *,
    recency: Recency | None = None,
) -> Fit:
    """The recipe's fit of the rows between the cuts, with its calibration map when the
    spec asks for one (:func:`retrainer.lifecycle.fitting.fit_for_evaluation` on the
    partitions): the model fitted on those rows less their newest CALIBRATION_FRACTION (at
    least 20), the map on the held-out rows' raw scores, computed by the workers holding
    them (this process gets their encoded targets and scores, never their features)."""
    from ..evaluation.calibration import fit_calibrator
    from .fitting import CALIBRATION_FRACTION, uses_calibration

    model = make_model(spec, family, spec.training.seed)
    if not uses_calibration(spec):
        return fit_rows(window, model, schema, facts, lo, hi, recency=recency), None
    n = dask_rows.count_between(window, lo, hi)
    cal = dask_rows.newest_cut(window, max(20, int(n * CALIBRATION_FRACTION)), 1.0, hi)
    model = fit_rows(window, model, schema, facts, lo, cal, recency=recency)
    y, _, raw = predicted_between(window, model, spec.feature_names, cal, hi)  # uncalibrated
    if raw is None:
        raise InputError(
            "No rows to calibrate on between the window's time cuts: the window is too small "
            "to hold out a calibration slice; widen training.window_days or ingest more rows."
        )
    return model, fit_calibrator(spec.calibration, raw, y)


@dataclass(frozen=True)
class ClusterRows:
    """The window's rows on the cluster as :func:`retrainer.lifecycle.choice.decide` sees
    them (:class:`retrainer.lifecycle.choice.CandidateRows`)."""

    window: PartitionedWindow
    spec: ModelSpec
    family: str
    facts: WindowFacts
    schema: FeatureSchema
    times: pd.Series  # the window's event times, sorted (indexed 0..n-1)
    hold: pd.DataFrame  # the gate's holdout rows, oldest first

    @property
    def other_families(self) -> bool:
        return False

    def holdout_rows(self, rows: int) -> int:
        if rows <= 0:
            return rows
        at = self.times.iloc[len(self.times) - rows]
        return len(self.times) - int(self.times.searchsorted(at, side="left"))

    def holdout(self, rows: int) -> tuple[pd.DataFrame, pd.Series]:
        tail = self.hold.iloc[len(self.hold) - rows :]
        return tail[self.spec.feature_names], tail["target"]

    def cut(self, row: int) -> Cut | None:
        """The cut before row ``row`` (None: before every row, or after the last)."""
        if row <= 0 or row >= len(self.times):
            return None
        return Cut(pd.Timestamp(self.times.iloc[row]), inclusive=True)

    def fit(
        self,
        lo: int,
        hi: int,
        half_life: float | None,
        leaves: str = "constant",
        inputs: TimeInputs = TimeInputs(),
        family: str | None = None,
    ) -> Fit:
        """As :meth:`CandidateRows.fit`; never asked for time ``inputs`` (the holdout holds
        none: the Dask engine does not compute them) or another ``family``
        (:attr:`other_families` is false)."""
        recency = (
            None if half_life is None else Recency(pd.Timestamp(self.times.iloc[hi - 1]), half_life)
        )
        spec = with_leaves(self.spec, self.family, leaves)
        return fit_calibrated(
            self.window, spec, self.family, self.schema, self.facts, self.cut(lo),
            self.cut(hi), recency=recency,
        )  # fmt: skip

    def cpu(self) -> float:
        return dask_boosting.cpu_seconds()  # the workers' fits, and this process's scoring


@dataclass(frozen=True)
class ClusterFolds:
    """The window's first ``n`` rows (those before the gate's holdout) as a hyper-parameter
    search scores its folds on them (:class:`retrainer.lifecycle.search.FoldRows`): each
    fold's recipe fit on the cluster, its test block scored by the workers holding it."""

    rows: ClusterRows
    n: int

    def __len__(self) -> int:
        return self.n

    def fold_scores(
        self, spec: ModelSpec, family: str, params: dict[str, Any], fold: Fold
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]:
        from .search import scored_fold, with_params

        spec, r = with_params(spec, family, params), self.rows
        model, cal = fit_calibrated(
            r.window, spec, family, r.schema, r.facts, None, r.cut(fold.train.stop)
        )
        lo, hi = r.cut(fold.test.start), r.cut(fold.test.stop)
        y, pred, proba = predicted_between(r.window, model, spec.feature_names, lo, hi, cal)
        return scored_fold(model, y, pred, proba)

    def cpu(self) -> float:
        return dask_boosting.cpu_seconds()


def walk_forward_folds(rows: ClusterRows, first: int) -> list[dict[str, float]]:
    """The walk-forward folds of the rows from ``first`` (the chosen window's, holdout
    included) as :func:`retrainer.lifecycle.fitting.fit_family` makes them: each fold's fit
    on the workers over the rows before its test block (less ``validation.gap``), its test
    block scored by the workers holding it (this process gets the encoded targets,
    predictions and probabilities of one block, never its features)."""
    from ..core.metrics import compute_all
    from ..core.progress import current
    from ..evaluation.splits import walk_forward

    spec, v = rows.spec, rows.spec.validation
    out: list[dict[str, float]] = []
    current().stage("walk-forward folds", total=v.folds, unit="folds")
    for fold in walk_forward(len(rows.times) - first, v.folds, v.gap):
        since, until = rows.cut(first), rows.cut(first + fold.train.stop)
        model, cal = fit_calibrated(
            rows.window, spec, rows.family, rows.schema, rows.facts, since, until
        )
        lo, hi = rows.cut(first + fold.test.start), rows.cut(first + fold.test.stop)
        y, pred, proba = predicted_between(rows.window, model, spec.feature_names, lo, hi, cal)
        metrics = compute_all(model.task, y, pred, metric_proba(proba))
        out.append(
            {
                "fold": fold.index,
                "train_rows": fold.train.stop,
                "test_rows": fold.test.stop - fold.test.start,
                **metrics,
            }
        )
        current().advance()
    return out


def predicted_between(
    window: PartitionedWindow,
    model: FamilyModel,
    features: Sequence[str],
    lo: Cut | None,
    hi: Cut | None,
    cal: Calibrator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The encoded targets, predictions and class probabilities (None for a regression) of
    the rows between the cuts, in partition order, each partition's predicted by the worker
    holding it."""
    import dask

    parts = dask.compute(
        *[
            dask.delayed(_predicted)(p, model, list(features), lo, hi, cal)
            for p in window.read([*features, "target"])
        ]
    )
    y = np.concatenate([p[0] for p in parts])
    pred = np.concatenate([p[1] for p in parts])
    probas = [p[2] for p in parts if p[2] is not None and len(p[2])]
    return y, pred, np.concatenate(probas) if probas else None


def _predicted(
    df: pd.DataFrame,
    model: FamilyModel,
    features: list[str],
    lo: Cut | None,
    hi: Cut | None,
    cal: Calibrator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    from .fitting import predict_encoded

    sub = select_rows(df, lo, hi)
    if not len(sub):
        return np.empty(0), np.empty(0), None
    pred, proba = predict_encoded(model, sub[features], cal)
    return model.encode_target(sub["target"]), pred, proba


def sorted_times(times: pd.Series) -> pd.Series:
    """The window's event times (as fetched, in partition order) oldest first."""
    return pd.Series(np.sort(pd.to_datetime(times).to_numpy()))


def fingerprint_since(window: PartitionedWindow, columns: Sequence[str], since: Cut) -> str:
    """:func:`retrainer.lifecycle.dask_rows.fingerprint` of the rows at or after ``since``
    (the chosen window's)."""
    import dask

    h = hashlib.sha256()
    for p in window.read(columns):
        (out,) = dask.compute(dask.delayed(_hashes)(p, list(columns), since))
        h.update(out)
    return h.hexdigest()


def _hashes(df: pd.DataFrame, columns: list[str], since: Cut) -> bytes:
    sub = select_rows(df, since, None)
    hashed = pd.util.hash_pandas_object(sub[columns], index=False, categorize=False)
    return bytes(hashed.to_numpy().tobytes())
