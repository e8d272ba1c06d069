"""User code named in the spec by a ``"package.module:name"`` path: the sklearn family's
estimator and the feature step (``features.transform``).

A feature step is a function ``DataFrame -> DataFrame`` that the model applies to its input
rows before its estimator sees them, so training, batch predict and serving apply it the same
way (it lives in the model, not beside it). The model records the step's path and the SHA-256
of its source (``inspect.getsource``); a model loaded where that source has changed still
loads and logs a warning naming the path and both hashes (see :meth:`FeatureStep.restore` for
why it warns rather than refuses).

>>> step = FeatureStep.load("retrainer.families.feature_step:identity")
>>> step.path, len(step.sha256)
('retrainer.families.feature_step:identity', 64)
>>> import pandas as pd
>>> step.apply(pd.DataFrame({"x": [1.0, 2.0]}))["x"].tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..core.errors import ConfigError, InputError
from ..core.family_params import check_code_path

log = logging.getLogger(__name__)


def resolve(path: str, setting: str) -> Any:
    """The object ``path`` names, imported; InputError naming ``setting``, the path and what
    went wrong (a module that cannot be imported, a missing name).

    >>> resolve("retrainer.families.feature_step:identity", "features.transform").__name__
    'identity'
    >>> try:
    ...     resolve("retrainer.no_such_module:f", "params.estimator")
    ... except InputError as exc:
    ...     print(exc.message.split(":")[0])
    params.estimator 'retrainer.no_such_module
    """
    try:
        check_code_path(path, setting)
    except ValueError as exc:
        raise InputError(f"{exc}.", setting=setting, path=path) from None
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise InputError(
            f"{setting} {path!r}: module {module_name!r} cannot be imported "
            f"({type(exc).__name__}: {exc}). Install the package that holds it, or put its "
            "folder on PYTHONPATH.",
            setting=setting,
            path=path,
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            known = sorted(n for n in dir(obj) if not n.startswith("_"))[:20]
            raise InputError(
                f"{setting} {path!r}: {type(obj).__name__} {getattr(obj, '__name__', '')!r} "
                f"has no attribute {part!r}. Found: {', '.join(known) or 'nothing public'}.",
                setting=setting,
                path=path,
            )
        obj = getattr(obj, part)
    return obj


def identity(df: pd.DataFrame) -> pd.DataFrame:
    """A feature step that changes nothing (for examples and tests)."""
    return df


def _source_hash(fn: Callable[..., Any], path: str) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError) as exc:
        raise InputError(
            f"features.transform {path!r}: its source cannot be read ({exc}); the model "
            "records a hash of it. Name a function defined in a .py file.",
            path=path,
        ) from None
    return hashlib.sha256(source.encode()).hexdigest()


@dataclass(frozen=True)
class FeatureStep:
    """A loaded feature step: its path, its source's SHA-256 and the function."""

    path: str
    sha256: str
    fn: Callable[[pd.DataFrame], pd.DataFrame] = field(compare=False, repr=False)

    @classmethod
    def load(cls, path: str) -> FeatureStep:
        """Import the function ``path`` names (InputError when it cannot, or when it names
        something that is not a function)."""
        fn = resolve(path, "features.transform")
        if isinstance(fn, type) or not callable(fn):
            raise InputError(
                f"features.transform {path!r} names a {type(fn).__name__}, not a function "
                "DataFrame -> DataFrame. Name a function (def add_ratios(df): ...).",
                path=path,
            )
        return cls(path, _source_hash(fn, path), fn)

    @classmethod
    def restore(cls, record: dict[str, Any]) -> FeatureStep:
        """The step a saved model recorded. A changed source loads with a warning, and is
        not refused: the hash changes with any edit (a comment, a reformat), and refusing
        would stop serving the champion and every rollback target (all trained with the old
        source) on such an edit. A step that cannot be imported at all is refused
        (ConfigError): the model cannot score without it."""
        try:
            step = cls.load(str(record["path"]))
        except InputError as exc:
            raise ConfigError(
                f"The model's feature step cannot be loaded: {exc.message}",
                path=record.get("path"),
            ) from None
        if step.sha256 != record["sha256"]:
            log.warning(
                "The feature step %s has changed since this model was trained (source "
                "SHA-256 %s, recorded %s); the model applies the current source. Train a new "
                "version to record it.",
                step.path,
                step.sha256[:12],
                str(record["sha256"])[:12],
            )
        return step

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """The step's output for ``df``: a DataFrame with the same rows (InputError naming
        the step otherwise, and when it raises)."""
        try:
            out = self.fn(df.copy())
        except Exception as exc:
            raise InputError(
                f"The feature step {self.path!r} (features.transform) raised "
                f"{type(exc).__name__}: {exc}. Fix the step or the rows it was given "
                f"(columns {list(df.columns)}).",
                path=self.path,
            ) from None
        if not isinstance(out, pd.DataFrame):
            raise InputError(
                f"The feature step {self.path!r} (features.transform) returned a "
                f"{type(out).__name__}; it must return a pandas DataFrame.",
                path=self.path,
            )
        if len(out) != len(df):
            raise InputError(
                f"The feature step {self.path!r} (features.transform) changed the number of "
                f"rows from {len(df)} to {len(out)}; a step must return one row per input "
                "row, in order (derive columns, do not filter or add rows).",
                path=self.path,
            )
        return out.set_axis(df.index, axis=0)
