"""Champion/challenger gate on the same most recent labelled rows.

A paired bootstrap resamples row indices once and scores both models on every resample, so
the distribution is of the *improvement* (``Metric.improvement``: positive is better, for any
metric direction). A *new recipe* (another family or other parameters) passes only if the
observed improvement reaches ``min_improvement`` and the one-sided bootstrap p-value of "no
improvement" is below ``significance``. A *refresh* (the champion's family and parameters
fitted on newer rows) passes unless it is worse by more than ``refresh_tolerance``: the rows
it adds are its reason to exist, and they are newer than anything the gate can score both
models on, so the gate's question is whether the refresh broke something, not whether it won
on the slice. Either way no guard metric may regress beyond its tolerance and the budgets hold.

>>> import numpy as np
>>> from retrainer.core.spec_sections import Gate
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 400)
>>> champion = np.where(rng.random(400) < 0.75, y, 1 - y)
>>> challenger = np.where(rng.random(400) < 0.90, y, 1 - y)
>>> r = run_gate(y, champion, challenger, task="classification", gate=Gate(), seed=1)
>>> r.verdict.value, r.metric, round(r.improvement, 3), r.p_value < 0.05
('pass', 'accuracy', 0.177, True)
>>> print(run_gate(y[:50], champion[:50], challenger[:50], task="classification",
...                gate=Gate()).verdict)
insufficient
>>> refresh = np.where(rng.random(400) < 0.74, y, 1 - y)
>>> print(run_gate(y, champion, refresh, task="classification", gate=Gate()).verdict)
reject
>>> print(run_gate(y, champion, refresh, task="classification", gate=Gate(), refresh=True).verdict)
pass
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from ..core.custom_metrics import CustomMetric, count_masks, gate_metrics
from ..core.errors import ConfigError, InputError
from ..core.metrics import DEFAULT_PRIMARY, Metric, task_metrics
from ..core.spec_sections import Gate, GuardRule
from .gate_types import (
    Budgets,
    CatchUpFit,
    GateRecord,
    GateResult,
    GuardResult,
    Verdict,
    as_record,
    stored_gate,
    summary_line,
    verdict_text,
)
from .min_rows import MinRows, min_rows_for

__all__ = [
    "Budgets",
    "CatchUpFit",
    "GateRecord",
    "GateResult",
    "GuardResult",
    "Verdict",
    "as_record",
    "budget_gate",
    "paired_bootstrap",
    "run_gate",
    "stored_gate",
    "summary_line",
    "verdict_text",
]
TEST_NAME = "paired_bootstrap"
PLAIN = "plain_comparison"
_CHUNK_CELLS = 2_000_000  # resampled cells held in memory at once
_EPS = 1e-9  # 0.20 -> 0.19 is a 5% improvement, whatever the floating-point rounding says

# Row multiplicities (resamples, rows) -> one metric value per resample.
Stat = Callable[[np.ndarray], np.ndarray]
_Scores = tuple[np.ndarray, np.ndarray | None]  # (predictions, probabilities or None)


def _num(x: float) -> str:
    return f"{x:.4g}"


# --- resampled metrics -------------------------------------------------------------------
# A resample is a row of multiplicities W (resamples, rows): row i drawn W[r, i] times. Most
# metrics are then linear in W (one matrix product), so no resample is materialised.


def _mean(terms: np.ndarray, finish: Callable[[np.ndarray], np.ndarray] | None = None) -> Stat:
    def stat(w: np.ndarray) -> np.ndarray:
        means = w @ terms / w.shape[1]
        return finish(means) if finish else means

    return stat


def _proba_matrix(proba: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - proba, proba]) if proba.ndim == 1 else proba


def _auc(positive: np.ndarray, score: np.ndarray) -> Stat:
    """Weighted Mann-Whitney ROC AUC; tied scores count one half, as in sklearn."""
    order = np.argsort(score, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(score[order]) != 0])
    pos = positive[order].astype(float)

    def stat(w: np.ndarray) -> np.ndarray:
        ws = w[:, order]
        p = np.add.reduceat(ws * pos, starts, axis=1)
        n = np.add.reduceat(ws * (1 - pos), starts, axis=1)
        below = np.cumsum(n, axis=1) - n
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = (p * (below + n / 2)).sum(axis=1) / (p.sum(axis=1) * n.sum(axis=1))
        return np.where(np.isfinite(auc), auc, np.nan)

    return stat


def _r2(y: np.ndarray, pred: np.ndarray) -> Stat:
    sq = (y - pred) ** 2

    def stat(w: np.ndarray) -> np.ndarray:
        mean = w @ y / w.shape[1]
        sst = (w * (y - mean[:, None]) ** 2).sum(axis=1)  # two-pass, for precision
        sse = w @ sq
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1 - sse / sst
        return np.where(sst > 0, r2, np.where(sse == 0, 1.0, 0.0))  # sklearn's force_finite

    return stat


def _f1(y: np.ndarray, pred: np.ndarray) -> Stat:
    """F1 as core.metrics computes it on each resample: macro over the labels present when
    there are more than two, else sklearn's binary F1 of label 1."""
    labels = np.union1d(y, pred).astype(int)
    masks = [
        ((y == k) & (pred == k), (y != k) & (pred == k), (y == k) & (pred != k)) for k in labels
    ]

    def stat(w: np.ndarray) -> np.ndarray:
        f1s = []
        for tp_m, fp_m, fn_m in masks:
            tp, fp, fn = w @ tp_m, w @ fp_m, w @ fn_m
            with np.errstate(divide="ignore", invalid="ignore"):
                f1s.append(np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0))
        f1 = np.array(f1s)
        here = np.array([w @ (tp_m | fp_m | fn_m) > 0 for tp_m, fp_m, fn_m in masks])
        count = here.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            macro = (f1 * here).sum(axis=0) / count
        has_one = here[labels == 1].any(axis=0) if 1 in labels else np.zeros(len(w), bool)
        one = f1[labels == 1][0] if 1 in labels else np.zeros(len(w))
        # binary: F1 of label 1 when present; two labels without 1 is an error (NaN) in sklearn
        binary = np.where(has_one, one, np.where(count == 2, np.nan, 0.0))
        return np.where(count > 2, macro, binary)

    return stat


