"""Loop commands: drift, maintain, decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..core.durations import MAX_SECONDS
from ..core.views import decision_view
from .app import (
    MAX_LIMIT,
    AsOf,
    JsonFlag,
    ModelArg,
    app,
    as_of_clock,
    emit_json,
    err,
    handles_errors,
    out,
    parse_as_of,
    workspace,
)
from .progress_view import QuietFlag, shown

MAX_WORKERS = 1024  # --workers: worker processes of a LocalCluster

if TYPE_CHECKING:
    from ..core.entities import Decision
    from ..plumbing.workspace import Workspace


@app.command()
@handles_errors
def drift(
    model: ModelArg,
    window: Annotated[str | None, typer.Option(help="Window, e.g. 7d (spec default).")] = None,
    as_of: AsOf = None,
    as_json: JsonFlag = False,
) -> None:
    """Per-feature data drift of the live window against the champion's reference."""
    from ..lifecycle.drift_check import check_drift

    with workspace() as ws, as_of_clock(as_of):
        r = check_drift(ws, model, window=window)
    rows = r.to_dict()["features"]
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
    wait: Annotated[
        float,
        typer.Option(min=0, max=MAX_SECONDS, help="Seconds to wait for another maintain's lease."),
    ] = 0,
    all_models: Annotated[
        bool, typer.Option("--all", help="Every model of the spec (as when MODEL is omitted).")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_WORKERS,
            help=(
                "With --all: maintain on a LocalCluster of N worker processes, the models in "
                "parallel (needs the dask extra). Without it: one model after another in this "
                "process, except the members of a fleet with training.engine: dask, which run "
                "on its training.scheduler."
            ),
        ),
    ] = None,
    as_of: AsOf = None,
    quiet: QuietFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Run monitor → policy → act once; every decision is stored."""
    from ..api.results import MaintainResult
    from ..lifecycle.maintain import maintain as maintain_op

    if model and all_models:
        raise typer.BadParameter("name one MODEL or pass --all, not both", param_hint="--all")
    if model and workers is not None:
        raise typer.BadParameter(
            "--workers runs many models in parallel: pass --all (or no MODEL), or drop --workers",
            param_hint="--workers",
        )
    if model:  # one model: its error is the command's error
        with workspace() as ws, as_of_clock(as_of):
            _after_champion(ws, model, as_of)
            with shown(f"maintain {model}", quiet) as progress:
                r = maintain_op(ws, model, dry_run=dry_run, triggered_by="manual", wait=wait,
                                progress=progress)  # fmt: skip
        if as_json:
            emit_json(MaintainResult.of(r).to_dict())
            return
        _print_decision(r.decision)
        return
    _maintain_all(dry_run, wait, workers, as_of, quiet, as_json)


def _maintain_all(
    dry_run: bool, wait: float, workers: int | None, as_of: str | None, quiet: bool, as_json: bool
) -> None:
    """Every model once (:func:`~retrainer.lifecycle.fleet_maintain.maintain_many`); one
    failing does not stop the others; the exit code is the worst error's."""
    from ..api.results import MaintainResult
    from ..core.errors import RetrainerError, exit_code
    from ..lifecycle.fleet_maintain import Maintained, Options, maintain_many

    views: dict[str, dict[str, Any]] = {}
    worst = 0

    def failed(name: str, exc: RetrainerError) -> None:
        nonlocal worst
        worst = max(worst, exit_code(exc))
        views[name] = {"model": name, **exc.to_dict()}
        if not as_json:
            err.print(f"{name}: error: {exc.message}", highlight=False, markup=False)

    def done(m: Maintained) -> None:
        if m.error is not None or m.result is None:
            failed(m.model, m.error or RetrainerError(f"Maintain of {m.model!r} gave no result"))
            return
        views[m.model] = MaintainResult.of(m.result).to_dict()
        if not as_json:
            _print_decision(m.result.decision)

    with workspace() as ws, as_of_clock(as_of):
        names = ws.model_names()
        todo = []
        for name in names:  # a backfill before a champion existed is that model's error
            try:
                _after_champion(ws, name, as_of)
                todo.append(name)
            except RetrainerError as exc:
                failed(name, exc)
        at = None if as_of is None else parse_as_of(as_of)
        options = Options(dry_run=dry_run, triggered_by="manual", wait=wait, as_of=at)
        with shown(f"maintain {len(todo)} models", quiet) as progress:
            maintain_many(ws, todo, workers=workers, options=options, progress=progress,
                          on_done=done)  # fmt: skip
    if as_json:
        emit_json([views[name] for name in names])
    if worst:
        raise typer.Exit(worst)


def _after_champion(ws: Workspace, model: str, as_of: str | None) -> None:
    """A backfill runs on today's registry: refuse a moment before its champion existed."""
    if as_of is None:
        return
    from ..core.clock import utcnow
    from ..core.errors import InputError

    champion = ws.store.roles(model).champion
    if champion is None:
        return
    created = ws.store.get_version(model, champion).created_at
    if utcnow() < created:
        raise InputError(
            f"--as-of {as_of} is before champion {champion} of {model!r} was created "
            f"({created:%Y-%m-%dT%H:%M:%S}); maintain judges today's champion, so give a time "
            "at or after that.",
            model=model,
        )


def _print_decision(d: Decision) -> None:
    out.print(f"[bold]{d.model}[/]: {d.action} — {d.outcome}")
    for reason in d.reasons:
        out.print(f"  • {reason}", highlight=False, markup=False)


@app.command()
@handles_errors
def decisions(
    model: ModelArg,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="Newest N decisions.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List the stored maintenance decisions, taken or not."""
    with workspace() as ws:
        ws.model_spec(model)
        taken = ws.store.decisions(model, limit)
    if as_json:
        emit_json([decision_view(d) for d in taken])
        return
    for d in taken:
        flag = " (dry run)" if d.dry_run else ""
        at = d.taken_at.isoformat()[:19]
        out.print(f"{at} {d.action}{flag}: {d.outcome}", highlight=False)
        for reason in d.reasons:
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
