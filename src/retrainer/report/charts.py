"""The report's charts as inline SVG: live metric per champion with deployments and
rollbacks, estimated vs realised performance, drift per feature per year, decisions."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta

from .data import ReportData, rolling, rolling_estimate
from .svg import (
    GRID,
    INK,
    MUTED,
    PALETTE,
    Scale,
    circle,
    legend,
    line,
    nice_ticks,
    polyline,
    rect,
    svg,
    text,
    ts,
    year_ticks,
)

W = 1200
LEFT, RIGHT = 64, 24
MOVE_COLOURS = {"deploy": "#2a9d8f", "promote": "#2a9d8f", "rollback": "#d62828"}
OUTCOME_COLOURS = {"deployed": "#2a9d8f", "rejected": "#e76f51", "other": "#adb5bd"}
BANDS = ("#e3ebf5", "#f5efe3")  # champion tenures, alternating
ROLL = 6  # months pooled in the smoothed lines


def _empty(label: str, message: str) -> str:
    return svg(
        W,
        80,
        [
            rect(0, 0, W, 80, "#f8f9fb"),
            text(W / 2, 45, message, size=13, anchor="middle", fill=MUTED),
        ],
        label,
    )


def _span(data: ReportData) -> tuple[datetime, datetime]:
    times = [m.start for m in data.months]
    times += [e.created_at for e in data.events] + [d.taken_at for d in data.decisions]
    lo, hi = min(times), max(times)
    return lo, max(hi, lo + timedelta(days=1))


def _time_axis(x: Scale, lo: datetime, hi: datetime, top: float, bottom: float) -> list[str]:
    out = []
    for t in year_ticks(lo, hi):
        xx = x(ts(t))
        out.append(line(xx, top, xx, bottom, GRID))
        out.append(text(xx, bottom + 16, str(t.year), size=11, anchor="middle", fill=MUTED))
    return out


def _value_axis(y: Scale, lo: float, hi: float, left: float, right: float, fmt: str) -> list[str]:
    out = []
    for v in nice_ticks(lo, hi, 5):
        yy = y(v)
        out.append(line(left, yy, right, yy, GRID))
        out.append(text(left - 8, yy + 4, format(v, fmt), size=11, anchor="end", fill=MUTED))
    return out


def _range(values: list[float], pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or abs(hi) or 1.0
    return lo - span * pad, hi + span * pad


def live_metric_chart(data: ReportData) -> str:
    """Monthly live metric of the served predictions, its 6-month pooled line, the champion
    serving at each time as shaded bands, and deployment and rollback events."""
    if not data.months:
        return _empty(f"live {data.metric} over time", "No labelled predictions yet.")
    h, top, bottom = 420, 46, 370
    lo, hi = _span(data)
    x = Scale(ts(lo), ts(hi), LEFT, W - RIGHT)
    vals = [m.value for m in data.months if m.value is not None and m.n >= 5]
    smooth = rolling(data.months, data.task, data.metric, ROLL)
    naive = _naive_series(data)
    flat = [v for series in naive.values() for v in series if v is not None]
    ylo, yhi = _range(vals + [v for v in smooth if v is not None] + flat)
    y = Scale(ylo, yhi, bottom, top)
    body: list[str] = []
    champs = [*data.champions, (hi, "")]
    for i, (since, version) in enumerate(champs[:-1]):
        x0, x1 = x(ts(since)), x(ts(champs[i + 1][0]))
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
    body += _value_axis(y, ylo, yhi, LEFT, W - RIGHT, ".2f")
    body += _time_axis(x, lo, hi, top, bottom)
    monthly = [
        (x(ts(m.start + timedelta(days=15))), y(m.value))
        if m.value is not None and m.n >= 5
        else None
        for m in data.months
    ]
    body.append(polyline(monthly, "#9fb3c8", width=1.2))
    body.append(
        polyline(
            [
                (x(ts(m.start + timedelta(days=15))), y(v)) if v is not None else None
                for m, v in zip(data.months, smooth, strict=True)
            ],
            PALETTE[0],
            width=2.6,
        )
    )
    for i, series in enumerate(naive.values()):
        points = [
            (x(ts(m.start + timedelta(days=15))), y(v)) if v is not None else None
            for m, v in zip(data.months, series, strict=True)
        ]
        body.append(polyline(points, NAIVE_COLOURS[i % len(NAIVE_COLOURS)], width=1.4,
                             dash="5 3"))  # fmt: skip
    for e in data.events:
        if e.action not in MOVE_COLOURS:
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
                f"{e.created_at:%Y-%m-%d} {e.action} {e.from_version} → {e.to_version}: {e.reason}",
            )
        )
    body += legend(
        LEFT,
        24,
        [
            (f"monthly live {data.metric}", "#9fb3c8", "line"),
            (f"{ROLL}-month pooled", PALETTE[0], "line"),
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
    return svg(W, h, body, f"live {data.metric} over time")


NAIVE_COLOURS = ("#b07d2b", "#7a5195", "#5f7f3a")


def _naive_series(data: ReportData) -> dict[str, list[float | None]]:
    """Each naive baseline's monthly live metric (months with fewer than 5 actuals: None)."""
    out: dict[str, list[float | None]] = {}
    for name in data.baselines:
        series = [
            m.naive[name][1] if name in m.naive and m.naive[name][0] >= 5 else None
            for m in data.months
        ]
        if any(v is not None for v in series):
            out[name] = series
    return out


