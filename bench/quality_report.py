"""The quality bench's tables and verdicts: block-bootstrap intervals, the best naive baseline,
and the issue's targets per stream.

>>> import numpy as np
>>> lo, hi = interval(np.ones(90))
>>> (lo, hi)
(1.0, 1.0)
>>> interval(np.full(60, 2.0), squared=True)
(2.0, 2.0)
"""

from __future__ import annotations

import numpy as np

from .common import seconds, table
from .quality_peers import ARF_LABEL, Outcome

BLOCK_DAYS = 30  # block bootstrap: days are autocorrelated
TARGET_POINTS = 0.005  # classification: default policy >= best fixed schedule + 0.5 points
TARGET_RATIO = 0.97  # regression: default-policy MAE <= 0.97 x the best fixed schedule's
CPU_BUDGET = 0.15  # of the 30-day schedule's training CPU


def interval(
    values: np.ndarray, *, squared: bool = False, seed: int = 0, resamples: int = 1000
) -> tuple[float, float]:
    """95% block-bootstrap interval (30-row blocks) of the mean of ``values`` (accuracy of
    right/wrong, MAE of absolute errors), or of the root mean square when ``squared``."""
    v = values.astype(float) ** 2 if squared else values.astype(float)
    n_blocks = max(1, len(v) // BLOCK_DAYS)
    blocks = np.array_split(v, n_blocks)
    sums = np.array([b.sum() for b in blocks])
    sizes = np.array([len(b) for b in blocks])
    idx = np.random.default_rng(seed).integers(0, n_blocks, size=(resamples, n_blocks))
    means = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    lo, hi = np.quantile(np.sqrt(means) if squared else means, [0.025, 0.975])
    return float(lo), float(hi)


def score(o: Outcome, regression: bool) -> float:
    """Accuracy, or MAE for a regression."""
    return float(o.values.mean()) if len(o.values) else float("nan")


def rmse(o: Outcome) -> float:
    return float(np.sqrt(np.mean(o.values.astype(float) ** 2)))


def best_naive(outcomes: list[Outcome], regression: bool) -> Outcome:
    naive = [o for o in outcomes if o.naive]
    pick = min if regression else max
    return pick(naive, key=lambda o: score(o, regression))


def _row(o: Outcome, regression: bool, best: Outcome) -> list[str]:
    bold = o.strategy.startswith("retrainer")
    name = o.strategy + (" (best naive baseline)" if o is best else "")
    cells = [f"**{name}**" if bold else name]
    if regression:
        lo, hi = interval(o.values)
        rlo, rhi = interval(o.values, squared=True)
        mae = f"{score(o, True):.3f}"
        cells += [f"**{mae}**" if bold else mae, f"{lo:.3f} – {hi:.3f}"]
        cells += [f"{rmse(o):.3f}", f"{rlo:.3f} – {rhi:.3f}"]
    else:
        lo, hi = interval(o.values)
        acc = f"{score(o, False):.1%}"
        cells += [f"**{acc}**" if bold else acc, f"{lo:.1%} – {hi:.1%}"]
    cells += [
        "—" if o.trainings is None else str(o.trainings),
        "—" if o.cpu is None else seconds(o.cpu),
        o.decisions,
    ]
    return cells


def stream_table(outcomes: list[Outcome], regression: bool) -> str:
    head = ["strategy"]
    head += (
        ["MAE", "95% interval", "RMSE", "95% interval"]
        if regression
        else ["accuracy", "95% interval"]
    )
    head += ["trainings", "training CPU", "decisions"]
    best = best_naive(outcomes, regression)
    return table(head, [_row(o, regression, best) for o in outcomes])


def _met(value: float, target: float, regression: bool) -> str:
    if regression:
        return "met" if value <= target else f"short by {(value / target - 1) * 100:.1f}%"
    return "met" if value >= target else f"short by {(target - value) * 100:.1f} points"


def _fmt(value: float, regression: bool) -> str:
    return f"{value:.3f}" if regression else f"{value:.1%}"


def verdict(outcomes: list[Outcome], regression: bool) -> list[str]:
    """One line per retrainer row: the issue's targets, met or how far short, and whether it
    beats the best naive baseline."""
    by = {o.strategy: o for o in outcomes}
    fixed = [o for o in outcomes if o.strategy.startswith("LightGBM every")]
    pick = min if regression else max
    best = pick(fixed, key=lambda o: score(o, regression))
    thirty, arf = by.get("LightGBM every 30 days"), by.get(ARF_LABEL)
    naive = best_naive(outcomes, regression)
    metric = "MAE" if regression else "accuracy"
    lines = []
    for o in (o for o in outcomes if o.strategy.startswith("retrainer")):
        value, b = score(o, regression), score(best, regression)
        target = b * TARGET_RATIO if regression else b + TARGET_POINTS
        wanted = f"0.97 x {b:.3f} = {target:.3f}" if regression else f"{b:.1%} + 0.5 points"
        when = best.strategy.removeprefix("LightGBM ")
        parts = [
            f"{metric} {_fmt(value, regression)} vs the best fixed schedule ({when}) "
            f"{wanted}: {_met(value, target, regression)}"
        ]
        if arf is not None:
            a = score(arf, regression)
            beats = value < a if regression else value > a
            tie = "tied" if value == a else _met(value, a, regression)
            parts.append(f"vs ARF {_fmt(a, regression)}: {'met' if beats else tie}")
        if thirty is not None and thirty.cpu and o.cpu is not None:
            share = o.cpu / thirty.cpu
            budget = (
                ""
                if regression
                else f" ({'met' if share <= CPU_BUDGET else 'over'} the 15% budget)"
            )
            parts.append(
                f"training CPU {seconds(o.cpu)} = {share:.0%} of the 30-day schedule's{budget}"
            )
        n = score(naive, regression)
        beats_naive = value < n if regression else value > n
        parts.append(
            f"{'beats' if beats_naive else 'does not beat'} the best naive baseline "
            f"({naive.strategy} {_fmt(n, regression)})"
        )
        lines.append(f"- {o.strategy}: " + "; ".join(parts))
    return lines


def choices(outcomes: list[Outcome]) -> list[str]:
    """The "policy choices" line of each retrainer row."""
    return [f"- {o.strategy}, {o.choices}" for o in outcomes if o.choices is not None]
