"""The one chart the report has no use for and the dashboard needs: the live metric of each
version on its own line (during a canary or an A/B test the champion and the challenger side by
side), with the deploy / promote / rollback marks. Built from the report's primitives and axes
(:mod:`retrainer.report.svg`, :mod:`retrainer.report.axes`, the axis marks of
:mod:`retrainer.report.charts`), from the same :class:`~retrainer.report.data.ReportData`.

Each version's line is ``<path class="version" data-version="1.1.0" …>`` and each of its
points a ``<circle class="point" data-version="1.1.0" …>``.

>>> from datetime import datetime
>>> from retrainer.core.entities import Roles
>>> from retrainer.report.data import Point, ReportData
>>> p = [Point(datetime(2024, 1, d), 9, 0.8, None, 0, {"1.0.0": (9, 0.7 + d / 100)})
...      for d in (1, 2, 3)]
>>> data = ReportData("m", "classification", "accuracy", True, p, [], [], [], Roles("m",
...     "1.0.0", None), [], None, datetime(2024, 1, 4))
>>> html = version_chart(data)
>>> html.count('class="point"'), 'data-version="1.0.0"' in html
(3, True)
"""

from __future__ import annotations

from html import escape

from ...report.axes import time_domain, value_axis
from ...report.charts import BOUNDS, empty_chart, time_axis, value_axis_marks
from ...report.data import ReportData
from ...report.svg import PALETTE, Scale, legend, line, svg, ts

W, H = 1200, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 46, 310
MIN_N = 5  # labelled predictions a version's bucket needs for a point
MOVES = {"deploy": "#2a9d8f", "promote": "#2a9d8f", "rollback": "#d62828"}


def version_chart(data: ReportData) -> str:
    """The live primary metric per version per time bucket (buckets with at least ``MIN_N``
    labelled predictions of that version), one colour per version, and the champion moves."""
    label = f"live {data.metric} per version"
    series: dict[str, list[tuple[float, float, int]]] = {}
    for p in data.points:
        t = ts(data.bucket.mid(p.start))
        for version, (n, value) in p.by_version.items():
            if value is not None and n >= MIN_N:
                series.setdefault(version, []).append((t, value, n))
    if not series:
        return empty_chart(label, "No version has labelled predictions yet.")
    times = [data.bucket.mid(p.start) for p in data.points if p.by_version]
    lo, hi = time_domain(times, data.bucket)
    x = Scale(ts(lo), ts(hi), LEFT, W - RIGHT)
    axis = value_axis(
        [v for pts in series.values() for _, v, _ in pts],
        bounds=BOUNDS.get(data.metric, (None, None)),
    )
    y = Scale(axis.lo, axis.hi, BOTTOM, TOP)
    body = [*value_axis_marks(y, axis, LEFT, W - RIGHT), *time_axis(x, lo, hi, TOP, BOTTOM)]
    for e in data.events:
        if e.action in MOVES and lo <= e.created_at <= hi:
            xx = x(ts(e.created_at))
            tip = (
                f"{e.created_at:%Y-%m-%d %H:%M} {e.action} {e.from_version or '–'} → {e.to_version}"
            )
            body.append(
                f'<g class="move" data-action="{escape(e.action)}"><title>{escape(tip)}</title>'
                + line(xx, TOP, xx, BOTTOM, MOVES[e.action], 1.4, "4 3")
                + "</g>"
            )
    order = sorted(series, key=lambda v: series[v][0][0])
    colours = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(order)}
    for version in order:
        pts, c, v = series[version], colours[version], escape(version)
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(val):.1f}" for i, (t, val, _) in enumerate(pts)
        )
        body.append(
            f'<path class="version" data-version="{v}" d="{d}" fill="none" stroke="{c}" '
            'stroke-width="2"/>'
        )
        body += [
            f'<circle class="point" data-version="{v}" cx="{x(t):.1f}" cy="{y(val):.1f}" '
            f'r="2.8" fill="{c}"><title>{v}: {data.metric} {val:.4g} on {n} labelled</title>'
            "</circle>"
            for t, val, n in pts
        ]
    items = [(f"version {v}", colours[v], "line") for v in order]
    items += [
        ("deploy / promote", MOVES["deploy"], "dash"),
        ("rollback", MOVES["rollback"], "dash"),
    ]
    body += legend(LEFT, 24, items)
    return svg(W, H, body, label)
