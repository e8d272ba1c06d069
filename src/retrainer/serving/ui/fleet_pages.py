"""The fleet page's HTML (``/ui/fleets/NAME``): the members, a page of ``PAGE_SIZE`` at a time,
sortable by each column (a link per header), filtered by a part of the member's name; each
member links to its own model page. Every value is escaped.

>>> View("rows", "desc", 2, "a b").query(page=3)
'sort=rows&order=desc&page=3&q=a+b'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from .fleet import PAGE_SIZE, FleetPage, MemberRow, paginate, sort_members
from .pages import _decision_cell, banner, e, layout
from .script import POLL_JS
from .snapshot import Read, _rollout_text

COLUMNS = (
    ("member", "member"), ("champion", "champion"), ("since", "champion since"),
    (None, "challenger / rollout"), ("versions", "versions"), ("rows", "training rows"),
    ("decision", "last decision"), (None, "served here"),
)  # fmt: skip


@dataclass(frozen=True)
class View:
    """How the fleet page is sorted, which page and which filter (its query string)."""

    sort: str = "member"
    order: str = "asc"
    page: int = 1
    q: str = ""

    def query(self, **change: object) -> str:
        v = replace(self, **change)  # type: ignore[arg-type]
        pairs = {"sort": v.sort, "order": v.order, "page": v.page, "q": v.q}
        return urlencode({k: x for k, x in pairs.items() if x != ""})


def _member(base: str, r: MemberRow) -> str:
    since = r.roles.champion_since
    return (
        f'<tr data-member="{e(r.model)}"><td><a href="{e(base)}/ui/models/{e(r.model)}">'
        f"<b>{e(r.key)}</b></a></td><td><b>{e(r.roles.champion or '–')}</b></td>"
        f"<td>{f'{since:%Y-%m-%d %H:%M}' if since else '–'}</td>"
        f"<td>{e(_rollout_text(r.roles, []))}</td>"
        f'<td class="num">{r.versions:,}</td><td class="num">{r.training_rows:,}</td>'
        f"<td>{_decision_cell(r.last_decision)}</td><td>{e(r.ready)}</td></tr>"
    )


def members_table(base: str, page: FleetPage, view: View) -> str:
    """The live part of the fleet page: the sorted, filtered page of members and the pager."""
    rows = [r for r in page.members if view.q.lower() in r.key.lower()]
    ordered = sort_members(rows, view.sort, descending=view.order == "desc")
    shown, at, pages = paginate(ordered, view.page)
    here = f"{e(base)}/ui/fleets/{e(page.fleet)}?"
    heads = []
    for key, label in COLUMNS:
        if key is None:
            heads.append(f"<th>{e(label)}</th>")
            continue
        flip = "desc" if view.sort == key and view.order == "asc" else "asc"
        mark = (" ▲" if view.order == "asc" else " ▼") if view.sort == key else ""
        link = here + e(view.query(sort=key, order=flip, page=1))
        heads.append(
            f'<th><a class="sort" data-sort="{key}" href="{link}">{e(label)}{mark}</a></th>'
        )
    body = "".join(_member(base, r) for r in shown) or (
        f'<tr><td colspan="{len(COLUMNS)}" class="muted">No member'
        + (f" whose name holds {view.q!r}" if view.q else " yet: each comes with its first rows")
        + ".</td></tr>"
    )
    prev = f'<a class="prev" href="{here}{e(view.query(page=at - 1))}">← previous</a>'
    nxt = f'<a class="next" href="{here}{e(view.query(page=at + 1))}">next →</a>'
    first = (at - 1) * PAGE_SIZE + 1 if shown else 0
    pager = (
        f'<p class="pager">{prev if at > 1 else ""} <span>members {first:,}–'
        f"{first + len(shown) - 1 if shown else 0:,} of {len(rows):,} · page {at} of {pages}"
        f"</span> {nxt if at < pages else ''}</p>"
    )
    return (
        f'<table class="members"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{body}</tbody></table>{pager}"
    )


def fleet_page(base: str, fleet: str, by: str, read: Read, view: View) -> str:
    page: FleetPage | None = read.value
    poll = f"/ui/api/fleets/{fleet}?{view.query()}"
    attrs = f' data-poll="{e(poll)}" data-fleet="{e(fleet)}"'
    head = f'<div id="banner">{banner(read)}</div>'
    if page is None:
        body = head + f"<section><h1>{e(fleet)}</h1><p>No state known yet.</p></section>"
        return layout(base, f"fleet {fleet}", body, POLL_JS, data=attrs)
    search = (
        f'<form class="filter" method="get" action="{e(base)}/ui/fleets/{e(fleet)}">'
        f'<input type="hidden" name="sort" value="{e(view.sort)}">'
        f'<input type="hidden" name="order" value="{e(view.order)}">'
        f'<input name="q" value="{e(view.q)}" placeholder="part of a member\'s name">'
        '<button type="submit">Filter</button></form>'
    )
    body = (
        head + f"<section><h1>Fleet {e(fleet)}</h1>"
        f'<p class="note">One model per value of {e(by)}: {len(page.members):,} members. '
        "Each member's roles, versions, training rows and newest decision (its health, drift "
        "and charts are on its own page); this table refreshes every 5 seconds.</p>"
        f'{search}<div id="live">{members_table(base, page, view)}</div></section>'
    )
    return layout(base, f"fleet {fleet}", body, POLL_JS, data=attrs)
