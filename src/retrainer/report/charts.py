"""The charts, shared by the HTML report and the server's dashboard: pure functions from
:class:`~retrainer.report.data.ReportData` to an inline SVG string (no JavaScript, nothing
fetched). Axes come from the data (:mod:`retrainer.report.axes`): value ticks on a 1/2/5 step
that never repeat, time axes spanning the data only; a chart with nothing to draw says what is
missing instead of showing an empty frame.

Tick labels carry ``class="xtick"`` (with ``data-t``, the ISO time) or ``class="ytick"``, so a
test or a page script can read the axes back.

>>> from datetime import datetime
>>> from retrainer.core.entities import Roles
>>> data = ReportData("m", "classification", "accuracy", True, [], [], [], [], Roles("m", None,
...     None), [], None, datetime(2024, 1, 1))
>>> "No labelled predictions yet" in live_metric_chart(data)
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

import numpy as np

from .axes import ValueAxis, time_domain, time_ticks, value_axis
from .data import Point, ReportData, rolling, rolling_estimate
from .lineage import lineage_chart
from .svg import (
    GRID,
    INK,
    MUTED,
    PALETTE,
    Scale,
    circle,
    legend,
    line,
    polyline,
    rect,
    short,
    svg,
    text,
    ts,
)

W = 1200
LEFT, RIGHT = 64, 24
MOVE_COLOURS = {"deploy": "#2a9d8f", "promote": "#2a9d8f", "rollback": "#d62828"}
OUTCOME_COLOURS = {"deployed": "#2a9d8f", "rejected": "#e76f51", "other": "#adb5bd"}
BANDS = ("#e3ebf5", "#f5efe3")  # champion tenures, alternating
MIN_N = 5  # labelled predictions a bucket needs for its own (thin) point
# the range a metric can take: its axis never pads past it
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    **{m: (0.0, 1.0) for m in ("accuracy", "f1", "roc_auc", "brier")},
    **{m: (0.0, None) for m in ("log_loss", "mae", "rmse", "mape")},
    "r2": (None, 1.0),
}
DOTS_UP_TO = 60  # draw each point as a dot too when there are this few (one point: a dot)


def empty_chart(label: str, message: str, height: int = 80) -> str:
    """A chart with nothing to draw: a light box saying what is missing.

    >>> "no drift checks yet" in empty_chart("drift", "no drift checks yet")
    True
    """
    return svg(
        W,
        height,
        [
            rect(0, 0, W, height, "#f8f9fb"),
            f'<text class="empty" x="{W / 2:.1f}" y="{height / 2 + 5:.1f}" font-size="13" '
            f'text-anchor="middle" fill="{MUTED}">{escape(message)}</text>',
        ],
        label,
    )


def time_axis(x: Scale, lo: datetime, hi: datetime, top: float, bottom: float) -> list[str]:
    """Grid lines and labels of the time ticks inside [lo, hi] (see
    :func:`~retrainer.report.axes.time_ticks`), drawn at ``x`` between ``top`` and ``bottom``.

    >>> from datetime import datetime
    >>> body = time_axis(Scale(0, 1, 0, 100), datetime(2020, 1, 1), datetime(2030, 1, 1), 0, 50)
    >>> sum('class="xtick"' in part for part in body)
    6
    """
    out = []
    for t, label in time_ticks(lo, hi):
        xx = x(ts(t))
        out.append(line(xx, top, xx, bottom, GRID))
        out.append(
            f'<text class="xtick" data-t="{t.isoformat()}" x="{xx:.1f}" y="{bottom + 16:.1f}" '
            f'font-size="11" text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
        )
    return out


def value_axis_marks(y: Scale, axis: ValueAxis, left: float, right: float) -> list[str]:
    """Grid lines and labels of a :class:`~retrainer.report.axes.ValueAxis` at ``y``."""
    out = []
    for v, label in zip(axis.ticks, axis.labels, strict=True):
        yy = y(v)
        out.append(line(left, yy, right, yy, GRID))
        out.append(
            f'<text class="ytick" x="{left - 8:.1f}" y="{yy + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="{MUTED}">{escape(label)}</text>'
        )
    return out


def _mid(data: ReportData, p: Point) -> datetime:
    return data.bucket.mid(p.start)


def _series(
    data: ReportData, values: Sequence[float | None], x: Scale, y: Scale, colour: str, **kw: object
) -> list[str]:
    """A line through the values (gaps where None) and, for a short series, a dot on each."""
    pts = [
        (x(ts(_mid(data, p))), y(v)) if v is not None else None
        for p, v in zip(data.points, values, strict=False)
    ]
    out = [polyline(pts, colour, **kw)]  # type: ignore[arg-type]
    if sum(p is not None for p in pts) <= DOTS_UP_TO:
        out += [circle(q[0], q[1], 2.6, colour) for q in pts if q is not None]
    return out


def live_metric_chart(data: ReportData) -> str:
    """The live metric of the served predictions per time bucket, its pooled line, the
    champion serving at each time as shaded bands, the naive baselines dashed, and
    deployment and rollback events; the time axis spans the buckets with labelled
    predictions (and the events among them).

    >>> 'class="empty"' in live_metric_chart(ReportData.empty("churn"))
    True
    """
    label = f"live {data.metric} over time"
    pts = [p for p in data.points if p.n]
    if not pts:
        return empty_chart(
            label,
            "No labelled predictions yet: the live metric needs actuals "
            "joined to served predictions (retrainer feedback).",
        )
    h, top, bottom = 420, 46, 370
    moves = [e for e in data.events if e.action in MOVE_COLOURS]
    first, last = data.bucket.mid(pts[0].start), data.bucket.mid(pts[-1].start)
    # the buckets with actuals, and the moves within a bucket of them
    near = data.bucket.next(pts[0].start) - pts[0].start
    lo, hi = time_domain(
        [
            first,
            last,
            *(e.created_at for e in moves if first - near <= e.created_at <= last + near),
        ],
        data.bucket,
    )
    x = Scale(ts(lo), ts(hi), LEFT, W - RIGHT)
    thin = [p.value if p.value is not None and p.n >= MIN_N else None for p in data.points]
    smooth = rolling(data.points, data.task, data.metric, data.bucket.roll)
    naive = _naive_series(data)
    flat = [v for series in naive.values() for v in series if v is not None]
    axis = value_axis(thin + smooth + flat, bounds=BOUNDS.get(data.metric, (None, None)))
    y = Scale(axis.lo, axis.hi, bottom, top)
    body: list[str] = []
    champs = [*data.champions, (hi, "")]
    for i, (since, version) in enumerate(champs[:-1]):
        x0, x1 = x(ts(max(since, lo))), x(ts(min(max(champs[i + 1][0], lo), hi)))
        if x1 <= x0:
            continue
        body.append(
            rect(
                x0,
                top,
                x1 - x0,
                bottom - top,
                BANDS[i % 2],
                opacity=0.7,
                title=f"champion {version}",
            )
        )
        if x1 - x0 > 34:
            body.append(
                text((x0 + x1) / 2, top + 12, version, size=10, anchor="middle", fill=MUTED)
            )
    body += value_axis_marks(y, axis, LEFT, W - RIGHT)
    body += time_axis(x, lo, hi, top, bottom)
    body += _series(data, thin, x, y, "#9fb3c8", width=1.2)
    body += _series(data, smooth, x, y, PALETTE[0], width=2.6)
    for i, series in enumerate(naive.values()):
        colour = NAIVE_COLOURS[i % len(NAIVE_COLOURS)]
        body.append(
            polyline(
                [
                    (x(ts(_mid(data, p))), y(v)) if v is not None else None
                    for p, v in zip(data.points, series, strict=True)
                ],
                colour,
                width=1.4,
                dash="5 3",
            )
        )
    for e in moves:
        if not lo <= e.created_at <= hi:
            continue
        xx = x(ts(e.created_at))
        colour = MOVE_COLOURS[e.action]
        body.append(
            line(xx, top + 16, xx, bottom, colour, 1.4, "3 3" if e.action != "rollback" else None)
        )
        body.append(
            circle(
                xx,
                top + 20,
                4.5,
                colour,
                f"{e.created_at:%Y-%m-%d %H:%M} {e.action} {e.from_version or '–'} → "
                f"{e.to_version}: {e.reason}",
            )
        )
    body += legend(
        LEFT,
        24,
        [
            (f"live {data.metric} per {data.bucket.name} (≥ {MIN_N} actuals)", "#9fb3c8", "line"),
            (data.bucket.pooled, PALETTE[0], "line"),
            ("deploy / promote", MOVE_COLOURS["deploy"], "dot"),
            ("rollback", MOVE_COLOURS["rollback"], "dot"),
            ("champion tenure", "#c9d6e8", "bar"),
            *[
                (
                    f"{name} ({data.baselines.get(name, name)})",
                    NAIVE_COLOURS[i % len(NAIVE_COLOURS)],
                    "line",
                )
                for i, name in enumerate(naive)
            ],
        ],
    )
    body.append(
        text(16, (top + bottom) / 2, data.metric, size=11, anchor="middle", fill=MUTED, rotate=-90)
    )
    return svg(W, h, body, label)


NAIVE_COLOURS = ("#b07d2b", "#7a5195", "#5f7f3a")


def _naive_series(data: ReportData) -> dict[str, list[float | None]]:
    """Each naive baseline's live metric per bucket (fewer than 5 actuals: None)."""
    out: dict[str, list[float | None]] = {}
    for name in data.baselines:
        series = [
            p.naive[name][1] if name in p.naive and p.naive[name][0] >= MIN_N else None
            for p in data.points
        ]
        if any(v is not None for v in series):
            out[name] = series
    return out


