"""The report page: summary cards, the charts, the version lineage tree and table, the
deployment log, the decisions taken and, apart from them, the dry runs, in one self-contained
HTML file (inline CSS and SVG, nothing fetched). Long reasons show a short form cut at a word
boundary; the full text is the cell's ``title`` (shown on hover)."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from ..evaluation.gate_types import stored_gate
from ..store import role_of
from .charts import (
    decisions_chart,
    drift_chart,
    estimate_chart,
    lineage_chart,
    live_metric_chart,
)
from .data import ReportData, naive_summary
from .svg import short

CSS = """
:root { --ink:#2b2d42; --muted:#6c757d; --line:#e6e8ee; --accent:#4e79a7; }
* { box-sizing: border-box; }
body { margin:0; background:#f6f7fb; color:var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
header { background:#1f2a44; color:#fff; padding:22px 36px; }
header h1 { margin:0; font-size:22px; font-weight:600; }
header p { margin:4px 0 0; color:#c8d1e6; }
main { max-width:1280px; margin:0 auto; padding:20px 36px 48px; }
.cards { display:grid; grid-template-columns:repeat(6, 1fr); gap:12px; margin:8px 0 20px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card b { display:block; font-size:22px; font-weight:600; }
.card span { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:16px 20px;
  margin:0 0 18px; }
section h2 { margin:0 0 4px; font-size:16px; }
section p.note { margin:0 0 8px; color:var(--muted); font-size:12.5px; }
table { border-collapse:collapse; width:100%; font-size:12.5px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { color:var(--muted); font-weight:600; position:sticky; top:0; background:#fff; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
.scroll { max-height:520px; overflow:auto; }
.tag { display:inline-block; padding:1px 7px; border-radius:9px; font-size:11.5px; }
.champion { background:#d8f3dc; color:#1b4332; } .challenger { background:#fff3bf; color:#7c5800; }
.archived { background:#edf2f7; color:#4a5568; } .deleted { background:#f8d7da; color:#842029; }
.pass { color:#2a9d8f; } .reject { color:#d62828; } .insufficient { color:#6c757d; }
.lineage { max-height:520px; overflow:auto; margin:0 0 12px; }
td[title] { cursor:help; }
"""


def _card(label: str, value: str) -> str:
    return f'<div class="card"><span>{escape(label)}</span><b>{escape(value)}</b></div>'


def _num(v: Any, fmt: str = ".4f") -> str:
    return "" if v is None else format(v, fmt)


def _reason(text: str, limit: int = 110) -> str:
    """A table cell with the reason's short form and, when cut, the full text on hover."""
    shown = short(text, limit)
    title = f' title="{escape(text, quote=True)}"' if shown != " ".join(text.split()) else ""
    return f"<td{title}>{escape(shown)}</td>"


def _versions_table(data: ReportData) -> str:
    rows = []
    for v in reversed(data.versions):
        role = role_of(v, data.roles)
        gate = stored_gate(v.details)
        verdict = "" if gate is None else gate.verdict.value
        rows.append(
            "<tr>"
            f"<td><b>{escape(v.version)}</b></td>"
            f'<td><span class="tag {escape(role)}">{escape(role)}</span></td>'
            f"<td>{escape(v.parent or '–')}</td>"
            f"<td>{escape(v.kind.replace('_', ' '))}</td>"
            f"<td>{v.created_at:%Y-%m-%d}</td>"
            f"<td>{escape(v.created_by)}</td>"
            f'<td class="num">{v.n_rows:,}</td>'
            f'<td class="num">{_num(v.metrics.get(data.metric))}</td>'
            f'<td class="{escape(str(verdict))}">{escape(str(verdict))}</td>'
            f'<td class="num">{_num(v.details.get("fit_cpu_seconds"), ".2f")}</td>'
            f"{_reason(v.reason)}"
            "</tr>"
        )
    head = (
        "<tr><th>version</th><th>role</th><th>parent</th><th>kind</th><th>created</th>"
        f"<th>by</th><th>rows</th><th>holdout {escape(data.metric)}</th><th>gate</th>"
        "<th>fit CPU s</th><th>reason</th></tr>"
    )
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _naive_table(data: ReportData) -> str:
    """The served predictions' primary metric over every month next to each naive
    baseline's, on the same labelled actuals."""
    rows = naive_summary(data)
    if len(rows) < 2:
        return "<p class='note'>No naive baseline scored yet (no labelled predictions).</p>"
    head = (
        "<tr><th>predictor</th><th>what it predicts</th><th>labelled</th>"
        f"<th>{escape(data.metric)}</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(what)}</td><td>{n:,}</td>"
        f"<td>{_num(value)}</td></tr>"
        for name, what, n, value in rows
    )
    return f'<div class="scroll"><table class="naive">{head}{body}</table></div>'


def _decisions_table(data: ReportData, *, dry_run: bool, limit: int = 400) -> str:
    """The decisions taken (``dry_run=False``: acted on, "nothing" left out) or the dry runs
    (every one: what the policy would have done), newest first, each with all its reasons."""
    if dry_run:
        shown = [d for d in data.decisions if d.dry_run][-limit:]
        empty = "No dry runs (retrainer maintain --dry-run records one)."
    else:
        shown = [d for d in data.decisions if not d.dry_run and d.action != "nothing"][-limit:]
        empty = "No decision taken yet (only “nothing to do”, or none at all)."
    if not shown:
        return f"<p class='note empty'>{escape(empty)}</p>"
    rows = [
        "<tr>"
        f"<td>{d.taken_at:%Y-%m-%d %H:%M}</td><td>{escape(d.action.replace('_', ' '))}</td>"
        f'<td class="num">{_num(d.numbers.get("live_metric"), ".3f")}</td>'
        f"{_reason('; '.join(d.reasons))}"
        f"{_reason(d.outcome or ('not acted on: dry run' if dry_run else ''), 80)}</tr>"
        for d in reversed(shown)
    ]
    head = (
        f"<tr><th>date</th><th>decision</th><th>live {escape(data.metric)}</th>"
        "<th>reason</th><th>outcome</th></tr>"
    )
    kind = "dry-runs" if dry_run else "decisions"
    return f'<div class="scroll"><table class="{kind}">{head}{"".join(rows)}</table></div>'


def _events_table(data: ReportData) -> str:
    shown = [e for e in data.events if e.action != "delete"]
    rows = [
        "<tr>"
        f"<td>{e.created_at:%Y-%m-%d}</td><td>{escape(e.action)}</td>"
        f"<td>{escape(e.from_version or '–')}</td><td>{escape(e.to_version or '–')}</td>"
        f"{_reason(e.reason, 160)}</tr>"
        for e in reversed(shown)
    ]
    head = "<tr><th>date</th><th>event</th><th>from</th><th>to</th><th>why</th></tr>"
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def render(data: ReportData) -> str:
    """The whole page as one string."""
    served = sum(m.n for m in data.points)
    overall = None
    if data.points and data.task == "classification":
        correct = sum(m.sums.get("n_correct", 0.0) for m in data.points)
        overall = correct / served if served else None
    actions = Counter(d.action for d in data.decisions if not d.dry_run)
    dry = sum(d.dry_run for d in data.decisions)
    moves = Counter(e.action for e in data.events)
    cards = [
        _card("champion", data.roles.champion or "–"),
        _card("versions", str(len(data.versions))),
        _card(f"served {data.metric}", _num(overall, ".3f") or "–"),
        _card("labelled predictions", f"{served:,}"),
        _card("deploys · promotions", f"{moves['deploy']} · {moves['promote']}"),
        _card("rollbacks", str(moves["rollback"])),
    ]
    span = ""
    if data.points:
        end = data.bucket.next(data.points[-1].start)
        fmt = "%Y-%m-%d %H:%M" if data.bucket.name == "hour" else "%Y-%m-%d"
        span = f"{data.points[0].start:{fmt}} to {end:{fmt}} by {data.bucket.name}"
    taken = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(actions.items()))
    taken = taken or "none yet"
    sections = [
        (
            f"Live {data.metric} over time",
            f"Served predictions joined to their actuals, by {data.bucket.name}; shaded bands "
            "show which "
            "version was champion; markers show deployments, promotions and rollbacks.",
            live_metric_chart(data),
        ),
        (
            "Estimated vs realised performance",
            "CBPE (confidence-based performance estimation): the expected accuracy of a "
            "calibrated classifier is the mean probability of the class it predicted, known "
            "before any label arrives. A widening gap means the calibration (or the concept) "
            "changed.",
            estimate_chart(data),
        ),
        (
            "Data drift per feature",
            "PSI of each period's labelled rows against the training reference of the champion "
            "serving then (the period chosen from the data: about 200 rows each).",
            drift_chart(data),
        ),
        (
            f"Decisions ({taken})",
            "Every maintenance decision taken (dry runs are listed apart below); hover a dot "
            "for its reasons.",
            decisions_chart(data),
        ),
    ]
    body = "".join(
        f"<section><h2>{escape(t)}</h2><p class='note'>{escape(n)}</p>{c}</section>"
        for t, n, c in sections
    )
    tables = (
        "<section><h2>Naive baselines</h2><p class='note'>The served predictions' "
        f"{escape(data.metric)} over the whole period next to trivial predictors scored on "
        "the same labelled actuals (dashed in the live chart): a model should beat them."
        f"</p>{_naive_table(data)}</section>"
        "<section><h2>Versions and lineage</h2><p class='note'>Each version with an edge to "
        "its parent, newest on top; the champion filled green, a challenger amber; hover a "
        f"version for its reason.</p><div class='lineage'>{lineage_chart(data)}</div>"
        f"{_versions_table(data)}</section>"
        f"<section><h2>Deployment log</h2>{_events_table(data)}</section>"
        "<section id='decisions-taken'><h2>Decisions taken</h2>"
        f"{_decisions_table(data, dry_run=False)}</section>"
        f"<section id='dry-runs'><h2>Dry runs ({dry})</h2><p class='note'>What the policy "
        "would have done (maintain --dry-run); nothing was acted on.</p>"
        f"{_decisions_table(data, dry_run=True)}</section>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>retrainer report: {escape(data.model)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style>"
        "</head><body>"
        f"<header><h1>Model {escape(data.model)}</h1>"
        f"<p>{escape(data.task)} · primary metric {escape(data.metric)} · {escape(span)} · "
        f"generated {data.generated_at:%Y-%m-%d %H:%M} UTC by retrainer</p></header>"
        f"<main><div class='cards'>{''.join(cards)}</div>{body}{tables}</main></body></html>"
    )
