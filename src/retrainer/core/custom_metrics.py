"""User metrics of the gate: an expression over confusion counts, or a Python callable.

An expression is parsed with :mod:`ast` and may hold only numbers, the four counts of the
positive class (``tp``, ``fp``, ``tn``, ``fn``), ``+ - * /`` and parentheses: nothing is ever
passed to ``eval``. It is evaluated on numpy arrays, so the gate's bootstrap computes it on
every resample at once. A division by zero gives NaN (the metric is undefined on those rows).

A callable is named by import path, ``package.module:function``, and called as
``function(y_true, y_pred)`` or, when it takes a third parameter, ``function(y_true, y_pred,
proba)``. Labels are class indices (0..k-1 in sorted label order; for a 0/1 target the labels
themselves); ``proba`` is the probability of class 1 (binary) or an (n, k) matrix, or None.

>>> import numpy as np
>>> rate = parse_expression("fn / (tp + fn)", "gate.metrics.failure_rate")
>>> y, p = np.array([1, 1, 1, 1, 0, 0]), np.array([1, 1, 1, 0, 0, 1])
>>> float(evaluate(rate, confusion_counts(y, p)))
0.25
>>> try:
...     parse_expression("__import__('os')", "gate.metrics.bad")
... except ValueError as exc:
...     print(str(exc).split("; ")[-1])
it has a function call
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .metrics import Metric

if TYPE_CHECKING:
    import numpy as np

COUNTS = ("tp", "fp", "tn", "fn")
_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_ALLOWED_OPS = (*_OPS, ast.UAdd, ast.USub)
_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_WHAT = {ast.Call: "a function call", ast.Attribute: "an attribute", ast.Subscript: "an index"}


def parse_expression(text: str, key: str) -> ast.Expression:
    """The parsed expression, or ValueError naming ``key`` and what is not allowed."""
    allowed = "may use only tp, fp, tn, fn, numbers, + - * / and parentheses"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f'{key}: the expression "{text}" is not valid ({exc.msg})') from None
    for node in ast.walk(tree):
        bad = None
        if isinstance(node, ast.Name) and node.id not in COUNTS:
            bad = f"the unknown name {node.id!r}"
        elif isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            bad = f"the constant {node.value!r}"
        elif isinstance(node, ast.BinOp | ast.UnaryOp) and type(node.op) not in _ALLOWED_OPS:
            bad = f"the operator {type(node.op).__name__}"
        elif not isinstance(
            node,
            ast.Expression
            | ast.BinOp
            | ast.UnaryOp
            | ast.Name
            | ast.Constant
            | ast.Load
            | ast.operator
            | ast.unaryop,
        ):
            bad = _WHAT.get(type(node), f"a {type(node).__name__} node")
        if bad:
            raise ValueError(f'{key}: the expression "{text}" {allowed}; it has {bad}')
    if not any(isinstance(n, ast.Name) for n in ast.walk(tree)):
        raise ValueError(f'{key}: the expression "{text}" uses none of tp, fp, tn, fn')
    return tree


def evaluate(tree: ast.Expression, counts: Mapping[str, Any]) -> Any:
    """The expression on counts (numbers or numpy arrays); a division by zero gives NaN."""
    import numpy as np

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Name):
            return np.asarray(counts[node.id], dtype=float)
        if isinstance(node, ast.Constant):
            return float(node.value)  # type: ignore[arg-type]  # checked at parse
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        assert isinstance(node, ast.BinOp)
        return _OPS[type(node.op)](walk(node.left), walk(node.right))

    with np.errstate(divide="ignore", invalid="ignore"):
        out = walk(tree)
    return np.where(np.isfinite(out), out, np.nan)


def confusion_counts(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """tp, fp, tn, fn of the positive class (index 1) as boolean row masks' sums."""
    return {k: m.sum() for k, m in count_masks(y, pred).items()}


