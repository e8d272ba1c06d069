"""Compiled inference: ONNX Runtime (``serving.backend: onnx``) against each tree family's own
library, through the call the server makes for a request (``serving.predict.score`` on the
loaded version: predictor, calibration, labels and probability dicts).

Weather 1949–1958 is ingested into a fresh workspace and one model per family (the demo's
spec: rain tomorrow from eight numeric features, family defaults, one thread) is trained and
deployed. The server's model holder loads each champion natively; the onnx backend is built
from it by the function the holder calls (``serving.compiled.choose_backend``: convert,
verify on the sample, keep). Rows of 1959 are then scored one at a time and 100 at a time,
native and compiled alternating call by call, so both see the same machine load. Quick mode:
two years of training rows and fewer calls.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .common import table

FAMILIES = ("randomforest", "lightgbm", "xgboost", "catboost")


def peers() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("onnxruntime", "skl2onnx", "onnxmltools", "lightgbm", "xgboost-cpu", "catboost"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    out["scikit-learn"] = md.version("scikit-learn")
    return out


def _workspace(folder: Path, last_year: int) -> Any:
    import yaml

    from retrainer.apps.demo import MODEL, demo_spec
    from retrainer.core.spec import load_spec
    from retrainer.datasets import weather
    from retrainer.lifecycle.ingest import ingest_frame
    from retrainer.lifecycle.train import train
    from retrainer.plumbing.workspace import Workspace

    spec = demo_spec(folder)
    base = spec["models"].pop(MODEL)
    for family in FAMILIES:
        spec["models"][family] = {
            **base,
            "family": family,
            "params": {},
            "fallback_family": None,
            "training": {**base["training"], "threads": 1},
        }
    config = folder / "retrainer.yaml"
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    data = weather()
    years = data["date"].dt.year
    ws = Workspace(load_spec(config, environ={}))
    for family in FAMILIES:
        ingest_frame(ws, family, data[(years >= 1949) & (years <= last_year)])
        train(ws, family, deploy=True)
    return ws, data[years == last_year + 1]


def _pcts(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def _time(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def _us(value: float) -> str:
    us = value * 1e6
    return f"{us:,.0f} µs" if us < 10_000 else f"{us / 1000:,.1f} ms"


def run(quick: bool) -> str:
    from retrainer.datasets import WEATHER_FEATURES
    from retrainer.serving.compiled import choose_backend
    from retrainer.serving.model_holder import ModelRegistry
    from retrainer.serving.predict import score

    singles, batches = (200, 40) if quick else (2000, 300)
    rows_out: list[list[object]] = []
    notes: list[str] = []
    missing = 0
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-compiled-") as tmp:
        ws, live = _workspace(Path(tmp), 1950 if quick else 1958)
        try:
            registry = ModelRegistry(ws, alert=lambda a: None)
            for family in FAMILIES:
                registry.refresh(family)
                native = registry.served[family].champion
                assert native is not None, f"{family}: no champion loaded"
                onnx_spec = ws.model_spec(family).serving.model_copy(update={"backend": "onnx"})
                started = time.perf_counter()
                predictor, backend = choose_backend(native.predictor, onnx_spec)
                load_seconds = time.perf_counter() - started
                if backend.name != "onnx":
                    notes.append(f"- {family}: served native ({backend.reason})")
                    continue
                compiled = replace(native, predictor=predictor, backend=backend)
                X, _, _ = native.codec.encode(live[WEATHER_FEATURES].to_dict("records"))
                missing = int(np.isnan(X).any(axis=1).sum())
                timings: dict[tuple[str, int], list[float]] = {}
                load = max(load, os.getloadavg()[0])
                gc.disable()
                try:
                    for size, calls in ((1, singles), (100, batches)):
                        for i in range(calls):
                            start = (i * size) % (len(X) - size)
                            part = X[start : start + size]
                            for name, loaded in (("native", native), ("onnx", compiled)):
                                took = _time(score, loaded, part)
                                timings.setdefault((name, size), []).append(took)
                finally:
                    gc.enable()
                cells: list[object] = [family]
                for size in (1, 100):
                    n50, n99 = _pcts(timings[("native", size)])
                    c50, c99 = _pcts(timings[("onnx", size)])
                    cells += [
                        f"{_us(n50)} / {_us(n99)}",
                        f"{_us(c50)} / {_us(c99)}",
                        f"**{n50 / c50:.1f}×**",
                    ]
                compile_s = backend.compile_seconds or 0.0
                size_kb = len(predictor.compiled.onnx_bytes) / 1024  # type: ignore[attr-defined]
                cells += [
                    f"{backend.compile_seconds:.2f} s (+{load_seconds - compile_s:.2f} s)",
                    f"{backend.max_abs_diff:.1e}",
                    f"{native.predictor.version.size_bytes / 1024:,.0f} KB / {size_kb:,.0f} KB",
                ]
                rows_out.append(cells)
        finally:
            ws.close()
    headers = [
        "family",
        "1 row native p50 / p99",
        "1 row onnx p50 / p99",
        "speed-up",
        "100 rows native p50 / p99",
        "100 rows onnx p50 / p99",
        "speed-up",
        "compile (+ verify)",
        "max abs diff",
        "artifact native / onnx",
    ]
    intro = (
        "## Compiled inference (`serving.backend: onnx`)\n\n"
        "One model per tree family on weather "
        f"{'1949–1950' if quick else '1949–1958'} (the demo's spec, family defaults, one "
        "thread); latency of `serving.predict.score` (the server's call per request: predictor, "
        "calibration, labels, probability dicts) for one row and for 100 rows of the next "
        f"year, {singles:,} and {batches:,} calls, native and ONNX Runtime alternating call by "
        "call. Speed-up is native p50 / onnx p50. *Compile* is the conversion when a version "
        "loads, *verify* scoring the verification sample both ways; *max abs diff* is the "
        "largest difference on that sample (tolerance 1e-5). A random forest's rows with a "
        f"missing value are scored by scikit-learn ({missing} of the {len(live)} rows). Highest "
        f"1-minute load average as a family's timing began: {load:.1f} on {os.cpu_count()} "
        "CPUs (p99 is the machine's noise when that is high; p50 of alternating calls "
        "compares fairly).\n\n"
    )
    return intro + table(headers, rows_out) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"
