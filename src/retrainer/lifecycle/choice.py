"""A full retrain chooses its model family, training window, recency weighting, leaf model and
inputs made from time on the newest rows.

The rows are those of the spec's window (``training.window_days``, or all). The gate's holdout
(their newest ``holdout_fraction``, or ``holdout_days``) measures every candidate: first each
family (the spec's and ``training.choice.families``, see ``ModelSpec.other_families``) on the
first window candidate, the champion's family first; then each other window candidate
(``training.choice.windows``) with the family chosen, fitted, unweighted, on its rows before
the holdout and scored there on the primary metric, with the first leaf model of
``training.choice.leaves``; then each half-life (``training.choice.half_lives``) is tried on
the best window, and each other leaf model (regression: linear leaves) on the best window and
weighting, the champion's first (:func:`champion_leaves`); then the inputs made from time
(:mod:`.time_inputs`): the previous actual (a class label when the labels are numbers), then
the time features (the previous row's numeric features and the day of the year), each on
everything chosen before it, the champion's as the incumbent; then, when the choice moved off
the first window's unweighted rows, the families that lost on them once more on its rows. A
candidate displaces the one chosen so far only when it is better by the gate's test: the paired
bootstrap of the primary metric on the holdout, one-sided p below ``gate.significance`` (0.05
when the gate compares plainly); the champion's leaf model, the incumbent, is chosen unless the
one chosen before it is better by that test. The first candidates listed (every row, no
weighting) thus stay unless the newest rows say otherwise beyond chance: a choice that chased
noise on 700 holdout rows lost 0.1-0.3 accuracy points on the quality benchmark's streams. Its
evaluation fit is the one the gate judges, and the version trains on every row since the chosen
window's start with the chosen weights. Every candidate, skipped or scored, is recorded on the
version with its CPU time. One procedure decides (:func:`decide`) wherever the rows are: in a
frame here (:class:`FrameRows`) or in a window's partitions on a Dask cluster
(:class:`retrainer.lifecycle.dask_choice.ClusterRows`, its CPU time that of this process).

Fractions are of the span before the holdout ("1/4": its newest quarter); a half-life
fraction is of the chosen window's span. Weights decay by half every half-life back from the
newest row fitted and are scaled to mean 1, so the family's row-count regularisation means
what it meant unweighted.

>>> import pandas as pd
>>> t = pd.Series(pd.date_range("2020-01-01", periods=5, freq="D"))
>>> recency_weights(t, 2.0).round(3).tolist()
[0.445, 0.629, 0.889, 1.258, 1.779]
>>> window_start("1/2", t.iloc[0], t.iloc[4], None), window_start("all", t.iloc[0], t.iloc[4], None)
(Timestamp('2020-01-03 00:00:00'), Timestamp('2020-01-01 00:00:00'))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..core.custom_metrics import gate_metrics
from ..core.durations import parse_duration
from ..core.entities import Decision, ModelVersion
from ..core.errors import FamilyUnavailableError
from ..core.feature_sets import PREVIOUS_ACTUAL, RESERVED_PREFIX
from ..core.progress import current
from ..core.spec import ModelSpec
from ..evaluation.calibration import Calibrator
from ..evaluation.gate import bootstrap_se, paired_bootstrap
from ..evaluation.min_rows import min_rows_for
from ..families import FamilyModel, family_class
from .time_inputs import TimeInputs, to_try, with_inputs

DAY = pd.Timedelta(days=1)
# the policy rules whose firing says the champion's world changed (besides concept drift)
CHANGE_RULES = frozenset({"critical_degradation"})


@dataclass(frozen=True)
class Candidate:
    """One (window, half-life) tried: its rows and holdout score, or why it was skipped."""

    window: str
    half_life: str
    start: str | None  # the first row's time of its rows before the holdout
    rows: int
    value: float | None = None
    cpu_seconds: float = 0.0
    skipped: str | None = None
    half_life_days: float | None = None
    p_value: float | None = None  # of its improvement over the one chosen before it
    leaves: str = "constant"  # the leaf model (training.choice.leaves)
    # the champion's leaf model (or its time inputs), tried as the incumbent: chosen
    # unless the candidate chosen before it is better beyond chance (its p_value is then that
    # test's)
    held: bool | None = None
    previous_actual: bool | None = None  # the previous actual as an input (.time_inputs)
    time_features: bool | None = None  # the previous row's features and the day of the year
    family: str | None = None  # another family than the spec's (training.choice.families)
    # a blend (family 'ensemble', training.choice.blend): its members, the chosen family first
    members: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ChoiceRecord:
    """What the choice tried and chose; ``details["training_choice"]`` of the version."""

    metric: str
    holdout_rows: int
    chosen: Candidate
    candidates: list[Candidate] = field(default_factory=list)
    cpu_seconds: float = 0.0
    holdout: str | None = None  # None: the gate's holdout; else which rows, and why
    value_se: float | None = None  # the chosen one's standard error on the holdout
    reused_from: str | None = None  # the version whose choice it reused (reuse_choice)
    anew: str | None = None  # why a reused choice was made anew instead (:func:`stale`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "holdout_rows": self.holdout_rows,
            "chosen": _plain(self.chosen),
            "candidates": [_plain(c) for c in self.candidates],
            "cpu_seconds": round(self.cpu_seconds, 4),
            **({"holdout": self.holdout} if self.holdout else {}),
            **({"value_se": round(self.value_se, 6)} if self.value_se is not None else {}),
            **({"reused_from": self.reused_from} if self.reused_from else {}),
            **({"anew": self.anew} if self.anew else {}),
        }

    def summary(self) -> str:
        """``window 1/2 (1,825 rows), half-life none: accuracy 0.871``."""
        c = self.chosen
        value = "" if c.value is None else f": {self.metric} {c.value:.4g}"
        leaves = "" if c.leaves == "constant" else f", {c.leaves} leaves"
        leaves += ", previous actual" if c.previous_actual else ""
        leaves += ", time features" if c.time_features else ""
        if c.members:
            leaves += f", blend of {' and '.join(c.members)}"
        elif c.family:
            leaves += f", family {c.family}"
        return f"window {c.window} ({c.rows:,} rows), half-life {c.half_life}{leaves}{value}"


def _plain(c: Candidate) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in asdict(c).items() if v is not None
    }


def leaf_params(family: str, leaves: str) -> dict[str, Any]:
    """The family params a leaf candidate adds ({} for 'constant').

    >>> leaf_params("lightgbm", "linear"), leaf_params("lightgbm", "constant")
    ({'linear_tree': True}, {})
    """
    if leaves == "constant":
        return {}
    return dict(family_class(family).linear_leaf_params or {})


def with_leaves(spec: ModelSpec, family: str, leaves: str) -> ModelSpec:
    """``spec`` training ``family`` with the leaf model ``leaves`` (see :func:`leaf_params`):
    what every fit after the choice (the size settling, the final fit, the folds) uses."""
    extra = leaf_params(family, leaves)
    if not extra:
        return spec
    return with_params(spec, family, {**spec.params_for(family), **extra})


def with_params(spec: ModelSpec, family: str, params: dict[str, Any]) -> ModelSpec:
    """``spec`` whose ``family`` trains with ``params`` (its other families' params kept):
    a recipe the choice made (a blend's members, a leaf model) for every later fit of it.

    >>> from retrainer.core.spec import ModelSpec
    >>> m = ModelSpec(task="regression", target="y", id_column="i", time_column="t",
    ...     features={"numeric": ["x"]}, family="lightgbm", params={"num_leaves": 7})
    >>> b = with_params(m, "ensemble", {"members": ["lightgbm", "linear"]})
    >>> b.params_for("lightgbm"), b.params_for("ensemble")
    ({'num_leaves': 7}, {'members': ['lightgbm', 'linear']})
    """
    if spec.params_per_family:
        merged = {**spec.params, family: params}
    elif family == spec.family:
        merged = params
    else:  # flat params are the spec family's: kept as its section
        merged = {**({spec.family: dict(spec.params)} if spec.params else {}), family: params}
    return spec.model_copy(update={"params": merged})


def only_family(spec: ModelSpec) -> ModelSpec:
    """``spec`` whose choice tries no other family (``training.choice.families: []``): for a
    training asked for one family by name (``train --family``, ``compare``)."""
    choice = spec.training.choice.model_copy(update={"families": []})
    training = spec.training.model_copy(update={"choice": choice})
    return spec.model_copy(update={"training": training})


def recency_weights(times: pd.Series, half_life_days: float) -> np.ndarray:
    """Weights halving every ``half_life_days`` back from the newest of ``times``, mean 1."""
    t = pd.to_datetime(times)
    age = ((t.iloc[-1] - t) / DAY).to_numpy(dtype=float)
    w = np.power(0.5, age / half_life_days)
    return np.asarray(w / w.mean())


def window_start(
    entry: str, first: pd.Timestamp, end: pd.Timestamp, change_at: pd.Timestamp | None
) -> pd.Timestamp | None:
    """Where window candidate ``entry`` starts, for rows from ``first`` to ``end`` (the
    holdout's start); None for 'since_change' when no change was detected."""
    if entry == "all":
        return first
    if entry == "since_change":
        return change_at
    if "/" in entry:
        num, _, den = entry.partition("/")
        return end - (end - first) * (int(num) / int(den))
    return end - parse_duration(entry, what="training.choice.windows entry")


def half_life_days(entry: str, span: pd.Timedelta) -> float | None:
    """The half-life in days of ``entry`` for a window spanning ``span`` (None: 'none')."""
    if entry == "none":
        return None
    if "/" in entry:
        num, _, den = entry.partition("/")
        return max(span / DAY, 1.0) * int(num) / int(den)
    return parse_duration(entry, what="half-life").total_seconds() / 86400


def _change_run(decisions: Sequence[Decision]) -> list[Decision]:
    """The newest run of decisions that saw a concept drift or a critical degradation of the
    champion, newest first (``decisions`` newest first, as the store lists them). A decision
    that could not judge the champion (too few labelled rows for a live metric, as after
    every deployment of a daily stream) neither ends nor extends the run: only a judged,
    quiet decision ends it."""
    run: list[Decision] = []
    for d in decisions:
        if d.dry_run:
            continue
        fired = d.numbers.get("fired", ())
        if d.numbers.get("concept_drift") or any(r in CHANGE_RULES for r in fired):
            run.append(d)
        elif run and d.numbers.get("live_metric", 0.0) is not None:
            break
    return run


def _utc(t: Any) -> pd.Timestamp:
    found = pd.Timestamp(t)
    return found.tz_convert("UTC").tz_localize(None) if found.tzinfo is not None else found


def last_change(decisions: Sequence[Decision]) -> pd.Timestamp | None:
    """When the world last changed, as the monitor saw it: where the live window began of
    the first decision in the newest run of decisions that saw a change (its ``live_since``:
    the change lies inside the rows that decision measured, so the rows since it hold the
    new concept and at most one window of the old), else that decision's time.

    >>> from datetime import datetime
    >>> seen = Decision("m", "full_retrain", (), {"fired": ["critical_degradation"],
    ...     "live_metric": 3.4, "live_since": "2026-01-02T00:00:00"}, datetime(2026, 2, 1))
    >>> last_change([seen])
    Timestamp('2026-01-02 00:00:00')
    """
    run = _change_run(decisions)
    if not run:
        return None
    first = run[-1]
    return _utc(first.numbers.get("live_since") or first.taken_at)


def change_seen(decisions: Sequence[Decision]) -> pd.Timestamp | None:
    """When a change was last seen: the newest decision of the newest run of changes (a
    choice made before it did not know of it; see :func:`reuse_choice`)."""
    run = _change_run(decisions)
    return _utc(run[0].taken_at) if run else None


Fit = tuple[FamilyModel, Calibrator | None]


def reuse_choice(
    spec: ModelSpec, versions: Sequence[ModelVersion], change_seen: pd.Timestamp | None
) -> tuple[ModelSpec, Reused | None]:
    """The spec a full retrain chooses with, and what to record of it: the last choice's
    window and weighting (of the last choice made, not reused) are reused, as the only
    window candidate, until the retrains it serves have passed since it (``training.choice.
    every``, doubled while the choices confirm each other: :func:`choice_every`) or a change
    was seen after it (``change_seen``, see :func:`change_seen`), or its recipe scores
    worse beyond chance than it did (:func:`stale`, judged by :func:`decide`); else the spec as
    it is (choose anew) and None. A choice re-confirmed without a change mostly keeps the first
    candidates (see the module's text): choosing on every retrain paid 3-5 fits for it. The
    leaf models (``training.choice.leaves``) are tried on every full retrain, on the reused
    window too: one more fit for a regression, and on the quality benchmark's FriedmanDrift
    streams reusing them as well lost 0.004-0.24 of MAE. The time inputs are not tried on a
    reused choice: it keeps the champion's (:class:`Incumbent` ``kept``), one fit instead of
    up to three (a candidate with the time features fits twice the columns)."""
    choice = spec.training.choice
    if not choice.enabled or choice.every <= 1:
        return spec, None
    reuses = 0
    made: list[ModelVersion] = []  # the choices made, newest first
    for v in sorted(versions, key=lambda v: v.created_at, reverse=True):
        record = v.details.get("training_choice")
        if not isinstance(record, dict) or "chosen" not in record:
            continue
        if "reused_from" not in record:
            made.append(v)
        elif not made:  # a reuse since the newest choice
            reuses += 1
    chosen_ones = [v.details["training_choice"]["chosen"] for v in made]
    if not made or reuses + 1 >= choice_every(choice.every, choice.every_max, chosen_ones):
        return spec, None
    made_at = made[0]
    record = made_at.details["training_choice"]
    chosen = record["chosen"]
    seen_since = change_seen is not None and change_seen >= _utc(made_at.created_at)
    if chosen.get("skipped") or seen_since:
        return spec, None
    kept = choice.model_copy(
        update={"windows": [chosen["window"]], "half_lives": [chosen["half_life"]]}
    )
    training = spec.training.model_copy(update={"choice": kept})
    value, se = chosen.get("value"), record.get("value_se")
    reused = Reused(
        made_at.version,
        spec,
        None if value is None else float(value),
        None if se is None else float(se),
    )
    return spec.model_copy(update={"training": training}), reused


def choice_every(every: int, every_max: int, made: Sequence[dict[str, Any]]) -> int:
    """How many full retrains the newest of the choices ``made`` (their ``chosen`` records,
    newest first) serves, itself included: ``every`` (``training.choice.every``), doubled for
    each choice in a row, newest back, that chose the window and weighting of the one before
    it, up to ``every_max``. A stream whose choice keeps confirming itself pays for it less and
    less often; a choice that differs starts over at ``every``. Between choices a reused one is
    still judged on each retrain (:func:`stale`), and a change seen makes the next retrain
    choose anew, so a longer wait costs the benefit of a choice only where nothing was seen to
    move (the NOAA rain stream chose every row, unweighted, on 26 of its 42 retrains).

    >>> every, quarter = {"window": "all", "half_life": "none"}, {"window": "1/4"}
    >>> choice_every(4, 16, [every]), choice_every(4, 16, [every, every])
    (4, 8)
    >>> choice_every(4, 16, [every] * 5), choice_every(4, 16, [quarter, every, every])
    (16, 4)
    """

    def kept(chosen: dict[str, Any]) -> tuple[Any, Any]:  # what a reuse of it keeps
        return chosen.get("window"), chosen.get("half_life")

    streak = 0
    while streak + 1 < len(made) and kept(made[streak]) == kept(made[streak + 1]):
        streak += 1
    return min(every * 2**streak, every_max)


@dataclass(frozen=True)
class Reused:
    """A reused choice (:func:`reuse_choice`): the version that made it, its chosen
    candidate's holdout value and standard error there (None for a choice recorded before
    they were), and the spec a choice made anew chooses with (:func:`stale`)."""

    version: str
    anew: ModelSpec
    value: float | None = None
    se: float | None = None


def stale(spec: ModelSpec, record: ChoiceRecord, reused: Reused) -> str | None:
    """Why a reused choice must be made anew, or None: its recipe scored worse on this
    holdout (``record``'s) than when it was chosen, on ``reused.version``'s, beyond chance at
    the gate's live significance: a one-sided z-test of the two values with their bootstrap
    standard errors. The world the choice was made for has moved (SEA's concept drift: the
    whole window's line fell from 0.892 to 0.848 while the newest quarter's scored 0.870).

    >>> spec = ModelSpec.model_validate({"name": "m", "target": "y", "task": "classification",
    ...     "id_column": "id", "time_column": "t", "features": {"numeric": ["x"]}})
    >>> now = Candidate("all", "none", None, 730, value=0.848)
    >>> record = ChoiceRecord("accuracy", 730, now, [now], value_se=0.013)
    >>> why = stale(spec, record, Reused("1.4.0", spec, 0.892, 0.0115))
    >>> for part in why.split(", "):
    ...     print(part)
    the reused choice's accuracy worsened from 0.892 (on 1.4.0's holdout) to 0.848 on this one
    beyond chance (p = 0.0056): chosen anew
    >>> stale(spec, record, Reused("1.4.0", spec, 0.86, 0.0115)) is None  # may be chance
    True
    """
    value, se, now, se_now = reused.value, reused.se, record.chosen.value, record.value_se
    if value is None or se is None or now is None or se_now is None:
        return None  # a choice recorded before its standard error was: never judged
    spread = math.hypot(se, se_now)
    measure = gate_metrics(spec.gate, spec.task)[record.metric]
    fell = measure.improvement(value, now)  # > 0: worse now
    if spread <= 0 or not fell > 0:
        return None
    p_value = 0.5 * math.erfc(fell / spread / math.sqrt(2))
    if p_value >= spec.gate.live_significance:
        return None
    return (
        f"the reused choice's {record.metric} worsened from {value:.4g} (on {reused.version}'s "
        f"holdout) to {now:.4g} on this one, beyond chance (p = {p_value:.2g}): chosen anew"
    )


def leaves_of(version: ModelVersion) -> str:
    """The leaf model ``version`` was trained with: 'linear' when its params carry its
    family's linear-leaf params (:func:`leaf_params`; a fine-tune continues the trees it was
    given), else 'constant'."""
    family, params = first_member(version.family, version.params)
    try:
        extra = leaf_params(family, "linear")
    except FamilyUnavailableError:
        return "constant"
    held = bool(extra) and all(params.get(k) == v for k, v in extra.items())
    return "linear" if held else "constant"


def first_member(family: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The family and params of a recipe's first model: a blend's (an ``ensemble`` the
    choice made, ``training.choice.blend``) first member, the family it chose; else the
    recipe itself.

    >>> first_member("ensemble", {"members": ["lightgbm", "linear"],
    ...     "member_params": {"lightgbm": {"linear_tree": True}}})
    ('lightgbm', {'linear_tree': True})
    >>> first_member("linear", {"alpha": 1.0})
    ('linear', {'alpha': 1.0})
    """
    members = params.get("members") if family == "ensemble" else None
    if not isinstance(members, list) or not members:
        return family, params
    own = (params.get("member_params") or {}).get(members[0]) or {}
    return str(members[0]), dict(own)


def blend_of(version: ModelVersion) -> tuple[str, ...]:
    """The members of ``version`` when it is a blend of two families (an ``ensemble`` of two
    members), else ()."""
    members = version.params.get("members") if version.family == "ensemble" else None
    if isinstance(members, list) and len(members) == 2:
        return tuple(str(m) for m in members)
    return ()


@dataclass(frozen=True)
class Incumbent:
    """What the champion's recipe holds that the choice tries first, as the incumbent: its
    leaf model (None without a champion), which time inputs it learnt and its family.
    ``reused``: a reused choice (:func:`reuse_choice`), which keeps those inputs and that
    family instead of trying them (``kept``) unless :func:`stale`."""

    leaves: str | None = None
    inputs: TimeInputs = field(default_factory=TimeInputs)
    reused: Reused | None = None
    family: str | None = None  # a blend's: its first member's
    blend: tuple[str, ...] = ()  # a blend's members (training.choice.blend)

    @property
    def kept(self) -> bool:
        return self.reused is not None


def incumbent(versions: Sequence[ModelVersion], champion: str | None) -> Incumbent:
    """The champion's :class:`Incumbent` (an empty one without a champion).

    >>> from datetime import datetime
    >>> v = ModelVersion("m", "1.0.0", None, "lightgbm", {}, datetime(2024, 1, 1), "manual",
    ...     "", "initial", None, None, 10, "", {"numeric": ["x", "__previous_actual"]}, {},
    ...     "", "", None, 0)
    >>> held = incumbent([v], "1.0.0")
    >>> held.leaves, held.inputs.columns, held.family
    ('constant', ['__previous_actual'], 'lightgbm')
    >>> incumbent([v], None).leaves, incumbent([v], None).inputs.columns
    (None, [])
    """
    found = [v for v in versions if v.version == champion]
    if not found:
        return Incumbent()
    v = found[0]
    numeric = v.feature_schema.get("numeric", [])
    family = first_member(v.family, v.params)[0]
    return Incumbent(leaves_of(v), TimeInputs.of_columns(numeric), None, family, blend_of(v))


def inputs_of(candidate: Candidate, spec: ModelSpec) -> TimeInputs:
    """The time inputs ``candidate`` learnt (the time features: of ``spec``'s numeric
    features)."""
    out = TimeInputs(previous_actual=bool(candidate.previous_actual))
    if not candidate.time_features:
        return out
    return out | TimeInputs(previous_row=tuple(spec.active_features.numeric), calendar=True)


def champion_leaves(versions: Sequence[ModelVersion], champion: str | None) -> str | None:
    """The champion's leaf model (:func:`leaves_of`), which a full retrain tries as the
    incumbent among the leaf candidates after the windows and weightings: another leaf
    model, the first listed included, displaces it only by the gate's paired bootstrap.
    Without it, a retrain of a linear-leaf champion came back with constant leaves whenever
    linear ones did not win beyond chance, and the gate held it as worse than the champion
    (17 of 30 retrains on the quality benchmark's FriedmanDrift "lea"). None without a
    champion.

    >>> from datetime import datetime
    >>> v = ModelVersion("m", "1.0.0", None, "lightgbm", {"linear_tree": True},
    ...     datetime(2024, 1, 1), "manual", "", "initial", None, None, 10, "", {}, {}, "", "",
    ...     None, 0)
    >>> champion_leaves([v], "1.0.0"), champion_leaves([v], None)
    ('linear', None)
    """
    found = [v for v in versions if v.version == champion]
    return leaves_of(found[0]) if found else None


class CandidateRows(Protocol):
    """Where the choice's rows are and how a candidate is fitted on them: the local frame
    (:class:`FrameRows`) or the window's partitions on a Dask cluster
    (:class:`retrainer.lifecycle.dask_choice.ClusterRows`). Rows are positions in
    :attr:`times`; :func:`decide` is the one procedure both run."""

    @property
    def times(self) -> pd.Series:
        """Every row's event time, oldest first (indexed 0..n-1)."""
        ...

    @property
    def other_families(self) -> bool:
        """Whether :meth:`fit` can fit another family than the rows' (the cluster's rows
        train only through a family's Dask interface)."""
        ...

    def holdout_rows(self, rows: int) -> int:
        """The rows of a holdout of the newest ``rows``, as these rows cut it (a cut by time
        also takes the rows sharing its first row's time)."""
        ...

    def holdout(self, rows: int) -> tuple[pd.DataFrame, pd.Series]:
        """The features and target of the newest ``rows`` rows, in this process."""
        ...

    def fit(
        self,
        lo: int,
        hi: int,
        half_life: float | None,
        leaves: str = "constant",
        inputs: TimeInputs = TimeInputs(),
        family: str | None = None,
    ) -> Fit:
        """The recipe's evaluation fit on rows ``lo:hi``, weighted when ``half_life`` (days)
        is given as :func:`recency_weights` weighs ``times[lo:hi]``, with the leaf model
        ``leaves`` (:func:`with_leaves`) and the time ``inputs`` (:func:`.time_inputs.
        with_inputs`; only rows whose holdout holds their columns are asked), of ``family``
        (None: the rows'; another only when :attr:`other_families`)."""
        ...

    def cpu(self) -> float:
        """The CPU seconds used so far wherever the fits run (this process, and a cluster's
        workers): what a candidate costs is the difference."""
        ...


@dataclass(frozen=True)
class FrameRows:
    """The choice's rows as a time-ordered frame in this process."""

    spec: ModelSpec
    family: str
    frame: pd.DataFrame

    @property
    def times(self) -> pd.Series:
        return pd.to_datetime(self.frame["event_time"]).reset_index(drop=True)

    @property
    def other_families(self) -> bool:
        return True

    def holdout_rows(self, rows: int) -> int:
        return rows

    def holdout(self, rows: int) -> tuple[pd.DataFrame, pd.Series]:
        tail = self.frame.iloc[len(self.frame) - rows :]
        names = self.spec.feature_names
        made = [c for c in tail.columns if c.startswith(RESERVED_PREFIX) and c not in names]
        return tail[[*names, *made]], tail["target"]  # with any time inputs the frame holds

    def fit(
        self,
        lo: int,
        hi: int,
        half_life: float | None,
        leaves: str = "constant",
        inputs: TimeInputs = TimeInputs(),
        family: str | None = None,
    ) -> Fit:
        from .fitting import fit_for_evaluation

        rows = self.frame.iloc[lo:hi]
        weight = None if half_life is None else recency_weights(rows["event_time"], half_life)
        fam = family or self.family
        spec = with_leaves(self.spec, fam, leaves)
        spec = with_inputs(spec, inputs)
        return fit_for_evaluation(spec, fam, rows[spec.feature_names], rows["target"], weight)

    def cpu(self) -> float:
        return time.process_time()


def choose(
    spec: ModelSpec,
    family: str,
    frame: pd.DataFrame,
    n_hold: int,
    change_at: pd.Timestamp | None = None,
    held: Incumbent | None = None,
) -> tuple[Fit, int, ChoiceRecord]:
    """Fit the candidates on ``frame``'s rows before its newest ``n_hold`` and score them
    there. Returns the chosen candidate's evaluation fit, the index of the first row of the
    chosen window in ``frame``, and the record (whose ``holdout_rows`` the caller's holdout
    becomes: see :func:`holdout_after_change`)."""
    rows = FrameRows(spec, family, frame)
    return decide(spec, family, rows, n_hold, change_at, held)


def decide(
    spec: ModelSpec,
    family: str,
    rows: CandidateRows,
    n_hold: int,
    change_at: pd.Timestamp | None = None,
    held: Incumbent | None = None,
) -> tuple[Fit, int, ChoiceRecord]:
    """The choice on ``rows`` (:func:`candidates`); a reused choice (``held.reused``) whose
    recipe scores worse beyond chance than where it was chosen (:func:`stale`) is made anew
    with every candidate, the reused fit's CPU time counted. Returns as :func:`choose`."""
    fit, lo, record = candidates(spec, family, rows, n_hold, change_at, held)
    if held is None or held.reused is None:
        return fit, lo, record
    reused = held.reused
    why = stale(spec, record, reused)
    if why is None:
        return fit, lo, replace(record, reused_from=reused.version)
    held = replace(held, reused=None)
    fit, lo, anew = candidates(reused.anew, family, rows, n_hold, change_at, held)
    return fit, lo, replace(anew, anew=why, cpu_seconds=anew.cpu_seconds + record.cpu_seconds)


def candidates(
    spec: ModelSpec,
    family: str,
    rows: CandidateRows,
    n_hold: int,
    change_at: pd.Timestamp | None = None,
    held: Incumbent | None = None,
) -> tuple[Fit, int, ChoiceRecord]:
    """The candidates tried on ``rows`` (see the module's text): each family on the first window
    candidate, the champion's first (``held``, see :func:`incumbent`), then each other window
    candidate with the family chosen, fitted on its rows before the newest ``n_hold`` (or
    the holdout after ``change_at``) and scored there, then the half-lives on the best window,
    then the other leaf models, the champion's first as the incumbent, then the time inputs
    (the previous actual, then the time features), the champion's as the incumbent, then the
    families that lost on the first window once more on the rows chosen when those differ; a
    candidate displaces the one chosen so far only by the gate's paired bootstrap. A reused
    choice (``held.kept``) fits its candidates with the champion's family and time inputs and
    tries no other. Returns as :func:`choose`."""
    from .fitting import metric_proba, predict_encoded

    started = rows.cpu()
    metric = spec.primary_metric
    measure = gate_metrics(spec.gate, spec.task)[metric]
    alpha = spec.gate.live_significance
    times = rows.times
    least = max(spec.quality.min_rows, 20)
    n_hold, holdout_note = holdout_after_change(spec, times, n_hold, change_at, least)
    n_hold = rows.holdout_rows(n_hold)
    n_train = len(times) - n_hold
    hold_X, hold_y = rows.holdout(n_hold)
    first, end = times.iloc[0], times.iloc[n_train]
    tried: list[Candidate] = []
    fits: dict[int, tuple[Fit, int]] = {}
    scores: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    seen: set[tuple[int, float | None, str, TimeInputs, str | None]] = set()
    made: dict[tuple[int, float | None, str, TimeInputs, str | None], int] = {}  # the fitted
    held = held or Incumbent()
    best: list[int] = []  # the index chosen so far
    y_hold: np.ndarray | None = None

    def attempt(
        window: str,
        half: str,
        start: pd.Timestamp | None,
        leaves: str = "constant",
        as_incumbent: bool = False,
        inputs: TimeInputs = TimeInputs(),
        fam: str | None = None,
        members: tuple[str, ...] | None = None,
        make: Callable[[int, float | None], Fit] | None = None,
    ) -> None:
        if start is None:
            note = "no concept drift or critical degradation detected"
            tried.append(Candidate(window, half, None, 0, skipped=note, family=fam))
            return
        lo = int(times.searchsorted(max(start, first), side="left"))
        count = n_train - lo
        days = half_life_days(half, end - times.iloc[min(lo, n_train - 1)])
        if count < least:
            tried.append(
                Candidate(
                    window,
                    half,
                    _iso(start),
                    max(count, 0),
                    skipped=f"{max(count, 0)} rows before the holdout, fewer than {least} "
                    "(quality.min_rows)",
                    family=fam,
                )
            )
            return
        if (lo, days, leaves, inputs, fam) in seen:
            tried.append(
                Candidate(
                    window,
                    half,
                    _iso(times.iloc[lo]),
                    count,
                    skipped="same rows",
                    leaves=leaves,
                    family=fam,
                )
            )
            return
        seen.add((lo, days, leaves, inputs, fam))
        t0 = rows.cpu()
        fit = make(lo, days) if make else rows.fit(lo, n_train, days, leaves, inputs, fam)
        nonlocal y_hold
        if y_hold is None:
            y_hold = fit[0].encode_target(hold_y)
        pred, proba = predict_encoded(fit[0], hold_X, fit[1])
        positive = metric_proba(proba)
        value = measure.compute(y_hold, pred, positive)
        p_value = None
        if best and math.isfinite(value):
            # the newcomer's improvement over the one chosen so far; for the incumbent, the
            # chosen one's improvement over it
            pair = (
                ((pred, positive), scores[best[0]])
                if as_incumbent
                else (scores[best[0]], (pred, positive))
            )
            d = paired_bootstrap(
                measure,
                y_hold,
                *pair,
                samples=spec.gate.bootstrap_samples,
                seed=spec.training.seed,
            )
            p_value = float((1 + np.sum(d <= 0)) / (len(d) + 1))
        cand = Candidate(
            window,
            half,
            _iso(times.iloc[lo]),
            count,
            value,
            round(rows.cpu() - t0, 4),
            half_life_days=None if days is None else round(days, 2),
            p_value=None if p_value is None else round(p_value, 4),
            leaves=leaves,
            held=as_incumbent or None,
            previous_actual=inputs.previous_actual or None,
            time_features=inputs.features or None,
            family=fam,
            members=members,
        )
        i = len(tried)
        made[(lo, days, leaves, inputs, fam)] = i
        fits[i], scores[i] = (fit, lo), (pred, positive)
        tried.append(cand)
        beaten = p_value is not None and p_value < alpha
        if math.isfinite(value) and (not best or (beaten != as_incumbent)):
            best[:] = [i]

    choice = spec.training.choice
    compiled = spec.serving.backend == "onnx"
    base, *shaped = choice.leaves_for(spec.task, compiled)  # windows and half-lives: the first
    if base == "linear" and family_class(family).linear_leaf_params is None:
        note = f"the {family} family has no linear leaves; its windows fitted constant ones"
        tried.append(Candidate("all", "none", None, 0, skipped=note, leaves=base))
        base = "constant"
    # the families, first on the first window: the champion's first (kept unless another is
    # better beyond chance), then the spec's and training.choice.families; a reused choice
    # keeps the champion's. On the Dask engine, the spec's only.
    others = [f for f in spec.other_families if f != family] if rows.other_families else []
    own = held.family if held.family in others else None
    if own is not None and _cannot_try(own, spec, False) is not None:
        own = None
    families = [own or family, *(f for f in [family, *others] if f != (own or family))]

    def tag(fam: str) -> str | None:  # a candidate records a family other than the spec's
        return None if fam == family else fam

    if held.kept:
        families = families[:1]
    shown = current()
    # the time inputs whose columns the rows hold (a sequence model reads its history itself)
    stages = [
        i
        for i in to_try(spec)
        if i.columns
        and all(c in hold_X.columns for c in i.columns)
        and not getattr(family_class(family), "sequence", False)
        and not held.kept  # a reused choice keeps the champion's instead
    ]
    kept = held.inputs if held.kept else TimeInputs()
    halves = [h for h in choice.half_lives if h != "none"]
    blends = choice.blend and rows.other_families and (held.blend if held.kept else families[1:])
    total = len(families) + len(choice.windows) - 1 + len(halves) + len(shaped) + len(stages)
    total += 1 if blends else 0
    shown.stage("window choice", total=total, unit="candidates")
    first_window, *windows = choice.windows
    at = window_start(first_window, first, end, change_at)
    n_before = len(tried)  # the families' candidates follow
    for i, fam in enumerate(families):
        shown.advance()
        why = None if i == 0 else _cannot_try(fam, spec, False)
        if why is not None:
            tried.append(Candidate(first_window, "none", None, 0, skipped=why, family=fam))
            continue
        try:
            attempt(first_window, "none", at, _leaves(fam, base), False, kept, tag(fam))
        except ValueError as exc:  # e.g. an estimator that takes no missing value
            if i == 0:
                raise
            note = _not_fitted(exc)
            tried.append(Candidate(first_window, "none", None, 0, skipped=note, family=fam))
    fitted_as = (tried[best[0]].family if best else None) or own or family
    fam_of, base = tag(fitted_as), _leaves(fitted_as, base)
    linear = family_class(fitted_as).linear_leaf_params is not None
    weighted = family_class(fitted_as).capabilities.sample_weight
    for window in windows:
        attempt(
            window, "none", window_start(window, first, end, change_at), base, False, kept, fam_of
        )
        shown.advance()
    if best:
        on = tried[best[0]]
        # a fitted model knows its own (an sklearn family's: its estimator's fit)
        weighted = weighted and fits[best[0]][0][0].capabilities.sample_weight
        for half in choice.half_lives:
            if half == "none":
                continue
            shown.advance()
            if not weighted:
                note = f"the {fitted_as} family takes no row weights"
                tried.append(Candidate(on.window, half, None, 0, skipped=note))
                continue
            attempt(on.window, half, pd.Timestamp(on.start), base, False, kept, fam_of)
        on = tried[best[0]]  # the leaf models are tried on the best window and weighting
        if held.leaves in shaped:  # the champion's first, as the incumbent
            shaped = [held.leaves, *(x for x in shaped if x != held.leaves)]
        for leaves in shaped:
            shown.advance()
            if leaves == "linear" and not linear:
                if fitted_as == family:  # the spec's: say so; another family's: not asked
                    note = f"the {fitted_as} family has no {leaves} leaves"
                    skip = Candidate(on.window, on.half_life, None, 0, skipped=note, leaves=leaves)
                    tried.append(skip)
                continue
            start = pd.Timestamp(on.start)  # with its inputs (a reused choice's kept ones)
            attempt(on.window, on.half_life, start, leaves, leaves == held.leaves, kept, fam_of)
        for extra in stages:  # the previous actual, then the time features, on the choice
            shown.advance()
            on = tried[best[0]]
            inputs = inputs_of(on, spec) | extra
            if extra.previous_actual and hold_X[PREVIOUS_ACTUAL].isna().all():
                note = "the labels are not numbers: the previous actual is a number column"
                skip = Candidate(on.window, on.half_life, None, 0, skipped=note, leaves=on.leaves)
                tried.append(replace(skip, previous_actual=True, family=on.family))
                continue
            was = set(held.inputs.columns) >= set(extra.columns)  # the champion learnt them
            try:
                start = pd.Timestamp(on.start)
                attempt(on.window, on.half_life, start, on.leaves, was, inputs, on.family)
            except ValueError as exc:  # an estimator that takes no missing value, e.g.
                note = _not_fitted(exc)
                skip = Candidate(on.window, on.half_life, None, 0, skipped=note, leaves=on.leaves)
                skip = replace(
                    skip,
                    previous_actual=inputs.previous_actual or None,
                    time_features=inputs.features or None,
                    family=on.family,
                )
                tried.append(skip)
        on = tried[best[0]]
        if (on.window, on.half_life) != (first_window, "none"):
            # the families that lost on the first window, again on the rows and weights
            # chosen since (a linear champion's rows since a change may suit trees again)
            lost = [
                c.family or family
                for c in tried[n_before : n_before + len(families)]
                if c.skipped is None and (c.family or family) != fitted_as
            ]
            for fam in lost:
                start, inputs = pd.Timestamp(on.start), inputs_of(on, spec)
                why = _cannot_try(fam, spec, on.half_life != "none")
                if why is not None:  # e.g. a family without row weights, on weighted rows
                    tried.append(
                        Candidate(on.window, on.half_life, None, 0, skipped=why, family=fam)
                    )
                    continue
                try:
                    attempt(
                        on.window, on.half_life, start, _leaves(fam, base), False, inputs, tag(fam)
                    )
                except ValueError as exc:  # e.g. an estimator that takes no missing value
                    skip = Candidate(
                        on.window, on.half_life, None, 0, skipped=_not_fitted(exc), family=fam
                    )
                    tried.append(skip)
    last = tried[best[0]] if blends and best else None
    trials = tried[n_before : n_before + len(families)]
    partner = (
        None if last is None else _partner(trials, family, last.family or family, held, measure)
    )
    if last is not None and partner is not None:
        on = last
        shown.advance()
        own_fit, lo = fits[best[0]]
        inputs = inputs_of(on, spec)
        pair = (on.family or family, partner)
        why = _cannot_blend(pair, spec, on.half_life != "none")
        leaves_other, fam_other = _leaves(partner, base), tag(partner)

        def blend(lo: int, days: float | None) -> Fit:  # the other family's fit, once
            from ..families.ensemble import EnsembleModel

            at = made.get((lo, days, leaves_other, inputs, fam_other))
            other = (
                fits[at][0]
                if at is not None
                else rows.fit(lo, n_train, days, leaves_other, inputs, fam_other)
            )
            return EnsembleModel.of([own_fit[0], other[0]]), None

        start = pd.Timestamp(on.start)
        if why is not None:
            skip = Candidate(on.window, on.half_life, None, 0, skipped=why, leaves=on.leaves)
            tried.append(replace(skip, family="ensemble", members=pair))
        else:
            try:
                attempt(
                    on.window,
                    on.half_life,
                    start,
                    on.leaves,
                    bool(held.blend),
                    inputs,
                    "ensemble",
                    pair,
                    blend,
                )
            except ValueError as exc:  # the other family could not fit these rows
                skip = Candidate(on.window, on.half_life, None, 0, skipped=_not_fitted(exc))
                tried.append(replace(skip, family="ensemble", members=pair))
    if not best:  # every candidate too short: the whole window, as without a choice
        fit = rows.fit(0, n_train, None)
        chosen = Candidate("all", "none", _iso(first), n_train, skipped="every candidate skipped")
        record = ChoiceRecord(metric, n_hold, chosen, tried, rows.cpu() - started, holdout_note)
        return fit, 0, record
    fit, lo = fits[best[0]]
    assert y_hold is not None  # set by the first fit
    samples, seed = spec.gate.bootstrap_samples, spec.training.seed
    se = bootstrap_se(measure, y_hold, scores[best[0]], samples=samples, seed=seed)
    record = ChoiceRecord(
        metric, n_hold, tried[best[0]], tried, rows.cpu() - started, holdout_note, se
    )
    return fit, lo, record


def _leaves(family: str, base: str) -> str:
    """The leaf model ``family`` fits the windows with: ``base``, or constant leaves for a
    family that has no linear ones."""
    return base if family_class(family).linear_leaf_params is not None else "constant"


def _partner(
    trials: Sequence[Candidate], family: str, chosen: str, held: Incumbent, measure: Any
) -> str | None:
    """The family a blend pairs with ``chosen`` (the family the choice chose): on a reused
    choice, the other member of the champion's blend (None when the champion is no blend: a
    reused choice tries none); else the best scored of the other families in ``trials`` (the
    families' candidates on the first window; ``family``: the spec's)."""
    if held.kept:
        return next((m for m in held.blend if m != chosen), None)
    scored = [
        c
        for c in trials
        if c.skipped is None
        and c.value is not None
        and math.isfinite(c.value)
        and (c.family or family) != chosen
    ]
    sign = -1.0 if measure.bigger_is_better else 1.0
    ranked = sorted(scored, key=lambda c: sign * float(c.value or 0.0))
    return (ranked[0].family or family) if ranked else None


def _cannot_blend(pair: tuple[str, str], spec: ModelSpec, weighted: bool) -> str | None:
    """Why the blend of ``pair`` (the family chosen, then the one to fit on its rows) cannot
    be a candidate (None: it can); ``weighted``: on a choice that weighs rows by recency.

    >>> from retrainer.core.spec import ModelSpec
    >>> spec = ModelSpec(task="regression", target="y", id_column="i", time_column="t",
    ...     features={"numeric": ["x"]})
    >>> _cannot_blend(("lightgbm", "river"), spec, True)
    'the river family takes no row weights (the choice weighs by recency)'
    >>> _cannot_blend(("lightgbm", "linear"), spec, True) is None
    True
    """
    from .fitting import uses_calibration

    if uses_calibration(spec):
        return f"calibration: {spec.calibration} maps one model's probabilities, not a blend's"
    if "ensemble" in pair:
        return "an ensemble is not blended again"
    sequence = [f for f in pair if getattr(family_class(f), "sequence", False)]
    if sequence:
        return f"the {sequence[0]} family reads each entity's history: it is not blended"
    return _cannot_try("ensemble", spec, False) or _cannot_try(pair[1], spec, weighted)


def _not_fitted(exc: Exception) -> str:
    """What a candidate an estimator could not fit records: the estimator's message."""
    return f"not fitted: {' '.join(str(exc).split())[:200]}"


def _cannot_try(other: str, spec: ModelSpec, weighted: bool) -> str | None:
    """Why family ``other`` cannot be a candidate (None: it can); ``weighted``: on a choice
    that weighs rows by recency."""
    if spec.active_features.transform is not None:
        return "features.transform is the spec's family's feature step"
    try:
        klass = family_class(other)
    except FamilyUnavailableError as exc:
        return exc.message
    if spec.serving.backend == "onnx":
        from ..families.compiled import COMPILED_FAMILIES

        if other not in COMPILED_FAMILIES:
            return f"serving.backend: onnx cannot compile the {other} family"
    if weighted and not klass.capabilities.sample_weight:
        return f"the {other} family takes no row weights (the choice weighs by recency)"
    return None


def holdout_after_change(
    spec: ModelSpec,
    times: pd.Series,
    n_hold: int,
    change_at: pd.Timestamp | None,
    least: int,
) -> tuple[int, str | None]:
    """The holdout the candidates are judged on: the gate's (``n_hold`` newest rows), or,
    after a detected change, the newest ``holdout_fraction`` of the rows since it (at least
    the gate's minimum, so the gate can judge the result) once the rows since the change also
    leave ``least`` to learn from. Rows from before a change measure a concept the model
    will not face again; a 2-year holdout would keep every candidate judged on the old
    concept for 2 years after it changed.

    >>> t = pd.Series(pd.date_range("2020-01-01", periods=1000, freq="D"))
    >>> from retrainer.core.spec import parse_spec
    >>> spec = parse_spec({"models": {"m": {"task": "regression", "target": "y",
    ...     "id_column": "i", "time_column": "t", "features": {"numeric": ["x"]}}}},
    ...     environ={}).models["m"]
    >>> holdout_after_change(spec, t, 200, t.iloc[600], 100)
    (100, 'the rows since the change on 2021-08-23: 100 of 400')
    >>> holdout_after_change(spec, t, 200, t.iloc[850], 100)[0]  # too few rows since it
    200
    """
    if change_at is None:
        return n_hold, None
    since = len(times) - int(times.searchsorted(change_at, side="left"))
    fewest = min_rows_for(spec.gate, n_hold, len(times)).rows
    rows = max(fewest, round(since * spec.training.holdout_fraction))
    if rows >= n_hold or since - rows < least:
        return n_hold, None
    note = f"the rows since the change on {change_at.date().isoformat()}: {rows} of {since}"
    return rows, note


def _iso(t: pd.Timestamp | None) -> str | None:
    return None if t is None else pd.Timestamp(t).isoformat()
