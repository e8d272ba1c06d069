"""Which feature columns a model uses: one accessor for every reader of the spec's features.

A model lists its features either once (``features: {numeric, categorical}``) or as named
sets chosen by one flag (``feature_sets: {original: {...}, enhanced: {...}}`` with
``feature_set: enhanced``), falling back to ``fallback_feature_set`` (default: the first set)
when the chosen set's columns are missing from the rows a training reads. Three views:

- :func:`active` — the set the flag chooses (``features`` for a single list);
- :func:`stored` — every column of every set: what ingest keeps, predictions log, sources read;
- :func:`required` — the fallback set's columns: what every ingested row must have.

:func:`resolve` picks the set a training uses from the columns its rows hold, and says why
when it fell back. A version keeps the columns it was trained on in its feature schema;
serving, gating and monitoring read them from the version, never from the flag.

>>> from retrainer.core.spec import ModelSpec
>>> spec = ModelSpec(task="regression", target="y", id_column="i", time_column="t",
...     feature_sets={"original": {"numeric": ["a"]}, "enhanced": {"numeric": ["a", "b"]}},
...     feature_set="enhanced")
>>> active(spec).all, stored(spec).all, required(spec).all
(['a', 'b'], ['a', 'b'], ['a'])
>>> choice = resolve(spec, ["a"])
>>> choice.name, choice.spec.feature_names, choice.reason
('original', ['a'], "feature set 'enhanced' needs column(s) ['b'], which the rows do not hold")
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .spec_sections import Features

if TYPE_CHECKING:
    from .spec import ModelSpec

# the inputs a retrain may add from a row's place in time, filled by every path that scores
# rows (retrainer.lifecycle.time_inputs): the newest actual before the row, that row's value of
# each numeric feature, the day of the year; no spec may name a column with the prefix
RESERVED_PREFIX = "__"
PREVIOUS_ACTUAL = "__previous_actual"
PREVIOUS_PREFIX = "__previous:"
DAY_SIN, DAY_COS = "__day_of_year_sin", "__day_of_year_cos"


@dataclass(frozen=True)
class FeatureChoice:
    """The set a training uses: ``spec`` with the flag set to it, its name (None for a single
    ``features`` list), the set the flag asked for, and why it fell back ("" when it did not)."""

    spec: ModelSpec
    name: str | None
    requested: str | None
    reason: str = ""
    missing: list[str] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        """What a version records of the choice (nothing for a single ``features`` list)."""
        if self.name is None:
            return {}
        out: dict[str, Any] = {"name": self.name}
        if self.reason:
            out.update(requested=self.requested, reason=self.reason, missing=self.missing)
        return out


def set_names(spec: ModelSpec) -> list[str]:
    """The names of the spec's feature sets, in the spec's order (empty for ``features``)."""
    return list(spec.feature_sets)


def chosen_name(spec: ModelSpec) -> str | None:
    """The set the flag chooses: ``feature_set``, else the fallback set; None without sets."""
    if not spec.feature_sets:
        return None
    return spec.feature_set or fallback_name(spec)


def fallback_name(spec: ModelSpec) -> str | None:
    """The set a training falls back to: ``fallback_feature_set``, else the first set."""
    if not spec.feature_sets:
        return None
    return spec.fallback_feature_set or next(iter(spec.feature_sets))


def active(spec: ModelSpec) -> Features:
    """The feature columns the flag chooses (``features`` when the spec has no sets)."""
    name = chosen_name(spec)
    return spec.features if name is None else spec.feature_sets[name]


def required(spec: ModelSpec) -> Features:
    """The columns every ingested row must hold: the fallback set's (or ``features``)."""
    name = fallback_name(spec)
    return spec.features if name is None else spec.feature_sets[name]


def stored(spec: ModelSpec) -> Features:
    """Every column of every set, each once, in first-seen order: what is kept of a row."""
    if not spec.feature_sets:
        return spec.features
    numeric: list[str] = []
    categorical: list[str] = []
    for fs in spec.feature_sets.values():
        numeric += [c for c in fs.numeric if c not in numeric]
        categorical += [c for c in fs.categorical if c not in categorical]
    return Features(numeric=numeric, categorical=categorical)


def check_sets(sets: Mapping[str, Features], chosen: str | None, fallback: str | None) -> None:
    """Load-time rules of ``feature_sets`` (raises ValueError naming the set and the fix)."""
    import difflib

    names = list(sets)
    for key, name in (("feature_set", chosen), ("fallback_feature_set", fallback)):
        if name is not None and name not in sets:
            if not names:
                raise ValueError(
                    f"{key} {name!r} names a feature set, but the model has no feature_sets; "
                    "define feature_sets: {<name>: {numeric: [...], categorical: [...]}} or "
                    f"remove {key}"
                )
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"{key} {name!r} is not a feature set of this model; {hint}"
                f"set it to one of: {', '.join(names)}"
            )
    kinds: dict[str, tuple[str, str]] = {}
    for name, fs in sets.items():
        if not fs.all:
            raise ValueError(f"feature_sets.{name} lists no column; add numeric or categorical")
        for kind, cols in (("numeric", fs.numeric), ("categorical", fs.categorical)):
            for col in cols:
                seen = kinds.setdefault(col, (kind, name))
                if seen[0] != kind:
                    raise ValueError(
                        f"column {col!r} is {seen[0]} in feature_sets.{seen[1]} but {kind} in "
                        f"feature_sets.{name}; a column has one type in every set"
                    )


def resolve(spec: ModelSpec, present: Collection[str]) -> FeatureChoice:
    """The set a training on rows holding the columns ``present`` (with values) uses: the
    flag's set, or the fallback set when the flag's lacks columns. Raises InputError when the
    set it would use lacks columns too."""
    name = chosen_name(spec)
    missing = [c for c in active(spec).all if c not in present]
    if not missing:
        return FeatureChoice(spec, name, name)
    backup = fallback_name(spec)
    if name is None or backup is None or backup == name:
        raise InputError(
            f"Feature(s) {missing} are in the spec of {spec.name!r} but not in its stored rows. "
            "Re-ingest data that has them, or remove them from the spec.",
            missing=missing,
        )
    lacking = [c for c in spec.feature_sets[backup].all if c not in present]
    if lacking:
        raise InputError(
            f"Feature set {name!r} of {spec.name!r} needs {missing} and its fallback set "
            f"{backup!r} needs {lacking}; the stored rows hold neither. Re-ingest data that "
            "has them, or fix feature_sets in the spec.",
            missing=lacking,
        )
    reason = f"feature set {name!r} needs column(s) {missing}, which the rows do not hold"
    fell = spec.model_copy(update={"feature_set": backup})
    return FeatureChoice(fell, backup, name, reason, missing)


def present_columns(frame: Any) -> list[str]:
    """The columns of a frame that hold at least one value (a column no row has is absent)."""
    return [c for c in frame.columns if bool(frame[c].notna().any())]