def _stat(metric: Metric, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> Stat:
    """The metric on each resample, equal to ``metric.compute`` on the resampled rows; a
    metric without a fast path falls back to ``metric.compute`` per resample."""
    name = metric.name
    if isinstance(metric, CustomMetric) and metric.expression is not None:
        return metric.counts_stat({k: v.astype(float) for k, v in count_masks(y, pred).items()})
    if isinstance(metric, CustomMetric):
        name = ""  # a user function: computed on each resample
    err = pred.astype(float) - y.astype(float) if metric.task == "regression" else None
    if name == "accuracy":
        return _mean((y == pred).astype(float))
    if name == "f1":
        return _f1(y, pred)
    if name == "mae" and err is not None:
        return _mean(np.abs(err))
    if name == "rmse" and err is not None:
        return _mean(err**2, np.sqrt)
    if name == "mape" and err is not None:
        return _mean(np.abs(err) / np.maximum(np.abs(y), np.finfo(np.float64).eps))
    if name == "r2":
        return _r2(y.astype(float), pred.astype(float))
    if proba is not None and name in ("log_loss", "brier", "roc_auc"):
        p, yi = _proba_matrix(proba), y.astype(int)
        if name == "log_loss":
            eps = np.finfo(p.dtype).eps
            return _mean(-np.log(np.clip(p[np.arange(len(yi)), yi], eps, 1 - eps)))
        if name == "brier" and p.shape[1] > 2:
            return _mean(((p - np.eye(p.shape[1])[yi]) ** 2).sum(axis=1))
        if name == "brier":
            return _mean((p[:, 1] - y) ** 2)
        if p.shape[1] == 2:
            return _auc(yi == 1, p[:, 1])
        per_class = [_auc(yi == k, p[:, k]) for k in range(p.shape[1])]
        return lambda w: np.mean([s(w) for s in per_class], axis=0)

    def fallback(w: np.ndarray) -> np.ndarray:
        rows = [np.repeat(np.arange(w.shape[1]), r.astype(int)) for r in w]
        return np.array(
            [metric.compute(y[r], pred[r], None if proba is None else proba[r]) for r in rows]
        )

    return fallback


def _weights(idx: np.ndarray) -> np.ndarray:
    """Multiplicities of each row in each resample of an index matrix."""
    c, n = idx.shape
    flat = (idx + n * np.arange(c)[:, None]).ravel()
    return np.bincount(flat, minlength=c * n).reshape(c, n).astype(float)


@lru_cache(maxsize=2)
def _resampled(n: int, samples: int, seed: int) -> np.ndarray:
    """The multiplicities of ``samples`` resamples of ``n`` rows drawn with ``seed``
    (read-only). A full retrain compares every window candidate with the best so far, and the
    gate the challenger with the champion, all on one holdout: drawn once, not per pair.

    >>> w = _resampled(4, 3, 0)
    >>> w.shape, w.sum(axis=1).tolist(), w is _resampled(4, 3, 0)
    ((3, 4), [4.0, 4.0, 4.0], True)
    """
    rng = np.random.default_rng(seed)
    w = _weights(rng.integers(0, n, size=(samples, n)))
    w.setflags(write=False)
    return w


def bootstrap_se(
    metric: Metric, y: np.ndarray, scores: _Scores, *, samples: int, seed: int
) -> float:
    """The standard error of ``metric`` on these rows: its spread over ``samples`` resamples
    (the ones :func:`paired_bootstrap` draws).

    >>> import numpy as np
    >>> from retrainer.core.metrics import METRICS
    >>> y = np.array([0, 1] * 50)
    >>> bootstrap_se(METRICS["accuracy"], y, (y, None), samples=200, seed=0)  # always right
    0.0
    >>> pred = np.where(np.arange(100) % 5 == 0, 1 - y, y)  # right on 80 of 100 rows
    >>> round(bootstrap_se(METRICS["accuracy"], y, (pred, None), samples=2000, seed=0), 2)
    0.04
    """
    return float(np.std(_over_resamples(len(y), samples, seed, _stat(metric, y, *scores))))


def _over_resamples(
    n: int, samples: int, seed: int, f: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``f`` of the multiplicities of ``samples`` resamples of ``n`` rows drawn with
    ``seed``: in one chunk the cached draws (:func:`_resampled`), the same as every call like
    it; above ``_CHUNK_CELLS`` cells, chunk by chunk."""
    if samples * n <= _CHUNK_CELLS:
        return np.asarray(f(_resampled(n, samples, seed)))
    rng = np.random.default_rng(seed)
    chunk = max(1, min(samples, _CHUNK_CELLS // max(n, 1)))
    parts = [
        f(_weights(rng.integers(0, n, size=(min(chunk, samples - at), n))))
        for at in range(0, samples, chunk)
    ]
    return np.concatenate(parts)


def paired_bootstrap(
    metric: Metric,
    y: np.ndarray,
    champion: _Scores,
    challenger: _Scores,
    *,
    samples: int,
    seed: int,
) -> np.ndarray:
    """Improvements of challenger over champion on ``samples`` shared resamples of the rows.

    >>> import numpy as np
    >>> from retrainer.core.metrics import METRICS
    >>> y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    >>> d = paired_bootstrap(METRICS["accuracy"], y, (1 - y, None), (y, None), samples=5, seed=0)
    >>> d.tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    sign = metric.improvement(1.0, 0.0)  # +1 when bigger is better, -1 otherwise
    a, b = _stat(metric, y, *champion), _stat(metric, y, *challenger)
    return _over_resamples(len(y), samples, seed, lambda w: sign * (b(w) - a(w)))


# --- the gate ----------------------------------------------------------------------------


def _metrics(gate: Gate, task: str) -> dict[str, Metric]:
    try:
        return gate_metrics(gate, task)
    except ValueError as exc:
        raise ConfigError(f"{exc}. Fix gate.metrics in the model's spec.") from None


def _metric(name: str, task: str, role: str, known: dict[str, Metric]) -> Metric:
    if name not in known:
        raise ConfigError(
            f"The gate's {role} {name!r} is not a {task} metric. Expected one of "
            f"{', '.join(known)}; fix gate in the model's spec (user metrics go under "
            "gate.metrics)."
        )
    return known[name]


def _array(value: ArrayLike, name: str, n: int | None, ndims: tuple[int, ...] = (1,)) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim not in ndims or (n is not None and arr.shape[0] != n):
        rows = f"{n} rows, one per label" if n is not None else "one value per row"
        raise InputError(
            f"The gate's {name} has shape {arr.shape}; expected {rows}. Score both models on "
            "the same rows as y_true."
        )
    return arr


def _model(pred: ArrayLike, proba: ArrayLike | None, who: str, n: int) -> _Scores:
    p = None if proba is None else _array(proba, f"{who}_proba", n, (1, 2))
    return _array(pred, f"{who}_pred", n), p


def _guard(
    metric: Metric,
    rule: GuardRule,
    y: np.ndarray,
    champ: _Scores,
    chal: _Scores,
    gate: Gate,
    seed: int,
) -> tuple[GuardResult, str]:
    """The guard's result and its sentence."""
    before, after = metric.compute(y, *champ), metric.compute(y, *chal)
    regression = -metric.improvement(after, before)
    change = f"guard {metric.name} {_num(before)} -> {_num(after)}"
    if rule.min_improvement is None and rule.min_relative_improvement is None:
        tolerance = float(rule.max_loss or 0.0)
        ok = math.isfinite(regression) and regression <= tolerance
        text = f"{change}: regression {_num(regression)} (tolerance {_num(tolerance)})"
        result = GuardResult(metric.name, before, after, regression, tolerance, ok)
        return result, text if ok or math.isfinite(regression) else f"{text}, undefined"
    improvement = -regression
    need_rel = rule.min_relative_improvement
    relative = None
    if need_rel is not None:  # a share of the champion's value: 0.05 of 0.20 is 0.01
        if math.isfinite(improvement) and math.isfinite(before) and before != 0:
            relative = improvement / abs(before)
        ok = relative is not None and relative >= need_rel - _EPS
        shown = "undefined" if relative is None else f"{relative:.2%}"
        text = f"{change}: improves by {shown} of the champion's value (needs {need_rel:.2%})"
        if relative is None and math.isfinite(improvement):
            text += f": undefined against a champion at {_num(before)}"
    else:
        need = float(rule.min_improvement or 0.0)
        ok = math.isfinite(improvement) and improvement >= need
        text = f"{change}: improves by {_num(improvement)} (needs {_num(need)})"
    p_value = None
    if gate.significance is not None and ok:
        d = paired_bootstrap(metric, y, champ, chal, samples=gate.bootstrap_samples, seed=seed)
        d = d[np.isfinite(d)]
        p_value = float((1 + np.sum(d <= 0)) / (len(d) + 1)) if len(d) else None
        ok = p_value is not None and p_value < gate.significance
        text += (
            f", {TEST_NAME} p = {p_value:.3g}"
            + ("" if ok else f", not below {gate.significance:g}: may be chance")
            if p_value is not None
            else ", undefined on every bootstrap resample"
        )
    elif not math.isfinite(improvement):
        text += ", undefined"
    result = GuardResult(
        metric.name,
        before,
        after,
        regression,
        None,
        ok,
        rule.min_improvement,
        p_value,
        need_rel,
        relative,
    )
    return result, text


def _rule(rule: GuardRule | float) -> GuardRule:
    """A guard's rule; a bare number (a copy that skipped validation) is a max_loss."""
    return rule if isinstance(rule, GuardRule) else GuardRule(max_loss=float(rule))


def _budgets(
    gate: Gate, latency_ms: float | None, size_bytes: int | None, memory_mb: float | None
) -> tuple[list[str], list[str]]:
    bad, good = [], []
    for what, unit, value, limit, arg in (
        ("p95 single-row latency", "ms", latency_ms, gate.max_latency_ms, "latency_ms"),
        ("peak memory growth", "MB", memory_mb, gate.max_memory_mb, "memory_mb"),
        ("size", "bytes", size_bytes, gate.max_size_bytes, "size_bytes"),
    ):
        if limit is None:
            continue
        if value is None:
            raise InputError(
                f"The gate has a {what} budget ({_num(limit)} {unit}) but no measured {what} "
                f"was passed. Measure the challenger and pass {arg}=..."
            )
        text = f"{what} {_num(value)} {unit}"
        if value > limit:
            bad.append(f"{text} exceeds the {_num(limit)} {unit} budget")
        else:
            good.append(f"{text} is within the {_num(limit)} {unit} budget")
    return bad, good


def _test(d: np.ndarray, alpha: float) -> tuple[float, float, float, bool, str]:
    """One-sided p-value of "no improvement" and the [alpha, 1 - alpha] interval of ``d``;
    its lower end is the one-sided (1 - alpha) lower bound, so ci_low > 0 matches p < alpha."""
    p_value = float((1 + np.sum(d <= 0)) / (len(d) + 1))
    low, high = (float(q) for q in np.quantile(d, [alpha, 1 - alpha]))
    text = (
        f"{TEST_NAME} over {len(d)} resamples: p = {p_value:.3g}, {1 - 2 * alpha:.0%} interval "
        f"of the improvement [{_num(low)}, {_num(high)}]"
    )
    if p_value < alpha:
        return p_value, low, high, True, f"{text}; significant at {alpha:g}"
    return p_value, low, high, False, f"{text}; not below {alpha:g}: may be chance"


def run_gate(
    y_true: ArrayLike,
    champion_pred: ArrayLike,
    challenger_pred: ArrayLike,
    *,
    task: str,
    gate: Gate,
    champion_proba: ArrayLike | None = None,
    challenger_proba: ArrayLike | None = None,
    latency_ms: float | None = None,
    size_bytes: int | None = None,
    memory_mb: float | None = None,
    seed: int = 0,
    refresh: bool = False,
    handicap: str | None = None,
    min_rows: MinRows | None = None,
) -> GateResult:
    """Judge a challenger against the champion on the same labelled rows (see module doc);
    ``refresh``: the challenger is the champion's recipe on newer rows. ``handicap`` (with
    ``refresh``) says why the challenger's side of the comparison saw less data than the
    champion: the change is then reported, not judged, since it measures the evaluation
    protocol rather than the refresh (the guards and budgets still apply).

    Classification labels and predictions are class indices; probabilities are the positive
    class's (n,) or an (n, k) matrix. Fewer rows than ``min_rows`` (:func:`min_rows_for`
    the model's window; without it ``gate.min_rows``, or 100 when unset) is "insufficient".

    >>> y = np.arange(40.0)
    >>> r = run_gate(y, y + 2, y + 1, task="regression", gate=Gate(),
    ...              min_rows=min_rows_for(Gate(), 40, 200))
    >>> r.verdict.value, r.min_rows, r.reasons[-1]
    ('pass', 40, 'min_rows 40 (scaled: the holdout of a window of 200 rows holds 40)')
    """
    need = min_rows or min_rows_for(gate)
    if task not in DEFAULT_PRIMARY:
        raise ConfigError(
            f"Task {task!r} is unknown. Expected one of: {', '.join(DEFAULT_PRIMARY)}."
        )
    known = _metrics(gate, task)
    primary = _metric(gate.primary_metric or DEFAULT_PRIMARY[task], task, "primary metric", known)
    guards = [
        (_metric(name, task, "guard metric", known), _rule(r)) for name, r in gate.guards.items()
    ]
    y = _array(y_true, "y_true", None)
    n = len(y)
    champ = _model(champion_pred, champion_proba, "champion", n)
    chal = _model(challenger_pred, challenger_proba, "challenger", n)
    for m in [primary, *(g for g, _ in guards)]:
        if m.needs_proba and (champ[1] is None or chal[1] is None):
            raise InputError(
                f"The gate metric {m.name!r} needs probabilities from both models. Pass "
                "champion_proba and challenger_proba, or choose a metric on labels."
            )
    bad, good = _budgets(gate, latency_ms, size_bytes, memory_mb)
    over_budget = bool(bad)
    before, after = primary.compute(y, *champ), primary.compute(y, *chal)
    improvement = primary.improvement(after, before)
    judged = [_guard(m, rule, y, champ, chal, gate, seed) for m, rule in guards]
    guard_results = tuple(g for g, _ in judged)
    alpha = gate.significance
    level = None if alpha is None else 1 - 2 * alpha
    p_value = ci_low = ci_high = None
    verdict = Verdict.REJECT
    if n < need.rows:
        verdict = Verdict.INSUFFICIENT
        scaled = "" if need.why is None else f" ({need.why})"
        bad.insert(0, f"only {n} labelled rows to compare on; the gate needs {need.rows}{scaled}")
    elif not math.isfinite(improvement):
        verdict = Verdict.INSUFFICIENT
        bad.insert(0, f"{primary.name} is undefined on these {n} rows (e.g. a single class)")
    else:
        tolerance = gate.refresh_tolerance if refresh else None
        change = f"{primary.name} {_num(before)} -> {_num(after)}"
        if tolerance is not None:
            good.insert(
                0,
                f"{change}: a refresh (the champion's recipe on newer rows), change "
                f"{_num(improvement)}",
            )
        else:
            needs = _num(gate.min_improvement)
            if improvement >= gate.min_improvement:
                good.insert(0, f"{change}: improves by {_num(improvement)} (needs {needs})")
            else:
                bad.insert(0, f"{change}: improves by only {_num(improvement)}, needs {needs}")
        d = np.array([improvement])
        if alpha is not None:
            d = paired_bootstrap(primary, y, champ, chal, samples=gate.bootstrap_samples, seed=seed)
            d = d[np.isfinite(d)]
        if len(d) == 0:
            verdict = Verdict.INSUFFICIENT
            bad.insert(0, f"{primary.name} is undefined on every bootstrap resample")
        else:
            if alpha is not None:
                p_value, ci_low, ci_high, ok, text = _test(d, alpha)
            else:  # a plain comparison: the observed change is both ends
                ci_high, ok = improvement, True
                text = f"{PLAIN} (significance null): no test, the observed change decides"
            if tolerance is None:
                (good if ok else bad).append(text)
            else:  # a refresh need not prove itself on the slice, only show no harm
                text = text.split("; ")[0]
                end = "even at the interval's upper end" if alpha is not None else "as observed"
                if handicap is not None:
                    good.append(f"{text}: shown, not judged ({handicap})")
                elif ci_high < -tolerance:
                    bad.insert(
                        0,
                        f"{text}: the refresh is worse by more than {_num(tolerance)} {end} "
                        "(look at the newest rows for a change in the data; `deploy --force` "
                        "deploys it anyway)",
                    )
                else:
                    good.append(
                        f"{text}: shown, not judged: no evidence it is worse by more than "
                        f"{_num(tolerance)}"
                    )
    for g, text in judged:
        (good if g.ok else bad).append(text)
    if need.note is not None and verdict is not Verdict.INSUFFICIENT:
        good.append(need.note)
    if verdict is Verdict.INSUFFICIENT and over_budget:  # no rows to compare can excuse a budget
        verdict = Verdict.REJECT
    if verdict is Verdict.REJECT and not bad:
        verdict = Verdict.PASS
    return GateResult(
        verdict=verdict,
        metric=primary.name,
        bigger_is_better=primary.bigger_is_better,
        n_rows=n,
        min_rows=need.rows,
        champion=before,
        challenger=after,
        improvement=improvement,
        min_improvement=gate.min_improvement,
        refresh=refresh,
        refresh_tolerance=gate.refresh_tolerance if refresh else None,
        test=TEST_NAME if alpha is not None else PLAIN,
        bootstrap_samples=gate.bootstrap_samples if alpha is not None else 0,
        p_value=p_value,
        significance=gate.significance,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=level,
        guards=guard_results,
        latency_ms=latency_ms,
        max_latency_ms=gate.max_latency_ms,
        size_bytes=size_bytes,
        max_size_bytes=gate.max_size_bytes,
        seed=seed,
        reasons=tuple(bad + good),
        champion_metrics=_task_metrics(task, y, champ),
        challenger_metrics=_task_metrics(task, y, chal),
        handicap=handicap if refresh and gate.refresh_tolerance is not None else None,
        memory_mb=memory_mb,
        max_memory_mb=gate.max_memory_mb,
        min_rows_scaled=need.why,
    )


def _task_metrics(task: str, y: np.ndarray, model: _Scores) -> dict[str, float]:
    return {m.name: m.compute(y, *model) for m in task_metrics(task)} if len(y) else {}


def budget_gate(
    gate: Gate, latency_ms: float | None, memory_mb: float | None, size_bytes: int | None
) -> GateRecord | None:
    """The budgets alone, for a first version (no champion to compare with): None when the
    spec sets no budget, else a record whose verdict is pass or reject.

    >>> budget_gate(Gate(max_memory_mb=50), 3.0, 80.0, 1000).reasons
    ('peak memory growth 80 MB exceeds the 50 MB budget',)
    """
    if gate.max_latency_ms is None and gate.max_memory_mb is None and gate.max_size_bytes is None:
        return None
    bad, good = _budgets(gate, latency_ms, size_bytes, memory_mb)
    budgets = Budgets(
        verdict=Verdict.REJECT if bad else Verdict.PASS,
        latency_ms=latency_ms,
        max_latency_ms=gate.max_latency_ms,
        memory_mb=memory_mb,
        max_memory_mb=gate.max_memory_mb,
        size_bytes=size_bytes,
        max_size_bytes=gate.max_size_bytes,
        reasons=tuple(bad + good),
        summary=f"budgets {'exceeded' if bad else 'held'} (first version): "
        + "; ".join(bad or good),
    )
    return GateRecord(budgets)
