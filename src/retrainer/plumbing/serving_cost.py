"""What a new version costs to serve, measured at training time in a fresh process.

The artifact bytes (and the calibration map) are loaded the way serving loads them
(``families.load_model`` + ``Predictor``) by a short-lived child process (``python -m
retrainer.plumbing.serving_cost``), so nothing the training process holds (the training rows,
other models, the allocator's high-water mark) counts. In the child:

- the family's library is imported first (a serving process pays that once, for any number of
  models);
- memory: the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), the resident set is
  read, then the model is loaded and predicts every single-row and batch call below; the
  *peak RSS growth* is the new peak (VmHWM) minus that resident set. Where the peak cannot be
  reset (not Linux), ``ru_maxrss`` minus the resident set before loading is used instead and
  the method is recorded as such;
- latency: ``SINGLE_CALLS`` predictions of one row each (rows of the holdout in turn) and
  ``BATCH_CALLS`` predictions of ``BATCH_ROWS`` rows, each timed with ``perf_counter``; the
  first call of each kind is a warm-up and not counted. p50 and p95 of each are recorded.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SINGLE_CALLS = 100
BATCH_CALLS = 20
BATCH_ROWS = 100
_TIMEOUT_SECONDS = 600


def measure(
    data: bytes, calibrator: dict[str, Any] | None, rows: Any, family: str
) -> dict[str, Any]:
    """Latency and memory of the artifact ``data`` predicting ``rows`` (a DataFrame of the
    model's features, e.g. its holdout), measured in a child process. Raises TrainingError
    naming the family when the measurement fails."""
    from ..core.errors import TrainingError

    with tempfile.TemporaryDirectory(prefix="retrainer-cost-") as tmp:
        folder = Path(tmp)
        (folder / "model.bin").write_bytes(data)
        rows.reset_index(drop=True).to_parquet(folder / "rows.parquet")
        (folder / "calibrator.json").write_text(json.dumps(calibrator))
        proc = subprocess.run(
            [sys.executable, "-m", "retrainer.plumbing.serving_cost", tmp],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TrainingError(
            f"Measuring the serving latency and memory of the {family!r} model failed: {last}. "
            "Remove gate.max_latency_ms and gate.max_memory_mb from the spec to train without "
            "the budgets, or choose another family.",
            family=family,
        )
    # a library may print to stdout; the result is the last line
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _percentiles(times: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.array(times) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 4),
        "p95": round(float(np.percentile(ms, 95)), 4),
    }


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _child(folder: Path) -> dict[str, Any]:
    import pandas as pd

    from ..evaluation.calibration import Calibrator
    from ..families import family_class, load_model, read_artifact

    data = (folder / "model.bin").read_bytes()
    rows = pd.read_parquet(folder / "rows.parquet")
    cal = json.loads((folder / "calibrator.json").read_text())
    meta, _ = read_artifact(data)
    family_class(meta["family"])  # the library: paid once per serving process
    for member in (meta.get("params") or {}).get("members") or []:
        family_class(member)
    if len(rows) == 0:
        raise ValueError("no holdout rows to predict")
    method = "VmHWM after clear_refs" if _reset_peak() else "ru_maxrss"
    before_kb = _status_kb("VmRSS") or 0
    start_peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    model = load_model(data)
    calibrator = Calibrator.from_dict(cal) if cal else None
    load_ms = (time.perf_counter() - started) * 1000

    def predict(frame: pd.DataFrame) -> None:
        raw = model.predict_raw(frame)
        if calibrator is not None:
            calibrator.apply(raw)

    single, batch = [], []
    for i in range(SINGLE_CALLS + 1):
        j = i % len(rows)
        t = time.perf_counter()
        predict(rows.iloc[j : j + 1])
        single.append(time.perf_counter() - t)
    chunk = pd.concat([rows] * (BATCH_ROWS // len(rows) + 1)).iloc[:BATCH_ROWS]
    for _ in range(BATCH_CALLS + 1):
        t = time.perf_counter()
        predict(chunk)
        batch.append(time.perf_counter() - t)
    if method == "ru_maxrss":
        peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, start_peak_kb)
    else:
        peak_kb = _status_kb("VmHWM") or 0
    return {
        "latency_ms": {
            "single_row": {**_percentiles(single[1:]), "calls": SINGLE_CALLS},
            "batch": {**_percentiles(batch[1:]), "calls": BATCH_CALLS, "rows": BATCH_ROWS},
            "load": round(load_ms, 4),
        },
        "memory_mb": round(max(peak_kb - before_kb, 0) / 1024, 3),
        "memory_method": f"peak RSS growth ({method}) of loading and predicting, fresh process",
    }


if __name__ == "__main__":
    print(json.dumps(_child(Path(sys.argv[1]))))