def estimate_chart(data: ReportData) -> str:
    """Realised accuracy against the label-free CBPE estimate (mean confidence of the
    predicted class), both pooled over six months, and their gap."""
    if not data.months or data.task != "classification":
        return _empty(
            "estimated vs realised performance",
            "Estimates need a classifier's logged probabilities.",
        )
    h, top, bottom = 340, 46, 290
    lo, hi = _span(data)
    x = Scale(ts(lo), ts(hi), LEFT, W - RIGHT)
    real = (
        rolling(data.months, data.task, "accuracy", ROLL) if data.task == "classification" else []
    )
    est = rolling_estimate(data.months, ROLL)
    ylo, yhi = _range([v for v in real + est if v is not None])
    y = Scale(ylo, yhi, bottom, top)
    body = _value_axis(y, ylo, yhi, LEFT, W - RIGHT, ".2f") + _time_axis(x, lo, hi, top, bottom)
    mid = [x(ts(m.start + timedelta(days=15))) for m in data.months]
    pts_r = [(xx, y(v)) if v is not None else None for xx, v in zip(mid, real, strict=False)]
    pts_e = [(xx, y(v)) if v is not None else None for xx, v in zip(mid, est, strict=True)]
    # the gap between the two, shaded
    for i in range(len(mid) - 1):
        if real and None not in (real[i], est[i], real[i + 1], est[i + 1]):
            body.append(
                f'<path d="M{mid[i]:.1f},{y(real[i]):.1f} L{mid[i + 1]:.1f},{y(real[i + 1]):.1f} '  # type: ignore[arg-type]
                f'L{mid[i + 1]:.1f},{y(est[i + 1]):.1f} L{mid[i]:.1f},{y(est[i]):.1f} Z" '  # type: ignore[arg-type]
                f'fill="{PALETTE[1]}" fill-opacity="0.12" stroke="none"/>'
            )
    body.append(polyline(pts_r, PALETTE[0], width=2.4))
    body.append(polyline(pts_e, PALETTE[1], width=2.4, dash="6 4"))
    body += legend(
        LEFT,
        24,
        [
            (f"realised accuracy ({ROLL}-month pooled)", PALETTE[0], "line"),
            ("CBPE estimate from logged probabilities", PALETTE[1], "dash"),
            ("gap", PALETTE[1], "bar"),
        ],
    )
    return svg(W, h, body, "estimated vs realised performance")


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
    """Per-feature PSI per year against the serving champion's reference; a dot marks the
    cells the drift rules call drifted."""
    grid = data.drift
    if grid is None:
        return svg(
            W, 60, [text(LEFT, 30, "No labelled rows after the first champion yet.")], "drift"
        )
    label_w = 190
    rows = len(grid.features)
    cell_h = 26
    top = 40
    h = top + rows * cell_h + 60
    n = len(grid.periods)
    x0, x1 = label_w, W - RIGHT
    cw = (x1 - x0) / n
    body: list[str] = []
    for i, feature in enumerate(grid.features):
        yy = top + i * cell_h
        body.append(text(label_w - 10, yy + cell_h / 2 + 4, feature, size=12, anchor="end"))
        for j, period in enumerate(grid.periods):
            v = grid.psi[i, j]
            shown = "n/a" if not math.isfinite(v) else f"{v:.3f}"
            body.append(
                rect(
                    x0 + j * cw,
                    yy + 1,
                    cw + 0.4,
                    cell_h - 2,
                    _heat(v, grid.threshold),
                    title=f"{feature} {period:%Y}: PSI {shown}",
                )
            )
            if grid.drifted[i, j] and cw >= 3:
                body.append(circle(x0 + (j + 0.5) * cw, yy + cell_h / 2, min(2.5, cw / 2.5), INK))
    bottom = top + rows * cell_h
    lo, hi = grid.periods[0], grid.periods[-1] + timedelta(days=365)
    x = Scale(ts(lo), ts(hi), x0, x1)
    for t in year_ticks(lo, hi):
        body.append(text(x(ts(t)), bottom + 16, str(t.year), size=11, anchor="middle", fill=MUTED))
    # colour bar
    bx = x0
    for k in range(40):
        body.append(
            rect(
                bx + k * 5, bottom + 30, 5.2, 10, _heat(k / 39 * 2 * grid.threshold, grid.threshold)
            )
        )
    body.append(text(bx, bottom + 54, "PSI 0", size=10, fill=MUTED))
    body.append(
        text(bx + 200, bottom + 54, f"≥ {2 * grid.threshold:g}", size=10, anchor="end", fill=MUTED)
    )
    body.append(circle(bx + 230, bottom + 35, 2.5, INK))
    body.append(text(bx + 238, bottom + 39, "drifted (PSI/KS rules)", size=10, fill=MUTED))
    body.append(
        text(
            LEFT - 48,
            24,
            "yearly drift of the labelled rows vs the serving champion's training reference",
            size=12,
            fill=MUTED,
        )
    )
    return svg(W, h, body, "per-feature drift heat map")


