"""The versions as a tree: one row per version (newest on top), an edge from each version to
its parent, the line that continues a parent's lane going to the child with the most
descendants (the main line), side branches (rejected candidates, imports) in lanes beside it.
Champion and challenger are marked; each node shows its kind (initial, full retrain,
fine-tune, import) and date, and its full reason on hover.

Each node is ``<g class="node" data-version="1.1.0" data-parent="1.0.0">`` and each edge
``<path class="edge" data-from="1.0.0" data-to="1.1.0" …>`` (parent to child), so the tree can
be read back.

>>> from datetime import datetime
>>> from retrainer.core.entities import Roles
>>> v = lambda name, parent, day: _Node(name, parent, datetime(2024, 1, day))
>>> lanes = assign_lanes([v("1.0.0", None, 1), v("1.1.0", "1.0.0", 2), v("1.2.0", "1.0.0", 3),
...                       v("1.2.1", "1.2.0", 4)])
>>> lanes
{'1.0.0': 0, '1.1.0': 1, '1.2.0': 0, '1.2.1': 0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from .svg import FONT, INK, MUTED

if TYPE_CHECKING:
    from .data import ReportData

ROW_H = 24
LANE_W = 16
ROLE_FILL = {
    "champion": "#2a9d8f",
    "challenger": "#e9a800",
    "archived": "#ffffff",
    "deleted": "#f8d7da",
}
ROLE_STROKE = {
    "champion": "#1b4332",
    "challenger": "#7c5800",
    "archived": "#8d99ae",
    "deleted": "#c0392b",
}


@dataclass(frozen=True)
class _Node:
    version: str
    parent: str | None
    created_at: datetime


def assign_lanes(nodes: Sequence[_Node]) -> dict[str, int]:
    """Each version's lane (0: the main line). A child continues its parent's lane when it
    is the parent's heir (the child with most descendants, the latest on a tie); any other
    child takes the lowest lane whose last node is older than the parent and has no child to
    come, so no edge runs through another node."""
    order = sorted(nodes, key=lambda n: n.created_at)
    rank = {n.version: i for i, n in enumerate(order)}
    names = set(rank)
    children: dict[str, list[str]] = {n.version: [] for n in order}
    for n in order:
        if n.parent in names:
            children[n.parent].append(n.version)  # type: ignore[index]
    size: dict[str, int] = {}
    for n in reversed(order):
        size[n.version] = 1 + sum(size[c] for c in children[n.version])
    heir = {p: max(cs, key=lambda c: (size[c], rank[c])) for p, cs in children.items() if cs}
    remaining = {p: len(cs) for p, cs in children.items()}
    lane: dict[str, int] = {}
    tips: list[str] = []  # the last node in each lane
    for n in order:
        p = n.parent if n.parent in names else None
        if p is not None:
            remaining[p] -= 1
        if p is not None and heir[p] == n.version:
            lane[n.version] = lane[p]
        else:
            floor = rank[p] if p is not None else len(order)
            free = [
                k
                for k, tip in enumerate(tips)
                if k > 0 and remaining[tip] == 0 and rank[tip] < floor
            ]
            lane[n.version] = free[0] if free else len(tips)
            if lane[n.version] == len(tips):
                tips.append(n.version)
        tips[lane[n.version]] = n.version
    return lane


def lineage_chart(data: ReportData) -> str:
    """The versions of ``data`` as a tree (see the module docstring), or a line saying there
    is no version yet.

    >>> from retrainer.report.data import ReportData
    >>> "No versions yet" in lineage_chart(ReportData.empty("churn"))
    True
    """
    from .charts import empty_chart

    if not data.versions:
        return empty_chart("version lineage", "No versions yet: train one (retrainer train).")
    nodes = [_Node(v.version, v.parent, v.created_at) for v in data.versions]
    order = {n.version: i for i, n in enumerate(sorted(nodes, key=lambda n: n.created_at))}
    lanes = assign_lanes(nodes)
    width = max(lanes.values()) + 1
    lane_w = min(LANE_W, 360 / width)
    rows = sorted(data.versions, key=lambda v: (v.created_at, order[v.version]), reverse=True)
    row = {v.version: i for i, v in enumerate(rows)}
    x0, top = 14, 16
    text_x = x0 + width * lane_w + 14

    def at(name: str) -> tuple[float, float]:
        return x0 + lanes[name] * lane_w, top + row[name] * ROW_H

    edges: list[str] = []
    body: list[str] = []
    for v in rows:
        if v.parent in row:
            (xc, yc), (xp, yp) = at(v.version), at(v.parent)  # type: ignore[arg-type]
            bend = yp - ROW_H * 0.6 if xc != xp else yp
            edges.append(
                f'<path class="edge" data-from="{escape(v.parent or "")}" '
                f'data-to="{escape(v.version)}" d="M{xp:.1f},{yp:.1f} L{xc:.1f},{bend:.1f} '
                f'L{xc:.1f},{yc:.1f}" fill="none" stroke="#8d99ae" stroke-width="1.6"/>'
            )
        role = _role(v.version, v.status, data)
        x, y = at(v.version)
        kind = v.kind.replace("_", " ")
        parent = v.parent or "none"
        if v.parent and v.parent not in row:
            parent += " (not stored)"
        tip = (
            f"{v.version} ({kind}, {role}) from {parent}, {v.created_at:%Y-%m-%d %H:%M}: {v.reason}"
        )
        mark = f" · {role}" if role in ("champion", "challenger") else ""
        body.append(
            f'<g class="node" data-version="{escape(v.version)}" '
            f'data-parent="{escape(v.parent or "")}" data-role="{role}" '
            f'data-kind="{escape(v.kind)}"><title>{escape(tip)}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if mark else 4.5}" '
            f'fill="{ROLE_FILL[role]}" stroke="{ROLE_STROKE[role]}" stroke-width="1.6"/>'
            f'<text x="{text_x:.1f}" y="{y + 4:.1f}" font-size="12" fill="{INK}">'
            f'<tspan font-weight="{"bold" if mark else "normal"}">{escape(v.version)}</tspan>'
            f'<tspan fill="{MUTED}"> {escape(kind)} · {v.created_at:%Y-%m-%d}'
            f"{escape(mark)}</tspan></text></g>"
        )
    h, w = top + len(rows) * ROW_H, text_x + 380
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h}" width="{w:.0f}" '
        f'height="{h}" role="img" aria-label="version lineage" font-family="{FONT}">'
        + "".join(edges + body)
        + "</svg>"
    )


def _role(version: str, status: str, data: ReportData) -> str:
    if status == "deleted":
        return "deleted"
    if data.roles.champion == version:
        return "champion"
    ch = data.roles.challenger
    return "challenger" if ch is not None and ch.version == version else "archived"
