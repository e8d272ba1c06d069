"""The public Python API: ``retrainer.open`` and the typed results (see docs/python.md).

Everything here is also exported by the ``retrainer`` package itself, imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lifecycle.drift_check import DriftCheck as DriftCheck
    from ..lifecycle.feedback import FeedbackResult as FeedbackResult
    from ..lifecycle.ingest import IngestResult as IngestResult
    from ..lifecycle.ingest import Reject as Reject
    from ..lifecycle.monitor import MonitorReport as MonitorReport
    from ..lifecycle.monitor import VersionMonitor as VersionMonitor
    from ..lifecycle.train import TrainPlan as TrainPlan
    from .facade import Retrainer as Retrainer
    from .facade import open as open
    from .results import (
        DeployResult as DeployResult,
    )
    from .results import (
        FineTuneResult as FineTuneResult,
    )
    from .results import (
        MaintainResult as MaintainResult,
    )
    from .results import (
        PredictResult as PredictResult,
    )
    from .results import (
        ReportResult as ReportResult,
    )
    from .results import (
        TrainResult as TrainResult,
    )
    from .results import (
        VersionInfo as VersionInfo,
    )
    from .results import (
        VersionList as VersionList,
    )

# public name -> the module that defines it (imported on first use: `import retrainer` stays
# cheap, and `retrainer --help` loads none of the library)
EXPORTS: dict[str, str] = {
    "open": "retrainer.api.facade",
    "Retrainer": "retrainer.api.facade",
    "DeployResult": "retrainer.api.results",
    "FineTuneResult": "retrainer.api.results",
    "MaintainResult": "retrainer.api.results",
    "PredictResult": "retrainer.api.results",
    "ReportResult": "retrainer.api.results",
    "TrainResult": "retrainer.api.results",
    "VersionInfo": "retrainer.api.results",
    "VersionList": "retrainer.api.results",
    "DriftCheck": "retrainer.lifecycle.drift_check",
    "FeedbackResult": "retrainer.lifecycle.feedback",
    "IngestResult": "retrainer.lifecycle.ingest",
    "Reject": "retrainer.lifecycle.ingest",
    "MonitorReport": "retrainer.lifecycle.monitor",
    "VersionMonitor": "retrainer.lifecycle.monitor",
    "TrainPlan": "retrainer.lifecycle.train",
}

__all__ = sorted(EXPORTS)


def export(name: str) -> Any:
    """The public object ``name`` (AttributeError naming the exports when there is none).

    >>> export("open").__name__
    'open'
    """
    try:
        module = EXPORTS[name]
    except KeyError:
        raise AttributeError(
            f"retrainer has no public name {name!r}; the API is: {', '.join(__all__)}"
        ) from None
    return getattr(import_module(module), name)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return export(name)


def __dir__() -> list[str]:
    return [*globals(), *__all__]
