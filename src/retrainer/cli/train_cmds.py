"""Training commands: train, fine-tune."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ..core.durations import MAX_DAYS
from ..core.views import feature_set_text, placement_text
from .app import JsonFlag, ModelArg, app, emit_json, err, handles_errors, log, out, workspace
from .progress_view import QuietFlag, shown

if TYPE_CHECKING:
    from ..lifecycle.search import SearchRequest
    from ..plumbing.workspace import Workspace

Family = Annotated[str | None, typer.Option("--family", help="Override the spec's family.")]
Deploy = Annotated[bool, typer.Option("--deploy", help="Make the new version champion.")]


@app.command()
@handles_errors
def train(
    model: Annotated[
        str | None, typer.Argument(help="Model name from the spec (or --all).")
    ] = None,
    all_models: Annotated[
        bool,
        typer.Option("--all", help="Train every model of the spec, one result each."),
    ] = False,
    family: Family = None,
    deploy: Deploy = False,
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, max=MAX_DAYS, help="Train on the last N days only."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the checks, show the plan, write nothing.")
    ] = False,
    allow_quality_warnings: Annotated[
        bool, typer.Option("--allow-quality-warnings", help="Train despite quality violations.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; stored on the version.")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="With --deploy: deploy even if the gate rejects.")
    ] = False,
    search: Annotated[
        bool,
        typer.Option(
            "--search",
            help="Search hyper-parameters first (Optuna, walk-forward; the `search` extra).",
        ),
    ] = False,
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="With --search: trials (training.search.trials)."),
    ] = None,
    search_seconds: Annotated[
        float | None,
        typer.Option(
            "--search-seconds", help="With --search: time budget (training.search.seconds)."
        ),
    ] = None,
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Fully retrain a model (or every model with --all) and register a new version."""
    if (model is None) == (not all_models):
        raise typer.BadParameter(
            "name one MODEL, or pass --all for every model of the spec (not both)",
            param_hint="MODEL / --all",
        )
    if not search and (trials is not None or search_seconds is not None):
        raise typer.BadParameter(
            "--trials and --search-seconds set the budget of --search; add --search",
            param_hint="--trials / --search-seconds",
        )
    from ..lifecycle.search import SearchRequest

    options: dict[str, Any] = {
        "search": SearchRequest(trials, search_seconds) if search else None,
        "family": family,
        "deploy": deploy,
        "days": days,
        "dry_run": dry_run,
        "allow_quality_warnings": allow_quality_warnings,
        "reason": reason,
        "force": force,
        "quiet": quiet,
        "as_json": as_json,
    }
    with workspace() as ws:
        if model is not None:
            code = _train_one(ws, model, **options)
            if code:
                raise typer.Exit(code)
            return
        results = []
        for name in ws.model_names():
            log.debug("train --all: %s", name)
            results.append(_train_each(ws, name, options))
    worst = max((r["exit"] for r in results), default=0)
    if as_json:
        emit_json(results)
    else:
        ok = sum(r["exit"] == 0 for r in results)
        out.print(f"{ok} of {len(results)} models trained" + (" (dry run)" if dry_run else ""))
    if worst:
        raise typer.Exit(worst)


