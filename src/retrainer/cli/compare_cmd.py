"""The compare command: model families side by side on one model's window and folds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .app import JsonFlag, ModelArg, app, emit_json, handles_errors, out, workspace
from .progress_view import QuietFlag, shown

if TYPE_CHECKING:
    from ..apps.compare import ComparisonResult

DEFAULT_FAMILIES = "randomforest,lightgbm,xgboost,catboost,river,mlp,linear"


def _fmt(key: str, value: float | None) -> str:
    from ..apps.compare import LATENCY_KEYS

    if value is None:
        return "n/a"
    if key == "artifact_bytes":
        return f"{value / 1024:,.0f} KB" if value < 1024**2 else f"{value / 1024**2:,.1f} MB"
    if key == "peak_rss_mb":
        return f"{value:,.0f}"
    if key in ("fit_cpu_s", "fine_tune_cpu_s") or key in LATENCY_KEYS:
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:.4f}"


def render(result: ComparisonResult) -> Table:
    """The comparison as a Rich table, the best value of each column in bold green."""
    best = result.best()
    table = Table(
        title=f"{result.model}: {result.rows_in_window:,} rows "
        f"({result.window_start:%Y-%m-%d} → {result.window_end:%Y-%m-%d}), "
        f"{result.folds} walk-forward folds",
        title_justify="left",
    )
    table.add_column("family", style="bold")
    columns = result.columns
    for c in columns:
        label = f"{c.label} (mean ± std)" if c.key == result.primary_metric else c.label
        table.add_column(label, justify="right")
    for row in result.rows:
        if row.status != "ok":
            table.add_row(row.family, f"[dim]{row.status}[/]", *[""] * (len(columns) - 1))
            continue
        cells = []
        for c in columns:
            text = _fmt(c.key, row.value(c.key))
            if c.key == result.primary_metric:
                text += f" ± {row.metrics[c.key]['std']:.4f}"
            cells.append(f"[bold green]{text}[/]" if row.family in best[c.key] else text)
        table.add_row(row.family, *cells)
    return table


@app.command()
@handles_errors
def compare(
    model: ModelArg,
    families: Annotated[
        str, typer.Option("--families", help="Comma-separated families to compare.")
    ] = DEFAULT_FAMILIES,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds", min=2, max=50, help="Walk-forward folds (default: the spec's, or 5)."
        ),
    ] = None,
    register: Annotated[
        bool,
        typer.Option("--register", help="Also train and register (not deploy) each family."),
    ] = False,
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare model families on the model's window: metrics, fit, fine-tune, latency, size."""
    from ..apps import compare as compare_ops

    names = compare_ops.parse_families(families)
    with workspace() as ws, shown(f"compare {model}", quiet) as progress:
        result = compare_ops.compare(
            ws, model, names, folds=folds, register=register, progress=progress
        )
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(render(result))
    for row in result.rows:
        if row.note or row.fine_tune_note:
            note = row.note or f"fine-tune n/a: {row.fine_tune_note}"
            out.print(f"[bold]{row.family}[/] {row.status}: {escape(note)}", highlight=False)
    registered = {r.family: r.version for r in result.rows if r.version}
    if registered:
        listed = ", ".join(f"{f} → {v}" for f, v in registered.items())
        out.print(f"registered (not deployed): {listed}")
    else:
        out.print(
            "Nothing was registered; pass --register to train each family as a version.",
            style="dim",
        )