def _outcome(outcome: str | None) -> str:
    o = (outcome or "").lower()
    if "deployed" in o or "started" in o or "rolled back" in o or "promot" in o:
        return "deployed"
    if "reject" in o or "kept the champion" in o or "withdr" in o:
        return "rejected"
    return "other"


def decisions_chart(data: ReportData) -> str:
    """Every decision on its action's lane, coloured by what came of it."""
    lanes = [
        "full_retrain",
        "fine_tune",
        "incremental_update",
        "rollback",
        "promote",
        "withdraw",
        "canary_step",
        "nothing",
    ]
    present = [a for a in lanes if any(d.action == a for d in data.decisions)]
    present += sorted({d.action for d in data.decisions} - set(present))
    if not present:
        return _empty("decision timeline", "No decisions yet.")
    label_w = 120
    top, lane_h = 40, 30
    bottom = top + lane_h * len(present)
    h = bottom + 40
    lo, hi = _span(data)
    x = Scale(ts(lo), ts(hi), label_w, W - RIGHT)
    body = _time_axis(x, lo, hi, top, bottom)
    for i, action in enumerate(present):
        yy = top + i * lane_h + lane_h / 2
        body.append(line(label_w, yy, W - RIGHT, yy, GRID))
        body.append(text(label_w - 10, yy + 4, action.replace("_", " "), size=12, anchor="end"))
    for d in data.decisions:
        i = present.index(d.action)
        yy = top + i * lane_h + lane_h / 2
        kind = "other" if d.action == "nothing" else _outcome(d.outcome)
        body.append(
            circle(
                x(ts(d.taken_at)),
                yy,
                2.2 if d.action == "nothing" else 4,
                OUTCOME_COLOURS[kind],
                f"{d.taken_at:%Y-%m-%d} {d.action}: {d.reasons[0] if d.reasons else ''} "
                f"→ {d.outcome or ''}",
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
    return svg(W, h, body, "decision timeline")
