"""What the dashboard shows of a fleet, read in a bounded number of queries whatever the number
of members: no monitor, drift or decision history read per member.

The overview's row of a fleet: its members' roles (``store.member_roles``, one query) and each
member's newest decision (``store.latest_decisions``, one query); health and drift are counted
from those decisions' numbers. The fleet page: the members' roles, version counts and training
rows (``store.overview``, three queries) and their newest decisions (one query), sorted and cut
into pages in memory.

>>> rows = [MemberRow("f.b", "b", Roles("f.b", "1.0.0", None), 2, 10, None, "ready"),
...         MemberRow("f.a", "a", Roles("f.a", None, None), 0, 30, None, "no champion")]
>>> [r.key for r in sort_members(rows, "rows", descending=True)]
['a', 'b']
>>> [r.key for r in sort_members(rows, "champion", descending=True)]  # who has one first
['b', 'a']
>>> shown, page, pages = paginate(list(range(120)), page=9, size=50)  # the last page
>>> shown[0], len(shown), page, pages
(100, 20, 3, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...core.entities import Decision, Roles
from ...core.errors import InputError
from ...core.fleet import member_prefix
from .badges import Badge, badge_level

if TYPE_CHECKING:
    from ...core.spec import ModelSpec
    from ...plumbing.workspace import Workspace

NEWEST = 3  # decisions across members on the overview's row of a fleet
PAGE_SIZE = 50  # members per page of the fleet page
SHOWN = 5  # member names a badge's tooltip lists


@dataclass(frozen=True)
class FleetRow:
    """One fleet on the overview."""

    fleet: str
    by: str
    members: int
    champions: int
    loaded: int  # members whose champion this server has loaded (the others load on request)
    rollouts: list[tuple[str, str]]  # (member, rollout text) of members with a challenger
    health: Badge
    drift: Badge
    newest: list[Decision]  # the newest decisions across members, newest first
    next_job: str


@dataclass(frozen=True)
class MemberRow:
    """One member on the fleet page."""

    model: str
    key: str
    roles: Roles
    versions: int
    training_rows: int
    last_decision: Decision | None
    ready: str


@dataclass(frozen=True)
class FleetPage:
    """Everything the fleet page draws (all members: the route sorts and cuts the page)."""

    fleet: str
    by: str
    members: list[MemberRow]


def fleet_row(
    ws: Workspace,
    spec: ModelSpec,
    loaded: Callable[[str], bool],
    rollout: Callable[[Roles], str],
    next_job: str,
) -> FleetRow:
    """The overview's row of fleet ``spec`` in two queries (roles, newest decisions)."""
    roles = {m: r for m, (_rev, r) in ws.store.member_roles(member_prefix(spec.name)).items()}
    latest = ws.store.latest_decisions(list(roles))
    moderate, critical = spec.policy.degradation, spec.policy.critical_degradation
    health = _count(
        latest,
        lambda n: n.get("live_metric") is not None and n.get("degradation") is not None,
        lambda n: badge_level(float(n["degradation"]), moderate, critical),
        ("degraded", "no live metric yet", "its live metric"),
    )
    drift = _count(
        latest,
        lambda n: "data_drift" in n,
        lambda n: "bad" if n.get("critical_drift") else "warn" if n.get("data_drift") else "ok",
        ("drifted", "no drift check yet", "data drift"),
    )
    return FleetRow(
        spec.name,
        spec.fleet.by if spec.fleet is not None else "",
        len(roles),
        sum(r.champion is not None for r in roles.values()),
        sum(loaded(m) for m in roles),
        [(m, rollout(r)) for m, r in sorted(roles.items()) if r.challenger is not None],
        health,
        drift,
        sorted(latest.values(), key=lambda d: d.id or 0, reverse=True)[:NEWEST],
        next_job,
    )


def _count(
    latest: dict[str, Decision],
    measured: Callable[[dict[str, Any]], bool],
    level: Callable[[dict[str, Any]], str],
    words: tuple[str, str, str],
) -> Badge:
    """A fleet badge: how many members' newest decisions measured a problem, coloured by the
    worst one; the tooltip names the first members of the worst level."""
    bad_word, nothing, what = words
    levels = {m: level(d.numbers) for m, d in latest.items() if measured(d.numbers)}
    if not levels:
        return Badge("none", nothing, f"no member's newest decision measured {what}")
    hit = sorted(m for m, lv in levels.items() if lv != "ok")
    worst = "bad" if "bad" in levels.values() else "warn" if hit else "ok"
    names = sorted(m for m, lv in levels.items() if lv == worst)[:SHOWN]
    title = f"from each member's newest decision: {len(levels)} measured {what}"
    if hit:
        title += f"; {'critical' if worst == 'bad' else 'moderate'}: {', '.join(names)}"
        title += " …" if len(names) < sum(lv == worst for lv in levels.values()) else ""
    return Badge(worst, f"{len(hit):,} of {len(levels):,} {bad_word}", title)


def fleet_page(ws: Workspace, spec: ModelSpec, ready: Callable[[str], str]) -> FleetPage:
    """Every member of fleet ``spec`` with its roles, version count, training rows and newest
    decision, in five queries whatever their number."""
    names = ws.members(spec.name)
    latest = ws.store.latest_decisions(names)
    cut = len(member_prefix(spec.name))
    rows = [
        MemberRow(
            o.roles.model, o.roles.model[cut:], o.roles, o.versions, o.training_rows,
            latest.get(o.roles.model), ready(o.roles.model),
        )
        for o in ws.store.overview(names)
    ]  # fmt: skip
    return FleetPage(spec.name, spec.fleet.by if spec.fleet is not None else "", rows)


SORTS: dict[str, Callable[[MemberRow], Any]] = {
    "member": lambda r: r.key,
    "champion": lambda r: (r.roles.champion is not None, _semver(r.roles.champion)),
    "since": lambda r: _when(r.roles.champion_since),
    "versions": lambda r: r.versions,
    "rows": lambda r: r.training_rows,
    "decision": lambda r: _when(r.last_decision.taken_at if r.last_decision else None),
}


def _when(at: datetime | None) -> tuple[bool, str]:
    """A time as a sort key: none first, then in order (ISO text: naive or aware alike)."""
    return (at is not None, at.isoformat() if at is not None else "")


def _semver(v: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in (v or "").split("."))
    except ValueError:
        return ()


def check_sort(sort: str, order: str) -> None:
    """An InputError naming the bad ``sort`` or ``order`` and what the fleet page takes."""
    if sort not in SORTS:
        raise InputError(
            f"The fleet page cannot sort by {sort!r}. Sort by one of: {', '.join(SORTS)} "
            f"(e.g. ?sort=rows&order=desc)."
        )
    if order not in ("asc", "desc"):
        raise InputError(f"The fleet page's order must be 'asc' or 'desc'. Got {order!r}.")


def sort_members(rows: Sequence[MemberRow], sort: str, *, descending: bool) -> list[MemberRow]:
    """``rows`` ordered by column ``sort`` (a key of :data:`SORTS`); ties by name, A to Z."""
    by_name = sorted(rows, key=SORTS["member"])
    return sorted(by_name, key=SORTS[sort], reverse=descending)  # stable: ties keep by_name


def paginate(items: list[Any], page: int, size: int = PAGE_SIZE) -> tuple[list[Any], int, int]:
    """Page ``page`` (1-based, clamped to the pages there are) of ``items``: (its items, the
    page, the number of pages)."""
    pages = max(1, -(-len(items) // size))
    page = min(max(1, page), pages)
    return items[(page - 1) * size : page * size], page, pages
