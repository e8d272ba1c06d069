"""JSON shapes shared by the CLI's ``--json``, the REST API and alerts (documented in
docs/cli.md). One place, so the three never drift apart."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .entities import Decision, DeploymentEvent, ModelVersion, Roles


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _iso(v: Any) -> str | None:
    return None if v is None else v.isoformat()


def candidate_role(v: ModelVersion, deployed: bool) -> str:
    """The role a version just trained or imported took: champion, challenger (started as a
    shadow/A/B/canary by the spec's rollout) or archived (kept back, or not asked to deploy).

    >>> from datetime import datetime
    >>> v = ModelVersion("m", "1.1.0", "1.0.0", "lightgbm", {}, datetime(2026, 1, 1), "manual",
    ...     "", "full_retrain", None, None, 10, "", {}, {}, "file:///a", "0" * 64, None, 1,
    ...     details={"challenger": {"mode": "ab", "fraction": 0.1}})
    >>> candidate_role(v, False), placement_text(v, False)
    ('challenger', ' — started as ab challenger at 10%')
    """
    if deployed:
        return "champion"
    return "challenger" if v.details.get("challenger") else "archived"


def feature_set_text(v: Mapping[str, Any]) -> str:
    """The feature set a version (or a plan) trained on, and why when it fell back to it.

    >>> feature_set_text({"feature_set": {"name": "enhanced"}})
    'enhanced'
    """
    fs = v["feature_set"]
    if not fs.get("reason"):
        return str(fs["name"])
    return f"{fs['name']} (fell back from {fs['requested']}: {fs['reason']})"


def placement_text(v: ModelVersion, deployed: bool) -> str:
    """Where a new version went, for a one-line summary (empty when it was not asked to
    deploy and nothing held it back)."""
    d = v.details
    if deployed:
        return " — deployed" + (" (forced past the gate)" if d.get("forced") else "")
    ch = d.get("challenger")
    if ch:
        share = "" if ch["mode"] == "shadow" else f" at {ch['fraction']:.0%}"
        return f" — started as {ch['mode']} challenger{share}"
    return f" — not deployed: {d['held']}" if d.get("held") else ""


SEARCH_BRIEF = (
    "trigger",
    "skipped",
    "family",
    "metric",
    "trials",
    "default_value",
    "best_value",
    "p_value",
    "chosen",
    "params",
    "cpu_seconds",
)


def version_view(v: ModelVersion, role: str, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": v.version,
        "parent": v.parent,
        "family": v.family,
        "kind": v.kind,
        "role": role,
        "status": v.status,
        "created_at": _iso(v.created_at),
        "created_by": v.created_by,
        "reason": v.reason,
        "rows": v.n_rows,
        "train_start": _iso(v.train_start),
        "train_end": _iso(v.train_end),
        "metrics": {k: _num(x) for k, x in v.metrics.items()},
        "size_bytes": v.size_bytes,
        "sha256": v.sha256,
    }
    d = v.details
    if "folds_summary" in d:
        out["folds_summary"] = d["folds_summary"]
    if d.get("fallback"):
        out["fallback"] = d["fallback"]
    if d.get("feature_set"):  # the named set it trained on, and why when it fell back
        out["feature_set"] = d["feature_set"]
    if d.get("interval"):  # a regression's calibrated prediction interval
        out["interval"] = d["interval"]
    if d.get("search"):  # the hyper-parameter search, in brief (--detail: all of it)
        out["search"] = {k: d["search"][k] for k in SEARCH_BRIEF if k in d["search"]}
    for key in ("estimator", "feature_step"):  # your own model (family sklearn)
        if d.get(key):
            out[key] = d[key]
    if detail:
        out.update(
            params=v.params,
            fingerprint=v.fingerprint,
            artifact_uri=v.artifact_uri,
            signed=v.hmac is not None,
            folds=d.get("folds", []),
            calibration=d.get("calibration"),
            features=v.feature_schema,
            confusion_matrix=d.get("confusion_matrix"),
            serving_cost=d.get("serving_cost"),
            search=d.get("search"),  # the hyper-parameter search, when one ran
            holdout={
                "rows": d.get("holdout_rows"),
                "start": d.get("holdout_start"),
                "days": d.get("holdout_days"),  # training.holdout_days, when it chose them
            },
            quality_warnings=d.get("quality_warnings", []),  # what it trained past
        )
    return out


def event_view(e: DeploymentEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "action": e.action,
        "from_version": e.from_version,
        "to_version": e.to_version,
        "reason": e.reason,
        "triggered_by": e.triggered_by,
        "forced": e.forced,
        "gate": e.gate,
        "created_at": _iso(e.created_at),
    }


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


def roles_view(r: Roles) -> dict[str, Any]:
    ch = r.challenger
    return {
        "champion": None
        if r.champion is None
        else {"version": r.champion, "since": _iso(r.champion_since)},
        "challenger": None
        if ch is None
        else {
            "version": ch.version,
            "mode": ch.mode,
            "fraction": ch.fraction,
            "step": ch.step,
            "started_at": _iso(ch.started_at),
        },
    }