def _train_each(ws: Workspace, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """One model of ``train --all``: its result, or its error, and its exit code."""
    from ..core.errors import RetrainerError, exit_code

    captured: list[Any] = []
    as_json = options["as_json"]
    try:
        code = _train_one(ws, name, **options, sink=captured.append if as_json else None)
    except RetrainerError as exc:
        if not as_json:
            err.print(f"[bold red]error[/] ({name}): {escape(exc.message)}", highlight=False)
        return {"model": name, "exit": exit_code(exc), **exc.to_dict()}
    return {"model": name, "exit": code, "result": captured[0] if captured else None}


def _train_one(
    ws: Workspace,
    model: str,
    *,
    family: str | None,
    deploy: bool,
    days: int | None,
    dry_run: bool,
    allow_quality_warnings: bool,
    reason: str,
    force: bool,
    quiet: bool,
    as_json: bool,
    sink: Callable[[Any], None] | None = None,
    search: SearchRequest | None = None,
) -> int:
    """Train (or plan) one model and print its result; returns the exit code."""
    from ..lifecycle import train as train_ops

    show = sink or emit_json
    if dry_run:
        p = train_ops.plan(ws, model, family=family, days_back=days)
        if as_json:
            show(p.to_dict())  # the plan's quality.ok says it; the exit code stays 0
            return 0
        w = p.window
        out.print(
            f"[bold]{model}[/] would train [bold]{p.family}[/] "
            f"(fallback {p.fallback_family}) as a {p.bump} version (parent {p.parent})"
        )
        out.print(f"window {w.start} → {w.end}: {w.rows} rows; classes {p.class_balance}")
        if p.feature_set:  # the named set it would train on, and why when it falls back
            out.print(f"feature set {feature_set_text(p.to_dict())}", markup=False)
        out.print(p.quality.render(), markup=False, highlight=False)
        return 0 if p.quality.ok else 1
    with shown(f"train {model}", quiet) as progress:
        r = train_ops.train(
            ws,
            model,
            family=family,
            deploy=deploy,
            days_back=days,
            allow_quality_warnings=allow_quality_warnings,
            reason=reason,
            progress=progress,
            force=force,
            search=search,
        )
    from ..api.results import TrainResult

    view = TrainResult.of(r).to_dict()
    if as_json:
        show(view)
        return 0
    primary = r.version.details.get("primary_metric", "")
    note = f" (fallback from {view['fallback']['requested']})" if view.get("fallback") else ""
    from ..evaluation.gate_types import stored_gate

    gate = stored_gate(r.version.details)
    out.print(
        f"{model} {r.version.version}: {r.version.family}{note}, {r.version.n_rows} rows, "
        f"holdout {primary} {r.version.metrics.get(primary, float('nan')):.4f}"
        + placement_text(r.version, r.deployed)
    )
    if view.get("feature_set"):  # the named set it trained on, and why when it fell back
        out.print(f"feature set {feature_set_text(view)}", markup=False, highlight=False)
    if r.version.details.get("search"):
        from .version_cmds import search_text

        out.print(
            search_text(r.version.details["search"], trials=False), markup=False, highlight=False
        )
    if gate is not None:
        # a verdict other than pass already carries its first reason in the summary
        rest = () if gate.budgets_only else gate.reasons[0 if gate.passed else 1 :]
        out.print(
            gate.summary + "".join(f"; {why}" for why in rest),
            highlight=False,
            markup=False,
        )
    return 0


@app.command("fine-tune")
@handles_errors
def fine_tune(
    model: ModelArg,
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, max=MAX_DAYS, help="Use the last N days of rows."),
    ] = None,
    deploy: Deploy = False,
    reason: Annotated[str, typer.Option(help="Why; stored on the version.")] = "fine-tune",
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Warm-start the champion on new rows and register a patch version."""
    from ..api.results import FineTuneResult
    from ..lifecycle import fine_tune as fine_tune_ops

    with workspace() as ws, shown(f"fine-tune {model}", quiet) as progress:
        r = fine_tune_ops.fine_tune(
            ws, model, days=days, deploy=deploy, reason=reason, progress=progress
        )
    view = FineTuneResult.of(r).to_dict()
    if as_json:
        emit_json(view)
        return
    primary = r.version.details.get("primary_metric", "")
    out.print(
        f"{model} {r.version.version} (from {r.version.parent}): {r.version.n_rows} new rows, "
        f"validation {primary} {r.version.metrics.get(primary, float('nan')):.4f} vs champion "
        f"{r.champion_metrics.get(primary, float('nan')):.4f}"
        + placement_text(r.version, r.deployed)
    )