def estimate_chart(data: ReportData) -> str:
    """Realised accuracy against the label-free CBPE estimate (mean confidence of the
    predicted class), both pooled over a few buckets, and their gap.

    >>> "needs a classifier" in estimate_chart(ReportData.empty("price", "regression", "mae"))
    True
    """
    label = "estimated vs realised performance"
    if data.task != "classification":
        return empty_chart(
            label,
            "No estimate: CBPE needs a classifier's logged probabilities "
            "(this model is a regression).",
        )
    pts = [p for p in data.points if p.n or p.n_conf]
    if not pts:
        return empty_chart(label, "No logged predictions with probabilities yet.")
    h, top, bottom = 340, 46, 290
    lo, hi = time_domain([_mid(data, pts[0]), _mid(data, pts[-1])], data.bucket)
    x = Scale(ts(lo), ts(hi), LEFT, W - RIGHT)
    real = rolling(data.points, data.task, "accuracy", data.bucket.roll)
    est = rolling_estimate(data.points, data.bucket.roll)
    axis = value_axis(real + est, bounds=(0.0, 1.0))
    y = Scale(axis.lo, axis.hi, bottom, top)
    body = value_axis_marks(y, axis, LEFT, W - RIGHT) + time_axis(x, lo, hi, top, bottom)
    mid = [x(ts(_mid(data, p))) for p in data.points]
    for i in range(len(mid) - 1):  # the gap between the two, shaded
        r0, r1, e0, e1 = real[i], real[i + 1], est[i], est[i + 1]
        if r0 is not None and r1 is not None and e0 is not None and e1 is not None:
            body.append(
                f'<path d="M{mid[i]:.1f},{y(r0):.1f} L{mid[i + 1]:.1f},{y(r1):.1f} '
                f'L{mid[i + 1]:.1f},{y(e1):.1f} L{mid[i]:.1f},{y(e0):.1f} Z" '
                f'fill="{PALETTE[1]}" fill-opacity="0.12" stroke="none"/>'
            )
    body += _series(data, real, x, y, PALETTE[0], width=2.4)
    body += _series(data, est, x, y, PALETTE[1], width=2.4, dash="6 4")
    body += legend(
        LEFT,
        24,
        [
            (f"realised accuracy ({data.bucket.pooled})", PALETTE[0], "line"),
            ("CBPE estimate from logged probabilities", PALETTE[1], "dash"),
            ("gap", PALETTE[1], "bar"),
        ],
    )
    if all(v is None for v in real):
        body.append(
            text(
                W / 2,
                (top + bottom) / 2,
                "no labelled predictions yet: the estimate only",
                size=12,
                anchor="middle",
                fill=MUTED,
            )
        )
    return svg(W, h, body, label)


