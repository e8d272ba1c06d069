"""Data drift of the live window against the champion's reference statistics, computed out
of core: the logged features are read from the store in chunks, never all at once; with
``training.engine: dask`` (and a store the workers can open) they are read and compared on
the Dask cluster, with the same results (:mod:`.dask_drift`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.clock import utcnow
from ..core.durations import parse_duration
from ..core.errors import NoChampion
from ..core.fleet import check_single
from ..monitoring.drift import (
    CurrentAccumulator,
    DriftSummary,
    FeatureDrift,
    drift_report,
    summarize,
)
from ..monitoring.reference import ReferenceStats
from ..plumbing.workspace import Workspace
from . import dask_drift

STATE_KEY = "drift"  # the last check's summary in the store's model state (``/metrics``)


@dataclass(frozen=True)
class DriftCheck:
    model: str
    version: str
    since: datetime
    rows: int
    features: list[FeatureDrift]
    summary: DriftSummary

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the REST drift route (``retrainer drift --json`` prints its
        ``features``)."""
        return {
            "model": self.model,
            "version": self.version,
            "since": self.since.isoformat(),
            "rows": self.rows,
            "summary": self.summary.to_dict(),
            "features": [f.to_dict() for f in self.features],
        }


def check_drift(
    ws: Workspace,
    model: str,
    *,
    window: str | None = None,
    now: datetime | None = None,
    version: str | None = None,
) -> DriftCheck:
    """Drift of the logged features over ``window`` (default: the spec's ``monitor.window``)
    up to ``now`` against ``version``'s (default: the champion's) reference. Its summary and
    each feature's PSI are kept as the model's last drift check (:func:`last_drift`), which
    the server's ``/metrics`` exposes without computing anything. On the Dask engine a
    cluster that cannot be reached or fails is a DistributedError, and nothing is kept."""
    spec = check_single(ws.model_spec(model), "drift")
    name = version or ws.store.roles(model).champion
    if name is None:
        raise NoChampion(f"Model {model!r} has no champion, so there is no reference to compare.")
    v = ws.store.get_version(model, name)
    reference = ReferenceStats.from_dict(v.details["reference"])
    until = now or utcnow()
    since = until - parse_duration(window or spec.monitor.window, what="window")
    found = None
    if dask_drift.unsupported(ws, spec) is None:  # read and computed on the Dask cluster
        found = dask_drift.window_report(ws, spec, reference, since, until)
    if found is not None:
        rows, features = found
    else:
        acc = CurrentAccumulator(reference)
        for chunk in ws.store.iter_prediction_features(model, since=since, until=until):
            acc.update(chunk)
        rows, features = acc.n_rows, drift_report(reference, acc.result(), spec.drift)
    check = DriftCheck(model, name, since, rows, features, summarize(features, spec.drift))
    psi = {f.feature: f.psi for f in features if f.psi is not None}
    s = check.summary
    kept = {"at": until, "rows": check.rows, "share": s.share, "drift": s.drift, "psi": psi}
    ws.store.put_state(model, STATE_KEY, name, {**kept, "critical": s.critical})
    return check


def last_drift(ws: Workspace, model: str) -> tuple[str, dict[str, Any]] | None:
    """The version and summary of ``model``'s last drift check (share, drift, critical, rows,
    at, and ``psi`` by feature), or None before the first."""
    found = ws.store.get_state(model, STATE_KEY)
    if found is None or found[0] is None:
        return None
    return found[0], found[1]
