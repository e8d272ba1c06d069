"""Parallel search trials on a Dask cluster (``training.engine: dask``).

The study stays in this process; the fits go to the workers. Optuna's ask-and-tell
interface takes one trial per worker at a time (a batch), and the batch runs fold by fold:
every live trial's fold is one task (:func:`retrainer.lifecycle.search.fold_value`, fitted
locally on the worker, one trial per worker); after each fold the running means are reported
and the median pruner stops trials here, as in a sequential search. The rows are sent to
every worker once. The same seed, trial budget and number of workers give the same trials (a
batch is asked with the same history every time); another number of workers gives other
batches, so other trials.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..core.progress import current
from ..core.spec_sections import Search

if TYPE_CHECKING:
    from .search import Objective


def workers(client: Any) -> int:
    """How many trials run at once: the cluster's workers (at least 1)."""
    return max(1, len(client.scheduler_info()["workers"]))


def defaults_on(client: Any, objective: Objective, rows: Any) -> tuple[list[float], float]:
    """The spec's own parameters scored on every fold at once: (fold values, worker CPU)."""
    from .search import fold_value

    futures = [
        client.submit(fold_value, objective.spec, objective.family, rows, {}, f, pure=False)
        for f in objective.folds
    ]
    done = client.gather(futures)
    return [v for v, _ in done], sum(c for _, c in done)


def optimize_on(client: Any, study: Any, objective: Objective, settings: Search) -> float:
    """Run ``settings``' budget of trials of ``study`` on ``client``'s workers, a batch of
    one trial per worker at a time; the workers' CPU seconds."""
    import optuna

    from .search import TRIAL_ERRORS, fold_value

    rows = client.scatter(objective.rows, broadcast=True)
    width, cpu = workers(client), 0.0
    ends = None if settings.seconds is None else time.monotonic() + settings.seconds
    left = settings.trials
    while (left is None or left > 0) and (ends is None or time.monotonic() < ends):
        batch = [study.ask() for _ in range(width if left is None else min(width, left))]
        params = {t.number: objective.suggest(t) for t in batch}
        values: dict[int, list[float]] = {t.number: [] for t in batch}
        spent = dict.fromkeys(params, 0.0)
        live = list(batch)
        for fold in objective.folds:
            tasks = [
                (t, client.submit(fold_value, objective.spec, objective.family, rows,
                                  params[t.number], fold, pure=False))
                for t in live
            ]  # fmt: skip
            live = []
            for t, task in tasks:
                try:
                    value, used = task.result()
                except TRIAL_ERRORS as exc:
                    t.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
                    current().advance()
                    continue
                cpu += used
                spent[t.number] += used
                t.set_user_attr("cpu_seconds", round(spent[t.number], 4))
                values[t.number].append(value)
                if objective.report(t, values[t.number], fold.index):
                    study.tell(t, state=optuna.trial.TrialState.PRUNED)
                    current().advance()
                    continue
                live.append(t)
        for t in live:
            study.tell(t, sum(values[t.number]) / len(values[t.number]))
            current().advance()
        if left is not None:
            left -= len(batch)
    return cpu