def _heat(value: float, threshold: float) -> str:
    """White → amber → red as PSI goes from 0 to twice the drift threshold."""
    if not math.isfinite(value):
        return "#f1f3f5"
    t = max(0.0, min(1.0, value / (2 * threshold)))
    stops = [(0.0, (247, 251, 255)), (0.5, (253, 198, 104)), (1.0, (200, 30, 45))]
    for (a, ca), (b, cb) in itertools.pairwise(stops):
        if t <= b:
            f = (t - a) / (b - a)
            r, g, bl = (round(ca[k] + f * (cb[k] - ca[k])) for k in range(3))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return "#c81e2d"


def drift_chart(data: ReportData) -> str:
    """Per-feature PSI per period (hour to year, from the data; see
    :func:`~retrainer.report.data.drift_bucket`) against the serving champion's reference; a
    dot marks the cells the drift rules call drifted. The columns are the periods with data
    only, each labelled (at most 12 labels, evenly thinned).

    >>> "No drift checks yet" in drift_chart(ReportData.empty("churn"))
    True
    """
    grid = data.drift
    label = "per-feature drift heat map"
    if grid is None:
        return empty_chart(
            label,
            "No drift checks yet: no labelled rows after the first champion's training window.",
        )
    if not np.isfinite(grid.psi).any():
        return empty_chart(
            label,
            f"No drift checks yet: {grid.rows:,} labelled rows after the "
            f"first champion's training window; a check needs {grid.min_rows:,} "
            "(drift.min_samples).",
        )
    label_w = 190
    cell_h = 26
    top = 40
    rows = len(grid.features)
    bottom = top + rows * cell_h
    h = bottom + 70
    n = len(grid.periods)
    x0, x1 = label_w, W - RIGHT
    cw = (x1 - x0) / n
    body: list[str] = []
    for i, feature in enumerate(grid.features):
        yy = top + i * cell_h
        body.append(text(label_w - 10, yy + cell_h / 2 + 4, feature, size=12, anchor="end"))
        for j, period in enumerate(grid.labels):
            v = grid.psi[i, j]
            shown = "n/a" if not math.isfinite(v) else f"{v:.3f}"
            body.append(
                rect(
                    x0 + j * cw,
                    yy + 1,
                    cw + 0.4,
                    cell_h - 2,
                    _heat(v, grid.threshold),
                    title=f"{feature} {period}: PSI {shown}",
                )
            )
            if grid.drifted[i, j] and cw >= 3:
                body.append(circle(x0 + (j + 0.5) * cw, yy + cell_h / 2, min(2.5, cw / 2.5), INK))
    every = max(1, math.ceil(n / 12))
    for j in range(0, n, every):
        xx = x0 + (j + 0.5) * cw
        body.append(
            f'<text class="xtick" data-t="{grid.periods[j].isoformat()}" x="{xx:.1f}" '
            f'y="{bottom + 16:.1f}" font-size="11" text-anchor="middle" fill="{MUTED}">'
            f"{escape(grid.labels[j])}</text>"
        )
    for k in range(40):  # colour bar
        body.append(
            rect(
                x0 + k * 5, bottom + 30, 5.2, 10, _heat(k / 39 * 2 * grid.threshold, grid.threshold)
            )
        )
    body.append(text(x0, bottom + 54, "PSI 0", size=10, fill=MUTED))
    body.append(
        text(x0 + 200, bottom + 54, f"≥ {2 * grid.threshold:g}", size=10, anchor="end", fill=MUTED)
    )
    body.append(circle(x0 + 230, bottom + 35, 2.5, INK))
    body.append(text(x0 + 238, bottom + 39, "drifted (PSI/KS rules)", size=10, fill=MUTED))
    body.append(
        text(
            LEFT - 48,
            24,
            "drift of the labelled rows vs the serving champion's training reference, per period",
            size=12,
            fill=MUTED,
        )
    )
    return svg(W, h, body, label)


