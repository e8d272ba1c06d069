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
import functools
import math
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from . import dask_faults
from .base import FamilyModel
from .schema import FeatureSchema

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


def cpu_seconds() -> float:
    """The CPU seconds this process has used, plus, while a cluster is active, those of its
    workers' processes (each worker's ``time.process_time()``, a worker in this process
    counted once): a training's CPU wherever its fits ran. On a cluster shared with other
    work its workers' CPU is counted too; a worker restarted in between starts from 0.

    >>> cpu_seconds() > 0
    True
    """
    import os
    import time

    own = time.process_time()
    client = _CLIENT.get()
    if client is None:
        return own
    try:
        seen = client.run(_process_cpu)
    except Exception:  # the cluster is failing; its fit's error says why
        return own
    return own + sum(cpu for pid, cpu in seen.values() if pid != os.getpid())


def _process_cpu() -> tuple[int, float]:
    import os
    import time

    return os.getpid(), time.process_time()


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


def _partitioned(client: Any, a: Any) -> Any:
    """``a`` as a dask array of row chunks, at least one per worker (a dask array, built
    by the workers from their partitions, as it is)."""
    import dask.array as da

    if isinstance(a, da.Array):
        return a

    parts = _workers(client)
    rows = max(1, math.ceil(len(a) / parts))
    chunks = (rows, *a.shape[1:]) if a.ndim > 1 else (rows,)
    return da.from_array(a, chunks=chunks)


def learn_classes(model: FamilyModel, schema: FeatureSchema, labels: list[Any]) -> None:
    """Give ``model`` the schema and class labels a local fit would learn from rows whose
    distinct target values are ``labels`` (reduced on the cluster): the class order, and
    the error for a target of one class, are those of :meth:`FamilyModel.fit`."""
    model.schema_ = schema
    model._encode_target(np.asarray(labels, dtype=object), learn=True)


def target_encoder(model: FamilyModel) -> Any:
    """The function a worker encodes its partition's target with (class indices or floats)."""
    return functools.partial(_encode, model)


def _encode(model: FamilyModel, y: np.ndarray) -> np.ndarray:
    return model._encode_target(y)


def fit_arrays(
    model: FamilyModel, X: Any, y: Any, val: tuple[Any, Any] | None, weight: Any = None
) -> FamilyModel:
    """Fit ``model`` (schema and classes learnt, :func:`learn_classes`) on dask arrays ``X``
    and ``y`` (early stopping on ``val``) on the active client's cluster; ``weight``: a dask
    array of one weight per row of ``X``, chunked as ``X`` (recency weighting)."""
    if active() is None:
        raise RuntimeError("fit_arrays needs a client: call it inside dask_boosting.using")
    model._fit(X, y, val, weight)
    return model


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
    lost = dask_faults.lightgbm_callbacks()  # a test's lost worker; none in production
    fault_kw: dict[str, Any] = {"callbacks": lost} if lost else {}
    with warnings.catch_warnings():  # the wrapper passes n_jobs, which Dask workers ignore
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored", UserWarning)
        try:
            model.fit(
                _partitioned(client, X),
                _partitioned(client, y.astype(np.float64)),
                sample_weight=None if weight is None else _partitioned(client, weight),
                categorical_feature=categorical or "auto",
                **fault_kw,
            )
        except BaseException:
            free_networks(client)
            raise
    booster = model.to_local().booster_
    if val is not None and len(val[1]) > 0:
        losses = validation_losses(client, booster, val[0], val[1], str(params["objective"]))
        booster.best_iteration = best_round(losses, patience)
    return booster


def free_networks(client: Any) -> None:
    """Free LightGBM's network in every worker process. A distributed fit that fails (a
    peer lost) leaves it open in the survivors (the Dask interface frees it after a fit
    that succeeds only), and their next fit fails on its stale sockets ("Socket send
    error, Broken pipe")."""
    with contextlib.suppress(Exception):
        client.run(_free_network, on_error="ignore")


