"""retrainer keeps tabular ML models good after they ship.

The Python API (docs/python.md): ``rt = retrainer.open("retrainer.yaml")``, then
``rt.ingest``, ``rt.train``, ``rt.predict``, ``rt.feedback``, ``rt.monitor``, ... Its names
are imported on first use, so ``import retrainer`` loads none of the library.
"""

__version__ = "0.1.0"

TYPE_CHECKING = False  # not typing's: `import retrainer` imports nothing (mypy reads it as True)
if TYPE_CHECKING:
    from typing import Any

    from .api import (
        DeployResult,
        DriftCheck,
        FeedbackResult,
        FineTuneResult,
        IngestResult,
        MaintainResult,
        MonitorReport,
        PredictResult,
        Reject,
        ReportResult,
        Retrainer,
        TrainPlan,
        TrainResult,
        VersionInfo,
        VersionList,
        VersionMonitor,
        open,
    )

__all__ = [
    "DeployResult",
    "DriftCheck",
    "FeedbackResult",
    "FineTuneResult",
    "IngestResult",
    "MaintainResult",
    "MonitorReport",
    "PredictResult",
    "Reject",
    "ReportResult",
    "Retrainer",
    "TrainPlan",
    "TrainResult",
    "VersionInfo",
    "VersionList",
    "VersionMonitor",
    "open",
]


def __getattr__(name: str) -> "Any":
    """The API's names, imported on first use (``retrainer.open``, the result types)."""
    if name in __all__:
        from .api import export

        value = export(name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'retrainer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