def _outcome(outcome: str | None) -> str:
    o = (outcome or "").lower()
    if "deployed" in o or "started" in o or "rolled back" in o or "promot" in o:
        return "deployed"
    if "reject" in o or "kept the champion" in o or "withdr" in o:
        return "rejected"
    return "other"


LANES = (
    "full_retrain",
    "fine_tune",
    "incremental_update",
    "rollback",
    "promote",
    "withdraw",
    "canary_step",
    "nothing",
)


def decisions_chart(data: ReportData) -> str:
    """Every decision taken (dry runs left out) on its action's lane, coloured by what came
    of it; hover a dot for its full reasons and outcome.

    >>> "No decisions taken yet" in decisions_chart(ReportData.empty("churn"))
    True
    """
    taken = [d for d in data.decisions if not d.dry_run]
    label = "decision timeline"
    present = [a for a in LANES if any(d.action == a for d in taken)]
    present += sorted({d.action for d in taken} - set(present))
    if not present:
        dry = len(data.decisions) - len(taken)
        return empty_chart(
            label,
            "No decisions taken yet"
            + (f" ({dry} dry run{'s' * (dry != 1)}, listed below)." if dry else "."),
        )
    label_w = 120
    top, lane_h = 40, 30
    bottom = top + lane_h * len(present)
    h = bottom + 40
    lo, hi = time_domain([d.taken_at for d in taken])
    x = Scale(ts(lo), ts(hi), label_w, W - RIGHT)
    body = time_axis(x, lo, hi, top, bottom)
    for i, action in enumerate(present):
        yy = top + i * lane_h + lane_h / 2
        body.append(line(label_w, yy, W - RIGHT, yy, GRID))
        body.append(text(label_w - 10, yy + 4, action.replace("_", " "), size=12, anchor="end"))
    for d in taken:
        yy = top + present.index(d.action) * lane_h + lane_h / 2
        kind = "other" if d.action == "nothing" else _outcome(d.outcome)
        why = "; ".join(d.reasons)
        body.append(
            circle(
                x(ts(d.taken_at)),
                yy,
                2.2 if d.action == "nothing" else 4,
                OUTCOME_COLOURS[kind],
                f"{d.taken_at:%Y-%m-%d %H:%M} {d.action}: {why} → {d.outcome or ''}",
            )
        )
    body += legend(
        label_w,
        24,
        [
            ("deployed / started / rolled back", OUTCOME_COLOURS["deployed"], "dot"),
            ("gate rejected / withdrawn", OUTCOME_COLOURS["rejected"], "dot"),
            ("nothing done / not enough data", OUTCOME_COLOURS["other"], "dot"),
        ],
    )
    return svg(W, h, body, label)


__all__ = [
    "decisions_chart",
    "drift_chart",
    "empty_chart",
    "estimate_chart",
    "lineage_chart",
    "live_metric_chart",
    "short",
    "time_axis",
    "value_axis_marks",
]
