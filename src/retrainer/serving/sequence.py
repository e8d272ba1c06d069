"""Serving what the store knows of the past. A sequence model (the ``lstm`` family): each
request row is scored after the newest stored rows of its entity (cached per entity:
:class:`~retrainer.lifecycle.history.HistoryCache`) and the request's earlier rows of that
entity; a row whose entity has neither is a cold start, scored from itself alone and flagged
``cold_start: true`` (never an error). A version that learnt the previous actual
(:mod:`~retrainer.lifecycle.previous_actual`): each row gets the newest stored actual (cached
per model for a few seconds), which the client never sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from starlette.concurrency import run_in_threadpool

from ..lifecycle.history import HistoryCache, SequenceModel, arrange, as_sequence
from ..lifecycle.previous_actual import PreviousCache, uses_previous
from .predict import outputs

if TYPE_CHECKING:
    from .app import ServerState
    from .model_holder import Loaded

CACHE_KEY = "sequence_history"
PREVIOUS_KEY = "previous_actual"


async def with_previous_rows(
    state: ServerState, name: str, rows: list[Any], *served: Loaded | None
) -> dict[str, list[Any]]:
    """The request's rows with the newest stored actual, by version, for each ``served``
    version that learnt the previous actual (the store read off the event loop, at most
    once per model per few seconds); empty when none did. Other versions score ``rows``
    as sent (an extra key would be refused where the spec forbids extra fields)."""
    wanted = [s.version for s in served if s is not None and uses_previous(s.predictor.model)]
    if not wanted:
        return {}
    filled = await run_in_threadpool(previous_cache(state).fill, state.ws, name, rows)
    return dict.fromkeys(wanted, filled)


def previous_cache(state: ServerState) -> PreviousCache:
    """The server's :class:`PreviousCache` (made on first use)."""
    cache = state.cache.get(PREVIOUS_KEY)
    if cache is None:
        cache = state.cache.setdefault(PREVIOUS_KEY, PreviousCache())
    return cache  # type: ignore[no-any-return]


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
    "PREVIOUS_KEY",
    "as_sequence",
    "previous_cache",
    "score_sequence",
    "with_previous_rows",
]
