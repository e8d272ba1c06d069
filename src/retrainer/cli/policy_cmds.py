"""Loop commands: drift, maintain, decisions."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ..core.entities import Decision
from .app import JsonFlag, ModelArg, app, emit_json, handles_errors, out, workspace


def decision_view(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "model": d.model,
        "action": d.action,
        "reasons": list(d.reasons),
        "numbers": d.numbers,
        "taken_at": d.taken_at.isoformat(),
        "dry_run": d.dry_run,
        "outcome": d.outcome,
    }


@app.command()
@handles_errors
def drift(
    model: ModelArg,
    window: Annotated[str | None, typer.Option(help="Window, e.g. 7d (spec default).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Per-feature data drift of the live window against the champion's reference."""
    from ..lifecycle.drift_check import check_drift

    with workspace() as ws:
        r = check_drift(ws, model, window=window)
    rows = [f.to_dict() for f in r.features]
    if as_json:
        emit_json(rows)
        return
    table = Table(
        title=f"{model} {r.version}: drift over {r.rows} rows since {r.since:%Y-%m-%d %H:%M}"
    )
    for col in ("feature", "psi", "ks", "js", "wasserstein", "chi2 p", "drift"):
        table.add_column(col)
    for f in rows:
        cells = [
            "-" if f.get(k) is None else f"{f[k]:.3g}"
            for k in ("psi", "ks", "jensen_shannon", "wasserstein", "chi2_p_value")
        ]
        table.add_row(f["feature"], *cells, "yes" if f["drift"] else "")
    out.print(table)
    out.print(r.summary.message, highlight=False, markup=False)


@app.command()
@handles_errors
def maintain(
    model: Annotated[str | None, typer.Argument(help="Model; all models when omitted.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and print; change nothing.")
    ] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another maintain's lease.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Run monitor → policy → act once; every decision is stored."""
    from ..lifecycle.maintain import maintain as maintain_op

    with workspace() as ws:
        names = [model] if model else sorted(ws.spec.models)
        results = [
            maintain_op(ws, n, dry_run=dry_run, triggered_by="manual", wait=wait) for n in names
        ]
    views = [
        {**decision_view(r.decision), "version": r.version, "deployed": r.deployed} for r in results
    ]
    if as_json:
        emit_json(views[0] if model else views)
        return
    for v in views:
        out.print(f"[bold]{v['model']}[/]: {v['action']} — {v['outcome']}")
        for reason in v["reasons"]:
            out.print(f"  • {reason}", highlight=False, markup=False)


@app.command()
@handles_errors
def decisions(
    model: ModelArg,
    limit: Annotated[int, typer.Option(help="Newest N decisions.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List the stored maintenance decisions, taken or not."""
    with workspace() as ws:
        ws.model_spec(model)
        views = [decision_view(d) for d in ws.store.decisions(model, limit)]
    if as_json:
        emit_json(views)
        return
    for v in views:
        flag = " (dry run)" if v["dry_run"] else ""
        out.print(f"{v['taken_at'][:19]} {v['action']}{flag}: {v['outcome']}", highlight=False)
        for reason in v["reasons"]:
            out.print(f"    {reason}", highlight=False, markup=False)


@app.command()
@handles_errors
def abtest(model: ModelArg, as_json: JsonFlag = False) -> None:
    """Each arm's live metric since the challenger went on traffic, tested, with a verdict."""
    from ..lifecycle.abtest import ab_report

    with workspace() as ws:
        r = ab_report(ws, model)
    if as_json:
        emit_json(r.to_dict())
        return
    out.print(
        f"[bold]{model}[/]: champion {r.champion} vs {r.mode} challenger {r.challenger} "
        f"at {r.fraction:.0%} since {r.since:%Y-%m-%d %H:%M}"
    )
    for a in r.arms:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in a["metrics"].items() if v is not None)
        out.print(
            f"  {a['version']} ({a['arm']}): {a['labelled']} labelled of "
            f"{a['predictions']}; {metrics}",
            highlight=False,
        )
    out.print(f"verdict: {r.verdict}", highlight=False)
