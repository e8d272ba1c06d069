"""Serving what the store knows of the past. A sequence model (the ``lstm`` family): each
request row is scored after the newest stored rows of its entity (cached per entity:
:class:`~retrainer.lifecycle.history.HistoryCache`) and the request's earlier rows of that
entity; a row whose entity has neither is a cold start, scored from itself alone and flagged
``cold_start: true`` (never an error). A version that learnt inputs made from time
(:mod:`~retrainer.lifecycle.time_inputs`): each row gets the newest stored row's actual and
features (cached per model for a few seconds) and its day of the year, which the client never
sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from starlette.concurrency import run_in_threadpool

from ..lifecycle.history import HistoryCache, SequenceModel, arrange, as_sequence
from ..lifecycle.time_inputs import NewestRowCache, of_model, uses_time_inputs
from .predict import outputs

if TYPE_CHECKING:
    from .app import ServerState
    from .model_holder import Loaded

CACHE_KEY = "sequence_history"
NEWEST_KEY = "newest_row"


async def with_time_rows(
    state: ServerState, name: str, time_column: str, rows: list[Any], *served: Loaded | None
) -> dict[str, list[Any]]:
    """The request's rows as each ``served`` version that learnt time inputs scores them
    (:func:`time_rows`, the store read off the event loop), by version; empty when none
    did. Other versions score ``rows`` as sent (an extra key would be refused where the spec
    forbids extra fields)."""
    wanted = [s for s in served if s is not None and uses_time_inputs(s.predictor.model)]
    if not wanted:
        return {}

    def fill() -> dict[str, list[Any]]:
        return {s.version: time_rows(state, name, time_column, s, rows) for s in wanted}

    return await run_in_threadpool(fill)


def time_rows(
    state: ServerState, model: str, time_column: str, loaded: Loaded, rows: list[Any]
) -> list[Any]:
    """``rows`` with the time inputs ``loaded``'s model learnt: ``model``'s newest stored row
    (cached per model for a few seconds) and each row's day of the year; ``rows`` as sent
    when it learnt none."""
    inputs = of_model(loaded.predictor.model)
    if not inputs.columns:
        return rows
    cache = state.cache.get(NEWEST_KEY)
    if cache is None:
        cache = state.cache.setdefault(NEWEST_KEY, NewestRowCache())
    filled: list[Any] = cache.fill(state.ws, model, time_column, inputs, rows)
    return filled


def score_sequence(
    state: ServerState, name: str, loaded: Loaded, seq: SequenceModel, rows: list[Any]
) -> tuple[list[Any], list[dict[str, float]] | None, list[float | None] | None, list[bool]]:
    """``score``'s answer for the request's rows (already checked by the codec), and whether
    each row was a cold start."""
    cache = state.cache.get(CACHE_KEY)
    if cache is None:
        cache = state.cache.setdefault(CACHE_KEY, HistoryCache())
    columns = [*seq.numeric, *seq.categorical]
    df = pd.DataFrame.from_records(rows).reindex(columns=columns)
    history = cache.history(state.ws, name, seq, df)
    arranged = arrange(seq.entity, df, history, columns, None)
    raw = loaded.predictor.raw(arranged.frame)[arranged.rows]
    values, probabilities, probas = outputs(loaded, raw)
    return values, probabilities, probas, arranged.cold_start.tolist()


__all__ = [
    "CACHE_KEY",
    "NEWEST_KEY",
    "as_sequence",
    "score_sequence",
    "time_rows",
    "with_time_rows",
]
