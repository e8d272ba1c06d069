"""LightGBM and XGBoost fits through their Dask interfaces (``training.engine: dask``).

While :func:`using` holds a ``distributed.Client``, a boosting family's fit from rows (not a
fine-tune, which continues the champion locally) sends its matrix to the cluster in row
partitions, one or more per worker, and trains there: ``lightgbm.DaskLGBMRegressor`` (with
the family's own objective) or ``xgboost.dask.train``. What comes back is the ordinary local
booster (``to_local``, the ``booster`` of the result), so saving, hashing, serving and
fine-tune do not know where it was fitted.

Early stopping: XGBoost's Dask interface stops early itself; LightGBM's has no early stopping,
so it trains every round while recording the validation loss and the booster's best
iteration is set where local early stopping would have stopped (:func:`best_round`).

>>> active() is None
True
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

_CLIENT: ContextVar[Any] = ContextVar("retrainer_dask_client", default=None)


@contextlib.contextmanager
def using(client: Any) -> Iterator[Any]:
    """Boosting fits inside this block train on ``client``'s cluster."""
    token = _CLIENT.set(client)
    try:
        with client.as_current():  # the libraries find their client as the current one
            yield client
    finally:
        _CLIENT.reset(token)


def active() -> Any:
    """The ``distributed.Client`` fits train on now, or None (train in this process)."""
    return _CLIENT.get()


def best_round(losses: list[float], patience: int) -> int:
    """The 1-based round local early stopping keeps: the lowest loss seen before ``patience``
    rounds pass without a lower one.

    >>> best_round([0.9, 0.7, 0.8, 0.6, 0.65, 0.66, 0.7], patience=2)
    4
    >>> best_round([0.5, 0.4], patience=10)
    2
    """
    best, best_at = math.inf, 0
    for i, loss in enumerate(losses):
        if loss < best:
            best, best_at = loss, i
        elif i - best_at >= patience:
            break
    return best_at + 1


def _workers(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def _partitioned(client: Any, a: np.ndarray) -> Any:
    """``a`` as a dask array of row chunks, at least one per worker."""
    import dask.array as da

    parts = _workers(client)
    rows = max(1, math.ceil(len(a) / parts))
    chunks = (rows, *a.shape[1:]) if a.ndim > 1 else (rows,)
    return da.from_array(a, chunks=chunks)


def train_lightgbm(
    client: Any,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray | None,
    val: tuple[np.ndarray, np.ndarray] | None,
    rounds: int,
    patience: int,
    categorical: list[int],
) -> Any:
    """A local ``lightgbm.Booster`` trained on the cluster with ``params`` (the family's
    ``lgb.train`` parameters), its best iteration set as early stopping would."""
    import lightgbm as lgb

    # each worker trains with its own threads: LightGBM ignores (and warns of) num_threads
    params = {k: v for k, v in params.items() if k != "num_threads"}
    model = lgb.DaskLGBMRegressor(client=client, n_estimators=rounds, **params)
    kw: dict[str, Any] = {}
    if val is not None and len(val[1]) > 0:
        vx, vy = _partitioned(client, val[0]), _partitioned(client, val[1].astype(np.float64))
        if "eval_X" in inspect.signature(lgb.DaskLGBMRegressor.fit).parameters:  # >= 4.7
            kw.update(eval_X=(vx,), eval_y=(vy,))
        else:
            kw["eval_set"] = [(vx, vy)]
    with warnings.catch_warnings():  # the wrapper passes n_jobs, which Dask workers ignore
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored", UserWarning)
        model.fit(
            _partitioned(client, X),
            _partitioned(client, y.astype(np.float64)),
            sample_weight=None if weight is None else _partitioned(client, weight),
            categorical_feature=categorical or "auto",
            **kw,
        )
    booster = model.to_local().booster_
    if kw:
        curves = model.evals_result_
        losses = next(iter(next(iter(curves.values())).values()))
        booster.best_iteration = best_round(list(losses), patience)
    return booster


def train_xgboost(
    client: Any,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray | None,
    val: tuple[np.ndarray, np.ndarray] | None,
    rounds: int,
    patience: int,
    feature_types: list[str],
) -> Any:
    """A local ``xgboost.Booster`` trained by ``xgboost.dask.train``, cut at its best round
    when ``val`` stops it early."""
    from xgboost import dask as dxgb

    def matrix(a: np.ndarray, label: np.ndarray | None, w: np.ndarray | None = None) -> Any:
        return dxgb.DaskDMatrix(
            client,
            _partitioned(client, a),
            None if label is None else _partitioned(client, label),
            weight=None if w is None else _partitioned(client, w),
            missing=np.nan,
            feature_types=feature_types,
            enable_categorical=True,
        )

    evals = []
    stop = None
    if val is not None and len(val[1]) > 0:
        evals = [(matrix(val[0], val[1]), "validation")]
        stop = patience
    out = dxgb.train(
        client,
        params,
        matrix(X, y, weight),
        num_boost_round=rounds,
        evals=evals,
        early_stopping_rounds=stop,
        verbose_eval=False,
    )
    booster = out["booster"]
    if stop is not None:
        booster = booster[: booster.best_iteration + 1]
    return booster
