"""The LSTM family's parameter rules, network shape and history windows, without PyTorch.

Each parameter's rule is declared once in ``RULES`` (the ones it shares with ``mlp`` come from
:mod:`.mlp_config`) and checked in :func:`check_lstm_params`.

>>> check_lstm_params({"lookback": 7, "entity": "station"})
>>> try:
...     check_lstm_params({"lookback": 0})
... except ConfigError as exc:
...     print(exc.message)
The 'lookback' parameter of the 'lstm' family must be a whole number >= 1 (earlier rows of the entity each prediction sees); got 0. Fix params.lookback (or RETRAINER_<MODEL>__PARAMS__LOOKBACK).
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from .mlp_config import RULES as MLP_RULES
from .mlp_config import _int_at_least, _number

MAX_LOOKBACK = 1_000  # a longer window is a different model (and a large tensor per batch)

RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{k: MLP_RULES[k] for k in ("dropout", "weight_decay", "learning_rate", "epochs")},
    **{k: MLP_RULES[k] for k in ("batch_size", "patience", "embedding_dim", "num_threads")},
    "hidden_size": (_int_at_least(1), "a whole number >= 1"),
    "num_layers": (_int_at_least(1), "a whole number >= 1"),
    "lookback": (
        lambda v: _int_at_least(1)(v) and v <= MAX_LOOKBACK,
        "a whole number >= 1 (earlier rows of the entity each prediction sees)",
    ),
    "entity": (
        lambda v: v is None or (isinstance(v, str) and v != ""),
        "the name of a categorical feature whose value is the sequence's entity, or null for "
        "one sequence over all rows",
    ),
    "history_dropout": (
        lambda v: _number(v) and 0 <= v < 1,
        "a number in [0, 1): the fraction of training rows that see no history",
    ),
}


def check_lstm_params(params: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first parameter whose value breaks its rule."""
    for name, value in params.items():
        rule = RULES.get(name)
        if rule is not None and not rule[0](value):
            raise ConfigError(
                f"The {name!r} parameter of the 'lstm' family must be {rule[1]}; got {value!r}. "
                f"Fix params.{name} (or RETRAINER_<MODEL>__PARAMS__{name.upper()}).",
                family="lstm",
                param=name,
            )


@dataclass(frozen=True)
class LSTMConfig:
    """The network's shape: what ``config.json`` holds next to the weights.

    >>> c = LSTMConfig(1, [3], [2], 8, 1, 0.1, 2)
    >>> LSTMConfig.from_dict(c.to_dict()) == c
    True
    """

    n_numeric: int
    cardinalities: list[int]
    embedding_dims: list[int]
    hidden_size: int
    num_layers: int
    dropout: float
    n_out: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LSTMConfig:
        return cls(
            n_numeric=int(d["n_numeric"]),
            cardinalities=[int(n) for n in d["cardinalities"]],
            embedding_dims=[int(n) for n in d["embedding_dims"]],
            hidden_size=int(d["hidden_size"]),
            num_layers=int(d["num_layers"]),
            dropout=float(d["dropout"]),
            n_out=int(d["n_out"]),
        )


def group_keys(codes: np.ndarray) -> np.ndarray:
    """Float entity codes as group keys; each missing (NaN) entity is a group of its own.

    >>> group_keys(np.array([0.0, np.nan, 0.0, np.nan])).tolist()
    [0.0, -1.0, 0.0, -2.0]
    """
    keys = np.asarray(codes, dtype=np.float64).copy()
    missing = np.isnan(keys)
    keys[missing] = -1.0 - np.arange(int(missing.sum()))
    return keys


def history_windows(groups: np.ndarray, lookback: int) -> np.ndarray:
    """For each row, the row indices of its window: its entity's ``lookback`` previous rows
    (in the given order, which is time order) then the row itself; ``len(groups)`` marks
    padding where the entity has fewer earlier rows. Vectorised: a stable sort by entity,
    then one sliding window over the sorted positions.

    >>> history_windows(np.array([0, 1, 0, 0, 1]), 2).tolist()
    [[5, 5, 0], [5, 5, 1], [5, 0, 2], [0, 2, 3], [5, 1, 4]]
    """
    n = len(groups)
    width = lookback + 1
    if n == 0:
        return np.empty((0, width), dtype=np.int64)
    order = np.argsort(groups, kind="stable")
    ordered = np.asarray(groups)[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.arange(n) - first  # earlier rows of the same entity
    padded = np.r_[np.full(lookback, n, dtype=np.int64), order.astype(np.int64), n]
    view = np.lib.stride_tricks.sliding_window_view(padded[:-1], width)  # (n, width)
    offsets = np.arange(lookback, -1, -1)  # how far back each column looks
    sorted_windows = np.where(offsets[None, :] <= rank[:, None], view, n)
    out = np.empty_like(sorted_windows)
    out[order] = sorted_windows
    return out
