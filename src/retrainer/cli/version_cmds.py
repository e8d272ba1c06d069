"""Registry commands: versions, history, status, deploy, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..core.entities import ModelVersion, Roles
from ..core.fleet import check_single
from ..core.views import event_view, feature_set_text, roles_view, version_view
from .app import JsonFlag, ModelArg, app, emit_json, err, handles_errors, out, workspace


def _fmt(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else ("-" if x is None else str(x))


def _cost(c: dict[str, Any]) -> str:
    one, batch = c["latency_ms"]["single_row"], c["latency_ms"]["batch"]
    return (
        f"single row p50 {one['p50']:.3g} ms, p95 {one['p95']:.3g} ms; batch of "
        f"{batch['rows']} p50 {batch['p50']:.3g} ms, p95 {batch['p95']:.3g} ms; peak memory "
        f"growth {c['memory_mb']:.3g} MB"
    )


def confusion_text(cm: dict[str, Any]) -> str:
    """A confusion matrix as aligned text: rows actual, columns predicted."""
    labels = [str(x) for x in cm["labels"]]
    width = max(len(x) for x in [*labels, *(str(n) for r in cm["matrix"] for n in r)]) + 2
    head = " " * width + "".join(x.rjust(width) for x in labels) + "  (predicted)"
    rows = [
        label.rjust(width) + "".join(str(n).rjust(width) for n in row)
        for label, row in zip(labels, cm["matrix"], strict=True)
    ]
    return "\n".join([head, *rows])


def search_text(s: dict[str, Any], trials: bool = True) -> str:
    """A version's hyper-parameter search (``details["search"]``) as text: a summary, then
    (with ``trials``) one line per trial.

    >>> print(search_text({"trigger": "asked (train --search)", "family": "lightgbm",
    ...     "metric": "mae", "objective": "mean mae over 3 walk-forward folds of 800 rows",
    ...     "trials": {"complete": 2, "pruned": 1, "fail": 0}, "default_value": 1.5,
    ...     "best_value": 1.25, "best_trial": 1, "chosen": "search", "p_value": 0.01,
    ...     "params": {"num_leaves": 15}, "cpu_seconds": 2.0, "history": [
    ...     {"number": 0, "state": "complete", "value": 1.4, "params": {"num_leaves": 63}},
    ...     {"number": 1, "state": "complete", "value": 1.25, "params": {"num_leaves": 15}},
    ...     {"number": 2, "state": "pruned", "value": None, "folds": [2.5],
    ...      "params": {"num_leaves": 7}}]}))
    search (asked (train --search)): lightgbm, mean mae over 3 walk-forward folds of 800 rows
      3 trials: 2 complete, 1 pruned, 0 failed; 2 CPU s
      defaults mae 1.5; best mae 1.25 (trial 1, p 0.01 vs 0.05); trained with num_leaves=15
      trial 0 complete mae 1.4: num_leaves=63
      trial 1 complete mae 1.25: num_leaves=15
      trial 2 pruned after fold 1 (mae 2.5): num_leaves=7
    """
    if s.get("skipped"):
        return f"search ({s['trigger']}): skipped: {s['skipped']}"
    metric, n = s["metric"], s["trials"]

    def params(p: dict[str, Any]) -> str:
        return ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()
        )

    p = s.get("p_value")
    test = "" if p is None else f", p {p:.3g} vs {s.get('significance', 0.05):g}"
    chosen = (
        f"trained with {params(s['params'])}"
        if s["chosen"] == "search"
        else "kept the defaults ("
        + ("no trial beat them)" if p is None else "the best did not beat them beyond chance)")
    )
    best = (
        "no trial completed"
        if s.get("best_value") is None
        else f"best {metric} {s['best_value']:.4g} (trial {s['best_trial']}{test})"
    )
    lines = [
        f"search ({s['trigger']}): {s['family']}, {s['objective']}",
        f"  {sum(n.values())} trials: {n['complete']} complete, {n['pruned']} pruned, "
        f"{n['fail']} failed; {s['cpu_seconds']:.3g} CPU s",
        f"  defaults {metric} {s['default_value']:.4g}; {best}; {chosen}",
    ]
    for t in s.get("history", []) if trials else []:
        if t["state"] == "pruned":
            folds = t.get("folds") or []
            at = f" after fold {len(folds)}" + (f" ({metric} {folds[-1]:.4g})" if folds else "")
            lines.append(f"  trial {t['number']} pruned{at}: {params(t['params'])}")
        else:
            value = "" if t.get("value") is None else f" {metric} {t['value']:.4g}"
            lines.append(f"  trial {t['number']} {t['state']}{value}: {params(t['params'])}")
    return "\n".join(lines)


@app.command()
@handles_errors
def versions(
    model: ModelArg,
    detail: Annotated[
        bool,
        typer.Option(
            "--detail",
            help=(
                "Show folds, params, calibration, confusion matrix, serving cost and any "
                "hyper-parameter search."
            ),
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List a model's versions with lineage, role and holdout metrics."""
    from ..api.results import VersionInfo
    from ..lifecycle import deploy as deploy_ops

    with workspace() as ws:
        rows = deploy_ops.versions_with_roles(ws, model)
        primary = check_single(ws.model_spec(model), "versions and history").primary_metric
    views = [VersionInfo.of(r.version, r.role, detail=detail).to_dict() for r in rows]
    if as_json:
        emit_json(views)
        return
    table = Table(title=f"{model}: versions")
    for col in ("version", "parent", "family", "kind", "role", "rows", primary, "created", "by"):
        table.add_column(col)
    for v in views:
        table.add_row(
            v["version"],
            v["parent"] or "-",
            v["family"],
            v["kind"],
            v["role"],
            str(v["rows"]),
            _fmt(v["metrics"].get(primary)),
            v["created_at"][:19],
            v["created_by"],
        )
    out.print(table)
    if detail:
        for v in views:
            if v.get("folds"):
                out.print(f"[bold]{v['version']}[/] walk-forward folds:")
                for f in v["folds"]:
                    out.print("  " + ", ".join(f"{k}={_fmt(x)}" for k, x in f.items()))
            if v.get("folds_summary"):
                s = v["folds_summary"].get(primary, {})
                out.print(f"  {primary}: {_fmt(s.get('mean'))} ± {_fmt(s.get('std'))}")
            if v.get("calibration"):
                out.print(f"[bold]{v['version']}[/] calibration: {v['calibration']}")
            if v.get("feature_set"):
                out.print(f"[bold]{v['version']}[/] feature set: {feature_set_text(v)}")
            if v.get("interval"):
                iv = v["interval"]
                out.print(
                    f"[bold]{v['version']}[/] interval: prediction ± {iv['half_width']:.4g} "
                    f"covers {iv['coverage']:.0%} (from {iv['residuals']} held-out residuals)"
                )
            if v.get("serving_cost"):
                out.print(f"[bold]{v['version']}[/] serving cost: {_cost(v['serving_cost'])}")
            if v.get("search"):
                out.print(f"[bold]{v['version']}[/]", end=" ")
                out.print(search_text(v["search"]), markup=False, highlight=False)
            if v.get("confusion_matrix"):
                out.print(f"[bold]{v['version']}[/] holdout confusion (rows actual):")
                out.print(confusion_text(v["confusion_matrix"]), markup=False, highlight=False)


