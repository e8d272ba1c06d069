"""Serving a sequence model (the ``lstm`` family): each request row is scored after the newest
stored rows of its entity (cached per entity: :class:`~retrainer.lifecycle.history.
HistoryCache`) and the request's earlier rows of that entity; a row whose entity has neither
is a cold start, scored from itself alone and flagged ``cold_start: true`` (never an error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..lifecycle.history import HistoryCache, SequenceModel, arrange, as_sequence
from .predict import outputs

if TYPE_CHECKING:
    from .app import ServerState
    from .model_holder import Loaded

CACHE_KEY = "sequence_history"


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


__all__ = ["CACHE_KEY", "as_sequence", "score_sequence"]
