"""The report page: summary cards, the charts, the decision log and the version table with
lineage, in one self-contained HTML file (inline CSS and SVG, nothing fetched)."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from ..evaluation.gate_types import stored_gate
from ..store import role_of
from .charts import decisions_chart, drift_chart, estimate_chart, live_metric_chart
from .data import ReportData, naive_summary

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
.lineage { font-family: ui-monospace, Menlo, Consolas, monospace; font-size:12.5px; }
"""


def _card(label: str, value: str) -> str:
    return f'<div class="card"><span>{escape(label)}</span><b>{escape(value)}</b></div>'


def _num(v: Any, fmt: str = ".4f") -> str:
    return "" if v is None else format(v, fmt)


def _lineage(data: ReportData) -> str:
    by = {v.version: v for v in data.versions}
    chain, seen = [], set()
    cur = data.roles.champion
    while cur and cur in by and cur not in seen:
        seen.add(cur)
        v = by[cur]
        chain.append(f"{cur} ({v.kind.replace('_', ' ')}, {v.created_at:%Y-%m-%d})")
        cur = v.parent
    return " ← ".join(chain) or "no champion"


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
            f"<td>{escape(v.reason[:110])}</td>"
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


def _decisions_table(data: ReportData, limit: int = 400) -> str:
    taken = [d for d in data.decisions if d.action != "nothing"][-limit:]
    rows = [
        "<tr>"
        f"<td>{d.taken_at:%Y-%m-%d}</td><td>{escape(d.action.replace('_', ' '))}</td>"
        f'<td class="num">{_num(d.numbers.get("live_metric"), ".3f")}</td>'
        f"<td>{escape(d.reasons[0] if d.reasons else '')}</td>"
        f"<td>{escape(d.outcome or '')}</td></tr>"
        for d in reversed(taken)
    ]
    head = (
        f"<tr><th>date</th><th>decision</th><th>live {escape(data.metric)}</th>"
        "<th>reason</th><th>outcome</th></tr>"
    )
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _events_table(data: ReportData) -> str:
    shown = [e for e in data.events if e.action != "delete"]
    rows = [
        "<tr>"
        f"<td>{e.created_at:%Y-%m-%d}</td><td>{escape(e.action)}</td>"
        f"<td>{escape(e.from_version or '–')}</td><td>{escape(e.to_version or '–')}</td>"
        f"<td>{escape(e.reason[:160])}</td></tr>"
        for e in reversed(shown)
    ]
    head = "<tr><th>date</th><th>event</th><th>from</th><th>to</th><th>why</th></tr>"
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def render(data: ReportData) -> str:
    """The whole page as one string."""
    served = sum(m.n for m in data.months)
    overall = None
    if data.months and data.task == "classification":
        correct = sum(m.sums.get("n_correct", 0.0) for m in data.months)
        overall = correct / served if served else None
    actions = Counter(d.action for d in data.decisions)
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
    if data.months:
        span = f"{data.months[0].start:%Y-%m} to {data.months[-1].start:%Y-%m}"
    taken = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(actions.items()))
    sections = [
        (
            f"Live {data.metric} over time",
            "Served predictions joined to their actuals, by month; shaded bands show which "
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
            "PSI of each year's labelled rows against the training reference of the champion "
            "serving then.",
            drift_chart(data),
        ),
        (
            f"Decisions ({taken})",
            "Every maintenance decision; hover a dot for its reason.",
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
        "<section><h2>Versions and lineage</h2>"
        f"<p class='note lineage'>champion lineage: {escape(_lineage(data))}</p>"
        f"{_versions_table(data)}</section>"
        f"<section><h2>Deployment log</h2>{_events_table(data)}</section>"
        f"<section><h2>Decisions taken</h2>{_decisions_table(data)}</section>"
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
