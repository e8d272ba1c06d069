"""A test hook: a Dask worker lost in the middle of a fit or a check, deterministically.

When ``RETRAINER_DASK_LOSE_WORKER`` names a directory in the environment of the process that
runs the training, every LightGBM and XGBoost fit on the Dask engine gets a callback that, at
round :data:`ROUND` on a worker, takes one token file of that directory (renames it, which
only one process can do) and, if it got one, ends the worker's process at once
(``os._exit``), as a machine lost mid-training would. One token, one lost worker; with none
left the callback does nothing. Unset (production) it adds no callback.

A drift check's and a monitor fold's tasks on the workers take the directory as an argument
(:func:`task_folder`, None when unset) and call :func:`lose_in_task` first: the first task to
take a token ends its worker the same way.

>>> lightgbm_callbacks(environ={}), xgboost_callbacks(environ={}), task_folder(environ={})
([], [], None)
>>> lose_in_task(None)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV = "RETRAINER_DASK_LOSE_WORKER"
ROUND = 2


def take_token(folder: str) -> bool:
    """Whether this process took one of ``folder``'s tokens (``token-*`` renamed ``used-*``)."""
    for token in sorted(Path(folder).glob("token-*")):
        try:
            token.rename(token.with_name("used-" + token.name[len("token-") :]))
        except OSError:
            continue  # another worker took it first
        return True
    return False


def task_folder(environ: Mapping[str, str] | None = None) -> str | None:
    """The hook's directory for the tasks a check sends to the workers; None when unset."""
    return (os.environ if environ is None else environ).get(ENV) or None


def lose_in_task(folder: str | None) -> None:
    """In a worker's task: with ``folder`` set, take one of its tokens and, if it got one,
    end this worker's process (the task's result, and the worker's others, are lost)."""
    if folder and take_token(folder):
        os._exit(1)


def _lose(folder: str, fit: str, iteration: int) -> None:
    """At round ROUND, the first worker of fit ``fit`` to get there takes a token (one loss
    per fit at most) and, if it got one, ends its process."""
    if iteration != ROUND:
        return
    try:  # the fit's one chance: the other workers of this fit pass
        os.close(os.open(Path(folder) / f"fit-{fit}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    if take_token(folder):
        os._exit(1)


class LoseWorker:
    """LightGBM callback (``callback(env)``); picklable, so it travels to the workers."""

    order = 0

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.fit = uuid.uuid4().hex

    def __call__(self, env: Any) -> None:
        _lose(self.folder, self.fit, int(env.iteration))


def lightgbm_callbacks(environ: Mapping[str, str] | None = None) -> list[Any]:
    folder = (os.environ if environ is None else environ).get(ENV)
    return [LoseWorker(folder)] if folder else []


def xgboost_callbacks(environ: Mapping[str, str] | None = None) -> list[Any]:
    folder = (os.environ if environ is None else environ).get(ENV)
    if not folder:
        return []
    from xgboost.callback import TrainingCallback

    fit = uuid.uuid4().hex

    class _XGBLoseWorker(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            _lose(str(folder), fit, epoch)
            return False

    return [_XGBLoseWorker()]