def count_masks(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """One boolean mask per count: the rows that are a tp, fp, tn or fn of class 1."""
    import numpy as np

    y, pred = np.asarray(y), np.asarray(pred)
    if len(y) and max(int(y.max()), int(pred.max())) > 1:
        raise ValueError(
            "an expression over tp, fp, tn, fn needs a binary classifier; this one has more "
            "than two classes"
        )
    pos, hit = y == 1, pred == 1
    return {"tp": pos & hit, "fp": ~pos & hit, "tn": ~pos & ~hit, "fn": pos & ~hit}


def resolve_callable(path: str, key: str) -> Callable[..., Any]:
    """The function at ``module:function``, or ValueError naming ``key`` and the fix."""
    if not _PATH.match(path):
        raise ValueError(
            f"{key}: {path!r} is not an import path; expected 'package.module:function'"
        )
    module, name = path.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(
            f"{key}: module {module!r} of {path!r} cannot be imported ({exc}); install it or "
            "put it on PYTHONPATH"
        ) from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise ValueError(f"{key}: module {module!r} has no function {name!r}")
    return fn  # type: ignore[no-any-return]


def _takes_proba(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


@dataclass(frozen=True)
class CustomMetric(Metric):
    """A user metric: ``expression`` over confusion counts or ``function`` by import path."""

    expression: str | None = None
    function: str | None = None
    _tree: ast.Expression | None = field(default=None, repr=False, compare=False)
    _fn: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def fn(self) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]:
        return self._call

    def counts_stat(self, masks: Mapping[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        """For the bootstrap: row multiplicities (resamples, rows) -> the metric per resample."""
        assert self._tree is not None
        tree = self._tree
        return lambda w: evaluate(tree, {k: w @ m for k, m in masks.items()})  # type: ignore[no-any-return]

    def _call(self, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> float:
        if self._tree is not None:
            return float(evaluate(self._tree, confusion_counts(y, pred)))
        assert self._fn is not None
        args = (y, pred, proba) if _takes_proba(self._fn) else (y, pred)
        try:
            value = self._fn(*args)
        except ValueError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"The custom metric {self.name!r} ({self.function}) raised "
                f"{type(exc).__name__}: {exc}. Fix the function, or remove it from gate.metrics."
            ) from exc
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"The custom metric {self.name!r} ({self.function}) returned {value!r}; "
                "expected a number."
            ) from None


def build(name: str, task: str, definition: Any, key: str) -> CustomMetric:
    """A custom metric from its spec entry (``gate.metrics.<name>``); ValueError if bad."""
    expression = getattr(definition, "expression", None)
    function = getattr(definition, "function", None)
    bigger = bool(definition.greater_is_better)
    if expression is not None:
        if task != "classification":
            raise ValueError(
                f"{key}: an expression over tp, fp, tn, fn needs a classification model; "
                "use `function` for a regression metric"
            )
        tree = parse_expression(expression, key)
        return CustomMetric(name, task, bigger, expression=expression, _tree=tree)
    fn = resolve_callable(str(function), key)
    return CustomMetric(name, task, bigger, function=function, _fn=fn)


def gate_metrics(gate: Any, task: str) -> dict[str, Metric]:
    """Every metric the gate of a ``task`` model may name: the task's built-in metrics and
    the spec's ``gate.metrics``. ValueError naming the key when a custom metric is bad."""
    from .metrics import task_metrics

    out: dict[str, Metric] = {m.name: m for m in task_metrics(task)}
    from .metrics import METRICS

    for name, definition in gate.metrics.items():
        key = f"gate.metrics.{name}"
        if name in METRICS:
            raise ValueError(
                f"{key}: {name!r} is a built-in metric; give the custom one another name"
            )
        out[name] = build(name, task, definition, key)
    return out


def check_gate(gate: Any, task: str) -> None:
    """ValueError naming the key when the gate names a metric it cannot compute."""
    known = gate_metrics(gate, task)
    names = [("gate.primary_metric", gate.primary_metric)] + [
        (f"gate.guards.{g}", g) for g in gate.guards
    ]
    for key, name in names:
        if name is not None and name not in known:
            raise ValueError(
                f"{key}: {name!r} is not a {task} metric; valid: {', '.join(known)} (add a "
                "user metric under gate.metrics)"
            )