def _free_network() -> None:
    from lightgbm.basic import _LIB, _safe_call

    _safe_call(_LIB.LGBM_NetworkFree())


def validation_losses(client: Any, booster: Any, X: Any, y: Any, objective: str) -> list[float]:
    """The validation loss after each round of ``booster`` (LightGBM's default metric of
    ``objective``: binary or multiclass log loss, or squared error), every partition of the
    validation rows scored by the worker holding it and the sums added here. LightGBM's Dask
    interface records validation metrics per worker, of the rows that worker holds (it warns
    that they are unreliable when a worker holds none), so the curve early stopping reads is
    computed from the whole validation set instead."""
    import dask

    vx, vy = _partitioned(client, X), _partitioned(client, np.asarray(y, dtype=np.float64)
                                                   if isinstance(y, np.ndarray) else y)  # fmt: skip
    blocks = zip(vx.to_delayed().ravel(), vy.to_delayed().ravel(), strict=True)
    sums = dask.compute(*[dask.delayed(_block_losses)(booster, bx, by, objective)
                          for bx, by in blocks])  # fmt: skip
    total = np.sum(sums, axis=0)
    return list(total / max(1, len(vy)))


def _block_losses(booster: Any, X: np.ndarray, y: np.ndarray, objective: str) -> np.ndarray:
    """The summed loss of rows ``X``, ``y`` after each round (one tree's raw score added at a
    time: a round's predictions cost one tree each)."""
    n, rounds = len(y), booster.current_iteration()
    k = booster.num_model_per_iteration()
    raw = np.zeros((n, k))
    out = np.empty(rounds)
    for i in range(rounds):
        raw += np.asarray(
            booster.predict(X, start_iteration=i, num_iteration=1, raw_score=True)
        ).reshape(n, k)
        out[i] = _loss(raw, y, objective)
    return out


def _loss(raw: np.ndarray, y: np.ndarray, objective: str) -> float:
    """The summed loss of raw scores (LightGBM's metric for the objective).

    >>> f"{_loss(np.zeros((2, 1)), np.array([0.0, 1.0]), 'binary'):.4f}"  # 2 * log(2)
    '1.3863'
    """
    if objective == "binary":
        z = raw[:, 0]
        return float(np.sum(np.logaddexp(0.0, z) - y * z))
    if objective == "multiclass":
        shifted = raw - raw.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-np.sum(logp[np.arange(len(y)), y.astype(int)]))
    return float(np.sum((raw[:, 0] - y) ** 2))


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
    when ``val`` stops it early.

    The workers quantise their rows as they read them (``DaskQuantileDMatrix``: one byte
    per value, read a partition at a time, never concatenated), as the ``hist`` method a
    local fit uses bins them; the validation rows are binned on the training rows' cuts."""
    from xgboost import dask as dxgb

    def matrix(
        a: np.ndarray, label: np.ndarray | None, w: np.ndarray | None = None, ref: Any = None
    ) -> Any:
        return dxgb.DaskQuantileDMatrix(
            client,
            _partitioned(client, a),
            None if label is None else _partitioned(client, label),
            weight=None if w is None else _partitioned(client, w),
            missing=np.nan,
            feature_types=feature_types,
            enable_categorical=True,
            max_bin=params.get("max_bin"),
            ref=ref,
        )

    train = matrix(X, y, weight)
    evals = []
    stop = None
    if val is not None and len(val[1]) > 0:
        evals = [(matrix(val[0], val[1], ref=train), "validation")]
        stop = patience
    out = dxgb.train(
        client,
        params,
        train,
        num_boost_round=rounds,
        evals=evals,
        early_stopping_rounds=stop,
        verbose_eval=False,
        callbacks=dask_faults.xgboost_callbacks() or None,
    )
    booster = out["booster"]
    if stop is not None:
        booster = booster[: booster.best_iteration + 1]
    return booster
