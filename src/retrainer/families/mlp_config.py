"""The MLP family's parameter rules and network shape, without PyTorch (importable anywhere).

Each parameter's rule is declared once in ``RULES`` and checked in :func:`check_mlp_params`,
which the family's constructor calls before any training.

>>> check_mlp_params({"hidden_sizes": [64, 32], "dropout": 0.1})
>>> try:
...     check_mlp_params({"dropout": 1.5})
... except ConfigError as exc:
...     print(exc.message)
The 'dropout' parameter of the 'mlp' family must be a number in [0, 1); got 1.5. Fix params.dropout (or RETRAINER_<MODEL>__PARAMS__DROPOUT).
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..core.errors import ConfigError

MAX_EMBEDDING = 16  # the automatic embedding width never exceeds this


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _sizes(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(_int_at_least(1)(h) for h in v)


# parameter -> (the rule, what it allows, in words)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "hidden_sizes": (_sizes, "a list of layer widths, each a whole number >= 1, e.g. [64, 32]"),
    "dropout": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "learning_rate": (lambda v: _number(v) and v > 0, "a number > 0"),
    "epochs": (_int_at_least(1), "a whole number >= 1"),
    "batch_size": (_int_at_least(1), "a whole number >= 1"),
    "patience": (_int_at_least(1), "a whole number >= 1"),
    "embedding_dim": (
        lambda v: v is None or _int_at_least(1)(v),
        "a whole number >= 1, or null for min(16, (levels + 1) // 2 + 1) per column",
    ),
    "num_threads": (
        lambda v: v is None or _int_at_least(1)(v),
        "a whole number >= 1, or null for training.threads",
    ),
}


def check_mlp_params(params: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first parameter whose value breaks its rule."""
    for name, value in params.items():
        rule = RULES.get(name)
        if rule is not None and not rule[0](value):
            raise ConfigError(
                f"The {name!r} parameter of the 'mlp' family must be {rule[1]}; got {value!r}. "
                f"Fix params.{name} (or RETRAINER_<MODEL>__PARAMS__{name.upper()}).",
                family="mlp",
                param=name,
            )


def embedding_dims(levels: Sequence[int], width: int | None) -> list[int]:
    """The embedding width of each categorical column: ``width``, or by default
    ``min(16, (levels + 1) // 2 + 1)`` (one slot more than its levels: index 0 is missing).

    >>> embedding_dims([2, 3, 500], None), embedding_dims([2, 3], 4)
    ([2, 3, 16], [4, 4])
    """
    if width is not None:
        return [int(width)] * len(levels)
    return [min(MAX_EMBEDDING, (n + 1) // 2 + 1) for n in levels]


@dataclass(frozen=True)
class NetConfig:
    """The network's shape: what ``config.json`` holds next to the weights.

    >>> c = NetConfig(1, [3], [2], [8], 0.1, 2)
    >>> NetConfig.from_dict(c.to_dict()) == c, c.n_inputs
    (True, 4)
    """

    n_numeric: int
    cardinalities: list[int]  # the levels of each categorical column
    embedding_dims: list[int]
    hidden_sizes: list[int]
    dropout: float
    n_out: int  # classes, or 1 for regression

    @property
    def n_inputs(self) -> int:
        """Width of the first dense layer: each numeric value, its missing flag, embeddings."""
        return 2 * self.n_numeric + sum(self.embedding_dims)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetConfig:
        return cls(
            n_numeric=int(d["n_numeric"]),
            cardinalities=[int(n) for n in d["cardinalities"]],
            embedding_dims=[int(n) for n in d["embedding_dims"]],
            hidden_sizes=[int(n) for n in d["hidden_sizes"]],
            dropout=float(d["dropout"]),
            n_out=int(d["n_out"]),
        )