@app.command()
@handles_errors
def history(model: ModelArg, as_json: JsonFlag = False) -> None:
    """Show the deployment log: every role change, why and by whom."""
    with workspace() as ws:
        check_single(ws.model_spec(model), "versions and history")
        events = [event_view(e) for e in ws.store.events(model)]
    if as_json:
        emit_json(events)
        return
    table = Table(title=f"{model}: history")
    for col in ("#", "when", "action", "from", "to", "by", "forced", "reason"):
        table.add_column(col)
    for e in events:
        table.add_row(
            str(e["id"]),
            e["created_at"][:19],
            e["action"],
            e["from_version"] or "-",
            e["to_version"] or "-",
            e["triggered_by"],
            "yes" if e["forced"] else "",
            e["reason"],
        )
    out.print(table)


@app.command()
@handles_errors
def status(
    model: Annotated[
        str | None, typer.Argument(help="Model name; all models when omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show who serves: champion, challenger and rollout, per model."""
    with workspace() as ws:
        if model:
            spec = ws.model_spec(model)
            names = ws.members(model) if spec.is_fleet else [model]
        else:
            names = ws.model_names()
        views = {}
        for o in ws.store.overview(names):
            view = roles_view(o.roles)
            view["model"] = o.roles.model
            view["training_rows"] = o.training_rows
            view["versions"] = o.versions
            views[o.roles.model] = view
    if as_json:
        emit_json(views[model] if model in views else list(views.values()))
        return
    for name, v in views.items():
        champ = v["champion"]["version"] if v["champion"] else "none"
        ch = v["challenger"]
        chal = f"{ch['version']} ({ch['mode']}, {ch['fraction']:.0%})" if ch else "none"
        out.print(
            f"[bold]{name}[/]: champion {champ}, challenger {chal}, "
            f"{v['versions']} versions, {v['training_rows']} training rows"
        )


@app.command()
@handles_errors
def deploy(
    model: ModelArg,
    version: Annotated[
        str | None,
        typer.Argument(help="Version to make champion, e.g. 1.2.0 (or use --from-file)."),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            metavar="PATH",
            help="Import a native model file (LightGBM .txt, XGBoost .json, CatBoost .cbm, "
            "scikit-learn .skops) as a new version, verified and gated.",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why; stored on the event.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Override the gate; recorded as forced.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Make a version the champion (verified before the switch), or import a model file."""
    from ..core.errors import InputError
    from ..lifecycle import deploy as deploy_ops

    if (version is None) == (from_file is None):
        raise InputError(
            f"retrainer deploy {model} needs either a VERSION or --from-file PATH (got "
            f"{'both' if version else 'neither'}). Deploy a registered version with "
            f"`retrainer deploy {model} 1.2.0`, or import a file with `retrainer deploy {model} "
            "--from-file model.txt`."
        )
    if from_file is not None:
        _import(model, from_file, reason or "", force, as_json)
        return
    assert version is not None
    from ..api.results import DeployResult

    with workspace() as ws:
        event = deploy_ops.deploy(
            ws, model, version, reason=reason or "manual deploy", forced=force
        )
    if as_json:
        emit_json(DeployResult.of(event).to_dict())
    else:
        out.print(f"{model}: champion {event.from_version or 'none'} → {event.to_version}")


def _import(model: str, path: Path, reason: str, force: bool, as_json: bool) -> None:
    """``deploy --from-file``: register the file as a version, deployed as the gate and the
    rollout say; exit 1 when the gate kept the champion."""
    from ..lifecycle.import_model import import_model

    with workspace() as ws:
        v = import_model(ws, model, path, force=force, reason=reason)
        roles = ws.store.roles(model)
    source = f"{path.name} (sha256 {v.details['import']['sha256'][:12]}…)"
    show_imported(model, v, roles, source, as_json)


def show_imported(
    model: str, v: ModelVersion, roles: Roles, source: str, as_json: bool, **extra: Any
) -> None:
    """What an imported version became (``deploy --from-file``, ``import --mlflow``): its
    view, gate and placement as JSON (plus ``extra`` keys), or a line each; exit 1 when the
    gate kept the champion (the version stays registered)."""
    from ..evaluation.gate import summary_line
    from ..lifecycle.rollout import outcome
    from ..store import role_of

    said = outcome(v, roles)
    d = v.details
    gate = d.get("gate")
    if as_json:
        emit_json(
            {
                **version_view(v, role_of(v, roles)),
                "deployed": bool(d.get("deployed")),
                "gate": gate,
                "outcome": said,
                **extra,
            }
        )
    else:
        primary = d.get("primary_metric", "")
        out.print(
            f"{model} {v.version}: imported {d['import']['format']} model {source}, holdout "
            f"{primary} {v.metrics.get(primary, float('nan')):.4f}",
            highlight=False,
            markup=False,
        )
        if gate:
            out.print(summary_line(gate), highlight=False, markup=False)
        out.print(said, highlight=False, markup=False)
        for note in d["import"]["notes"]:
            err.print(f"note: {note}", highlight=False, markup=False)
    if d.get("held"):
        if not as_json:
            err.print(
                f"{model} {v.version} is registered but not deployed. Deploy it anyway with "
                f"`retrainer deploy {model} {v.version} --force` (recorded as forced).",
                highlight=False,
                markup=False,
            )
        raise typer.Exit(1)


@app.command()
@handles_errors
def rollback(
    model: ModelArg,
    to: Annotated[str | None, typer.Option("--to", help="Version to return to.")] = None,
    reason: Annotated[str, typer.Option(help="Why; stored on the event.")] = "manual rollback",
    as_json: JsonFlag = False,
) -> None:
    """Return to the previous champion, or to --to VERSION."""
    from ..api.results import DeployResult
    from ..lifecycle import deploy as deploy_ops

    with workspace() as ws:
        event = deploy_ops.rollback(ws, model, to=to, reason=reason)
    if as_json:
        emit_json(DeployResult.of(event).to_dict())
    else:
        out.print(f"{model}: rolled back {event.from_version} → {event.to_version}")
