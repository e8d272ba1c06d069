"""Predict for a fleet: ``POST /v1/models/<fleet>/predict`` with rows that carry the fleet's
``by`` column. The rows are grouped by member (one factorize of the column; no per-row work
but reading it), each group is scored by its member's served version (the member's own
champion, A/B, canary or shadow routing, keyed by the group's first entity id as a plain
model's batch is), and the answers are put back in the request's row order.

The response holds what a plain model's does, per row where the members differ:
``members``, ``versions`` and ``arms`` (one entry per row); when every row goes to one
member it also holds ``member``, ``version`` and ``arm``, so a one-entity request reads as a
plain model's. Each member's rows are logged under the member's name (with only its rows as
the stored input), so feedback, monitoring and drift work per member.

A row whose entity has no member yet, or whose member has no champion, fails the whole
request with 409 (``no_champion``) naming each such entity, its member and the fix: a
partial answer would hand back a list with holes that a client zipping rows to predictions
would misread, and a plain model with no champion answers 409 for the whole request too.
A row without the ``by`` value is a 422, as any invalid row.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..core.clock import utcnow
from ..core.errors import InputError, NoChampion, RetrainerError
from ..core.fleet import member_name
from ..core.names import MAX_ID, text_problem
from ..core.spec import ModelSpec
from ..evaluation.conformal import interval_bounds
from .errors import MAX_REPORTED, TooLarge, json_response, row_errors
from .logqueue import LogItem
from .predict import Unknown, score, warnings
from .routing import pick
from .sequence import time_rows

if TYPE_CHECKING:
    from .app import ServerState
    from .model_holder import Loaded, Served

_ABSENT: Any = object()
_NOT_OBJECT: Any = object()
MAX_NAMED = 20  # entities named in a 409


@dataclass(frozen=True)
class Group:
    """The rows of one member: their positions in the request and the rows themselves."""

    entity: str
    member: str
    index: np.ndarray
    rows: list[Any]


def entity_keys(rows: list[Any], by: str) -> list[str]:
    """Each row's entity as text (as ingest stores it: an integer as its digits); an
    InputError naming the rows without a usable value.

    >>> entity_keys([{"store": "a"}, {"store": 7}], "store")
    ['a', '7']
    >>> try:
    ...     entity_keys([{"store": None}], "store")
    ... except InputError as e:
    ...     e.details["errors"][0]["problem"]
    'missing: a fleet routes each row by this column'
    """
    keys = [r.get(by, _ABSENT) if type(r) is dict else _NOT_OBJECT for r in rows]
    kinds = set(map(type, keys))
    if kinds <= {str}:
        texts: list[str] = keys
    elif kinds <= {str, int}:
        texts = [k if type(k) is str else str(k) for k in keys]
    else:
        texts = []
    bad = []
    if len(texts) != len(keys):
        bad = [(i, _problem(k)) for i, k in enumerate(keys) if type(k) not in (str, int)]
    else:
        joined = "".join(texts)
        if "\x00" in joined or len(max(texts, key=len)) > MAX_ID or not joined.isascii():
            found = ((i, text_problem(t, MAX_ID)) for i, t in enumerate(texts))
            bad = [(i, p) for i, p in found if p is not None]
    if bad:
        problems = [{"row": i, "field": by, "problem": p} for i, p in bad[:MAX_REPORTED]]
        raise row_errors(problems, len(bad))
    return texts


def _problem(value: Any) -> str:
    if value is _NOT_OBJECT:
        return "a row must be an object"
    if value is _ABSENT or value is None:
        return "missing: a fleet routes each row by this column"
    return f"must be a string or an integer naming the entity, got {type(value).__name__}"


def group_rows(fleet: str, rows: list[Any], keys: list[str]) -> list[Group]:
    """The request's rows by member, in order of each entity's first row.

    >>> [(g.member, g.index.tolist()) for g in group_rows("f", [{}, {}, {}], ["a", "b", "a"])]
    [('f.a', [0, 2]), ('f.b', [1])]
    """
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    if len(uniques) == 1:
        return [Group(str(uniques[0]), member_name(fleet, str(uniques[0])), np.arange(len(rows)),
                      rows)]  # fmt: skip
    order = np.argsort(codes, kind="stable")
    parts = np.split(order, np.cumsum(np.bincount(codes))[:-1])
    out = []
    for entity, index in zip(uniques, parts, strict=True):
        picked = itemgetter(*index)(rows) if len(index) > 1 else (rows[index[0]],)
        out.append(Group(str(entity), member_name(fleet, str(entity)), index, list(picked)))
    return out


async def check_members(state: ServerState, fleet: str, groups: list[Group]) -> None:
    """Load each member's champion that waits for its first request; a 409 naming every
    entity that cannot be scored (no member yet, or no champion) and what to do."""
    registry = state.registry
    waiting = [g.member for g in groups if g.member in registry.lazy]
    if waiting:  # a file read and a model parse each: off the event loop
        await run_in_threadpool(lambda: [registry.ensure(m) for m in waiting])
    missing = []
    for g in groups:
        served = registry.served.get(g.member)
        if served is None:
            missing.append(_no_member(g, fleet))
        elif served.champion is None:
            missing.append(_no_champion(g, registry.wanted.get(g.member)))
    if missing:
        first = missing[0]["message"]
        more = f" ({len(missing)} entities in all; see details)" if len(missing) > 1 else ""
        raise NoChampion(
            f"Fleet {fleet!r}: {first}{more}", entities=missing[:MAX_NAMED], count=len(missing)
        )


def _no_member(g: Group, fleet: str) -> dict[str, Any]:
    return {
        "entity": g.entity,
        "member": g.member,
        "rows": g.index[:5].tolist(),
        "message": f"entity {g.entity!r} has no model yet (member {g.member!r} does not "
        f"exist: no rows of it were ingested). Ingest its rows (`retrainer ingest {fleet} "
        f"FILE`), then train it (`retrainer train {g.member} --deploy`).",
    }


def _no_champion(g: Group, wanted: str | None) -> dict[str, Any]:
    why = (
        f"its champion {wanted} is not loaded (it failed verification or loading; see /ready "
        "and the server log)"
        if wanted
        else f"it has no champion. Train one: `retrainer train {g.member} --deploy`"
    )
    return {
        "entity": g.entity,
        "member": g.member,
        "rows": g.index[:5].tolist(),
        "message": f"entity {g.entity!r} (member {g.member!r}): {why}.",
    }


@dataclass
class Scored:
    group: Group
    served: Served
    loaded: Loaded
    arm: str
    shadow: str | None
    ids: list[str | None]
    outputs: list[Any]
    probabilities: list[dict[str, float]] | None
    probas: list[float | None] | None
    unknown: list[Unknown]


def score_group(
    g: Group, served: Served, spec: ModelSpec, rid: str, state: ServerState | None = None
) -> Scored:
    """One member's rows scored by the version its rollout routes them to (a version that
    learnt time inputs gets them from the member's newest stored row, through ``state``'s
    cache); a row problem's index is the request's (not the group's)."""
    loaded, r = pick(served, g.member, g.rows, spec.id_column, rid)
    rows = g.rows
    if state is not None:
        rows = time_rows(state, g.member, spec.time_column, loaded, rows)
    try:
        X, ids, unknown = loaded.codec.encode(rows)
    except InputError as exc:
        raise _renumber(exc, g.index) from None
    outputs, probabilities, probas = score(loaded, X)
    index = g.index.tolist()
    unknown = [Unknown(index[u.row], u.feature, u.value) for u in unknown]
    return Scored(g, served, loaded, r.arm, r.shadow, ids, outputs, probabilities, probas,
                  unknown)  # fmt: skip


def _renumber(exc: InputError, index: np.ndarray) -> InputError:
    errors = exc.details.get("errors")
    if not errors:
        return exc
    fixed = [{**e, "row": int(index[e["row"]]) if e.get("row") is not None else None}
             for e in errors]  # fmt: skip
    out = row_errors(fixed, len(fixed))
    out.details.update({k: v for k, v in exc.details.items() if k != "errors"})
    return out


async def predict_fleet(
    state: ServerState, spec: ModelSpec, text: str, body: Any, rid: str, t0: float
) -> Response:
    """Answer one fleet predict request (see the module docstring)."""
    assert spec.fleet is not None
    from .predict import parse_rows

    fleet, by = spec.name, spec.fleet.by
    try:
        rows = parse_rows(body, spec.serving.max_batch_rows)
        groups = group_rows(fleet, rows, entity_keys(rows, by))
        await check_members(state, fleet, groups)
        served = {g.member: state.registry.served[g.member] for g in groups}
        scored = []
        for g in groups:
            try:
                scored.append(score_group(g, served[g.member], spec, rid, state))
            except RetrainerError as exc:
                state.metrics.error(g.member, "-", "-", exc.code)
                raise
    except RetrainerError as exc:
        state.metrics.error(fleet, "-", "-", exc.code)
        raise
    except TooLarge:
        state.metrics.error(fleet, "-", "-", "payload_too_large")
        raise
    out = _body(scored, len(rows), rid)
    response = json_response(out, headers={"x-request-id": rid})
    _log(state, scored, text, rid, spec.time_column)
    seconds = time.perf_counter() - t0
    for s in scored:
        state.metrics.observe(s.group.member, s.loaded.version, s.arm, 200, seconds)
        if s.unknown:
            state.metrics.unknown(s.group.member, s.unknown)
    return response


def _body(scored: list[Scored], n: int, rid: str) -> dict[str, Any]:
    """The response: per-row lists put together in the request's order."""
    predictions = _column(n, scored, lambda s: s.outputs)
    body: dict[str, Any] = {"predictions": predictions}
    if any(s.probabilities is not None for s in scored):
        body["probabilities"] = _column(n, scored, lambda s: s.probabilities or [None] * len(
            s.outputs))  # fmt: skip
    if any(s.loaded.predictor.interval is not None for s in scored):
        lower: list[float | None] = [None] * n
        upper: list[float | None] = [None] * n
        for s in scored:
            if s.loaded.predictor.interval is not None:
                lo, hi = interval_bounds(s.loaded.predictor.interval, s.outputs)
                for i, a, b in zip(s.group.index.tolist(), lo, hi, strict=True):
                    lower[i], upper[i] = a, b
        body["lower"], body["upper"] = lower, upper
    unknown = sorted((u for s in scored for u in s.unknown), key=lambda u: u.row)
    if unknown:
        body.update(warnings(unknown))
    if len(scored) == 1:
        s = scored[0]
        body.update(member=s.group.member, version=s.loaded.version, arm=s.arm)
        body.update(members=[s.group.member] * n, versions=[s.loaded.version] * n,
                    arms=[s.arm] * n)  # fmt: skip
    else:
        body["members"] = _column(n, scored, lambda s: [s.group.member] * len(s.outputs))
        body["versions"] = _column(n, scored, lambda s: [s.loaded.version] * len(s.outputs))
        body["arms"] = _column(n, scored, lambda s: [s.arm] * len(s.outputs))
    body["request_id"] = rid
    return body


def _column(n: int, scored: list[Scored], values: Any) -> list[Any]:
    """One per-row list from each group's values, scattered to the rows' positions."""
    if len(scored) == 1:
        return list(values(scored[0]))
    out = np.empty(n, dtype=object)
    for s in scored:
        part = np.empty(len(s.group.index), dtype=object)
        part[:] = values(s)
        out[s.group.index] = part
    return out.tolist()


def _log(state: ServerState, scored: list[Scored], text: str, rid: str, time_column: str) -> None:
    """One log item per member, under the member's name, with only its rows as the input."""
    if state.logq is None:
        return
    now = utcnow()
    for s in scored:
        body = text if len(scored) == 1 else _rows_text(s.group.rows)
        shadow = s.served.challenger
        if s.shadow is None or shadow is None or shadow.version != s.shadow:
            shadow = None
        state.logq.put(
            LogItem(
                s.group.member,
                rid,
                s.loaded.version,
                s.arm,
                body,
                s.ids,
                now,
                s.outputs,
                s.probas,
                shadow=shadow,
                rows=None
                if shadow is None
                else time_rows(state, s.group.member, time_column, shadow, s.group.rows),
            )
        )


def _rows_text(rows: list[Any]) -> str:
    """A member's rows as the stored input text ``{"rows": [...]}``."""
    try:
        return orjson.dumps({"rows": rows}).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits): json takes it
        return json.dumps({"rows": rows}, default=str)
