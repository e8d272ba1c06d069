"""Drift benchmark: retrainer against Evidently's DataDriftPreset and the scipy floor.

N reference rows against N current rows, 40 numeric and 10 categorical features, the same
seeded data for every method (generated in each worker, never stored). Each measurement runs
in its own process so peak RSS figures stay apart; wall time covers the check only, not the
data generation. Evidently runs from its own venv (``.bench-venv-evidently``, created here
when missing) because 0.7.23 needs ``pandas<3``.

Workers: ``python -m bench.drift {reference,retrainer,scipy,evidently} ROWS``. This module
must import without retrainer, which the Evidently venv lacks: workers import what they need.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .common import (
    REPO,
    WORK,
    check_same_data,
    emit,
    ensure_venv,
    megabytes,
    peak_rss_mb,
    rss_mb,
    run_worker,
    seconds,
    table,
    venv_versions,
)

SEED = 20261123
CHUNK = 100_000
NUMERIC = [f"num_{i:02d}" for i in range(40)]
CARDINALITY = (3, 5, 8, 12, 20, 30, 50, 4, 6, 10)
CATEGORICAL = [f"cat_{j}" for j in range(len(CARDINALITY))]
SHAPES = ("normal", "lognormal", "exponential", "uniform", "poisson", "gamma",
          "zero-inflated", "price")  # fmt: skip
# drifted by construction, and what changed
DRIFTED = {
    "num_00": "normal mean +0.5 sd",
    "num_01": "lognormal sigma 0.5 -> 0.9",
    "num_02": "exponential scale x1.5",
    "num_03": "uniform (0, 10) -> (2, 12)",
    "num_04": "poisson 5 -> 6",
    "num_05": "missing 2% -> 20%, values unchanged",
    "cat_0": "category proportions reversed",
    "cat_1": "unseen category on 15% of rows",
    "cat_3": "missing 1% -> 15%",
}
# significant at large N, far below any effect-size threshold: flagging these is a false alarm
SUBTLE = {
    "num_08": "normal mean +0.02 sd",
    "num_15": "prices x1.005",
    "cat_2": "3% of rows redrawn uniformly",
}
EVIDENTLY_VERSION = "0.7.23"
EVIDENTLY_REQUIRES = {"evidently": EVIDENTLY_VERSION, "pandas": "<3"}  # 0.7.23 needs pandas<3
EVIDENTLY_VENV = REPO / ".bench-venv-evidently"
DECILES = np.linspace(0.0, 1.0, 11)[1:-1]


# ---------------------------------------------------------------- data


def _numeric(i: int, rng: np.random.Generator, rows: int, current: bool) -> np.ndarray:
    name, shape = NUMERIC[i], SHAPES[i % len(SHAPES)]
    drift = current and name in DRIFTED
    subtle = current and name in SUBTLE
    if shape == "normal":
        x = rng.normal(0.5 if drift else 0.02 if subtle else 0.0, 1.0, rows)
    elif shape == "lognormal":
        x = rng.lognormal(0.0, 0.9 if drift else 0.5, rows)
    elif shape == "exponential":
        x = rng.exponential(1.5 if drift else 1.0, rows)
    elif shape == "uniform":
        x = rng.uniform(2.0, 12.0, rows) if drift else rng.uniform(0.0, 10.0, rows)
    elif shape == "poisson":
        x = rng.poisson(6.0 if drift else 5.0, rows).astype(np.float64)
    elif shape == "gamma":
        x = rng.gamma(2.0, 2.0, rows)
    elif shape == "zero-inflated":
        x = np.where(rng.random(rows) < 0.3, 0.0, rng.normal(1.0, 1.0, rows))
    else:  # prices with two decimals: many ties, decimal values
        x = np.round(rng.lognormal(3.0, 0.4, rows) * (1.005 if subtle else 1.0), 2)
    if i % 5 == 0:  # 2% missing in 8 features; num_05 jumps to 20% in the current window
        x[rng.random(rows) < (0.2 if drift and name == "num_05" else 0.02)] = np.nan
    return x


def _categorical(j: int, rng: np.random.Generator, rows: int, current: bool) -> np.ndarray:
    name, k = CATEGORICAL[j], CARDINALITY[j]
    labels = np.array([f"{name}_v{i}" for i in range(k)] + [f"{name}_new", None], dtype=object)
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()
    codes = rng.choice(k, rows, p=p[::-1] if current and name == "cat_0" else p)
    if current and name == "cat_1":
        codes[rng.random(rows) < 0.15] = k  # unseen
    if current and name == "cat_2":
        redraw = rng.random(rows) < 0.03
        codes[redraw] = rng.integers(0, k, int(redraw.sum()))
    if name == "cat_3":
        codes[rng.random(rows) < (0.15 if current else 0.01)] = k + 1  # missing
    return np.asarray(labels[codes])


def chunk_arrays(window: str, index: int, rows: int) -> dict[str, np.ndarray]:
    """Rows ``index*CHUNK ...`` of a window, deterministic in (SEED, window, index)."""
    rng = np.random.default_rng([SEED, 1 if window == "current" else 0, index])
    current = window == "current"
    out = {c: _numeric(i, rng, rows, current) for i, c in enumerate(NUMERIC)}
    out.update({c: _categorical(j, rng, rows, current) for j, c in enumerate(CATEGORICAL)})
    return out


def _hash(h: Any, arrays: dict[str, np.ndarray]) -> None:
    for c in NUMERIC:
        h.update(arrays[c].tobytes())
    for c in CATEGORICAL:
        h.update("\x00".join("" if v is None else v for v in arrays[c][::97]).encode())


def iter_chunks(window: str, n: int, h: Any) -> Iterator[pd.DataFrame]:
    for index, start in enumerate(range(0, n, CHUNK)):
        arrays = chunk_arrays(window, index, min(CHUNK, n - start))
        _hash(h, arrays)
        yield pd.DataFrame(arrays, copy=False)


def full_frame(window: str, n: int, h: Any) -> pd.DataFrame:
    """The whole window as one DataFrame, filled chunk by chunk (no concat copy)."""
    cols: dict[str, np.ndarray] = {c: np.empty(n) for c in NUMERIC}
    cols.update({c: np.empty(n, dtype=object) for c in CATEGORICAL})
    for index, start in enumerate(range(0, n, CHUNK)):
        arrays = chunk_arrays(window, index, min(CHUNK, n - start))
        _hash(h, arrays)
        for c, a in arrays.items():
            cols[c][start : start + len(a)] = a
    return pd.DataFrame(cols, copy=False)


# ---------------------------------------------------------------- workers


REPORTED = {"ks": "ks", "ks_p": "ks_p_value", "ks_bound": "ks_bound", "psi": "psi",
            "chi2": "chi2", "chi2_p": "chi2_p_value", "js": "jensen_shannon",
            "w": "wasserstein", "w_bound": "wasserstein_bound", "flag": "drift"}  # fmt: skip


def _measured(elapsed: float, data_mb: float, **extra: Any) -> dict[str, Any]:
    """A worker's result: wall time, peak RSS (unless given), RSS before timing, extras."""
    return {"seconds": elapsed, "peak_mb": extra.pop("peak_mb", None) or peak_rss_mb(),
            "data_mb": data_mb, **extra}  # fmt: skip


def _reference_path(n: int) -> Path:
    return WORK / f"drift-reference-{n}.json"


def worker_reference(n: int) -> dict[str, Any]:
    from retrainer.monitoring.reference import ReferenceStats

    h = hashlib.blake2b()
    df = full_frame("reference", n, h)
    data_mb = rss_mb()
    started = time.perf_counter()
    ref = ReferenceStats.from_frame(df, NUMERIC, CATEGORICAL, model_version="bench")
    elapsed = time.perf_counter() - started
    text = json.dumps(ref.to_dict(), allow_nan=False)
    WORK.mkdir(parents=True, exist_ok=True)
    _reference_path(n).write_text(text)
    return _measured(
        elapsed, data_mb, json_bytes=len(text), fingerprint={"reference": h.hexdigest()}
    )


def worker_retrainer(n: int) -> dict[str, Any]:
    from retrainer.core.spec_sections import Drift
    from retrainer.monitoring.drift import CurrentAccumulator, drift_report, summarize
    from retrainer.monitoring.reference import ReferenceStats

    h = hashlib.blake2b()
    data_mb = rss_mb()
    started = time.perf_counter()
    ref = ReferenceStats.from_dict(json.loads(_reference_path(n).read_text()))
    acc = CurrentAccumulator(ref)
    elapsed = time.perf_counter() - started
    for chunk in iter_chunks("current", n, h):  # generation is not timed
        started = time.perf_counter()
        acc.update(chunk)
        elapsed += time.perf_counter() - started
        del chunk
    started = time.perf_counter()
    thresholds = Drift()
    report = drift_report(ref, acc.result(), thresholds)
    summary = summarize(report, thresholds)
    elapsed += time.perf_counter() - started
    features = {f.feature: {k: getattr(f, a) for k, a in REPORTED.items()} for f in report}
    return _measured(
        elapsed,
        data_mb,
        features=features,
        summary=summary.message,
        fingerprint={"current": h.hexdigest()},
    )


def _np_psi(p: np.ndarray, q: np.ndarray) -> float:
    p = np.maximum(p / p.sum(), 1e-4)
    q = np.maximum(q / q.sum(), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def _finite(frame: pd.DataFrame, col: str) -> np.ndarray:
    x = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
    return x[np.isfinite(x)]


def _decile_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.unique(np.quantile(a, DECILES))
    k = len(edges) + 1
    return (
        np.bincount(np.searchsorted(edges, a, side="right"), minlength=k),
        np.bincount(np.searchsorted(edges, b, side="right"), minlength=k),
    )


def _category_table(ref: pd.DataFrame, cur: pd.DataFrame, col: str) -> np.ndarray:
    both = pd.concat([ref[col].value_counts(), cur[col].value_counts()], axis=1).fillna(0)
    return both.to_numpy(dtype=np.float64).T


def worker_scipy(n: int) -> dict[str, Any]:
    """The floor: ks_2samp per numeric, chi2_contingency per categorical, numpy PSI."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    h = hashlib.blake2b()
    ref = full_frame("reference", n, h)
    hc = hashlib.blake2b()
    cur = full_frame("current", n, hc)
    data_mb = rss_mb()
    started = time.perf_counter()
    features: dict[str, dict[str, Any]] = {}
    for col in NUMERIC:
        a, b = _finite(ref, col), _finite(cur, col)  # ks_2samp gives p = NaN on NaN input
        ks = stats.ks_2samp(a, b)
        p, q = _decile_counts(a, b)
        features[col] = {
            "ks": float(ks.statistic),
            "ks_p": float(ks.pvalue),
            "psi": _np_psi(p, q),
            "flag": bool(ks.pvalue < 0.01),
        }
    for col in CATEGORICAL:
        counts = _category_table(ref, cur, col)
        res = stats.chi2_contingency(counts)
        features[col] = {
            "chi2": float(res.statistic),
            "chi2_p": float(res.pvalue),
            "psi": _np_psi(counts[0], counts[1]),
            "flag": bool(res.pvalue < 0.01),
        }
    elapsed = time.perf_counter() - started
    peak = peak_rss_mb()
    for col in NUMERIC:  # not timed: statistics the floor skips, for the agreement table
        a, b = _finite(ref, col), _finite(cur, col)
        p, q = _decile_counts(a, b)
        features[col]["w"] = float(stats.wasserstein_distance(a, b))
        features[col]["js"] = float(jensenshannon(p, q, base=2))
    for col in CATEGORICAL:
        counts = _category_table(ref, cur, col)
        features[col]["js"] = float(jensenshannon(counts[0], counts[1], base=2))
    return _measured(
        elapsed,
        data_mb,
        peak_mb=peak,
        features=features,
        fingerprint={"reference": h.hexdigest(), "current": hc.hexdigest()},
    )


def worker_evidently(n: int) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report  # type: ignore[import-not-found]
    from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]

    h = hashlib.blake2b()
    ref = full_frame("reference", n, h)
    hc = hashlib.blake2b()
    cur = full_frame("current", n, hc)
    data_mb = rss_mb()
    started = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    result = snapshot.dict()
    elapsed = time.perf_counter() - started
    features: dict[str, dict[str, Any]] = {}
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        method, value, limit = str(config["method"]), float(metric["value"]), config["threshold"]
        flag = value < limit if "p_value" in method.lower() else value >= limit
        features[config["column"]] = {"method": method, "value": value, "flag": bool(flag)}
    return _measured(
        elapsed,
        data_mb,
        features=features,
        version=importlib.metadata.version("evidently"),
        pandas=pd.__version__,
        fingerprint={"reference": h.hexdigest(), "current": hc.hexdigest()},
    )


WORKERS = {
    "reference": worker_reference,
    "retrainer": worker_retrainer,
    "scipy": worker_scipy,
    "evidently": worker_evidently,
}


# ---------------------------------------------------------------- runner


def peers() -> dict[str, str]:
    found = venv_versions(EVIDENTLY_VENV)
    if "evidently" not in found:
        return {}
    return {"evidently": f"{found['evidently']} (own venv, pandas {found.get('pandas', '?')})"}


def _worst(
    ours: dict[str, Any], theirs: dict[str, Any], key: str, names: list[str]
) -> tuple[float, str]:
    """The largest |ours - theirs| over ``names`` and the feature where it is."""
    deltas = [
        (abs(ours[c][key] - theirs[c][key]), c)
        for c in names
        if ours[c].get(key) is not None and theirs[c].get(key) is not None
    ]
    return max(deltas) if deltas else (math.nan, "")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.0f}×" if a / b >= 10 else f"{a / b:.1f}×"


PRICES = [c for i, c in enumerate(NUMERIC) if SHAPES[i % len(SHAPES)] == "price"]


def _agreement(ours: dict[str, Any], scipy: dict[str, Any]) -> str:
    bound = max(ours[c]["ks_bound"] for c in NUMERIC)
    w_bound = max(ours[c]["w_bound"] for c in NUMERIC)
    smooth = [c for c in NUMERIC if c not in PRICES]
    same_side = sum((ours[c]["ks_p"] < 0.01) == (scipy[c]["ks_p"] < 0.01) for c in NUMERIC)
    rel = {c: abs(ours[c]["w"] - scipy[c]["w"]) / scipy[c]["w"] for c in NUMERIC if scipy[c]["w"]}
    w_rel = max(rel.values())
    specs = [
        ("KS D (40 numeric)", "ks", NUMERIC, f"sketch bound {bound:.1e}"),
        ("KS D, all but the 5 two-decimal price features", "ks", smooth,
         "prices: more distinct values than knots, ties between them"),
        ("KS p-value", "ks_p", NUMERIC,
         f"follows the D difference; p < 0.01 on the same side for {same_side}/40"),
        ("PSI, numeric (reference deciles)", "psi", NUMERIC, "numpy on the same deciles"),
        ("Jensen–Shannon, numeric (base 2)", "js", NUMERIC, "scipy `jensenshannon`"),
        ("Wasserstein", "w", NUMERIC,
         f"relative ≤ {w_rel:.1e} ({max(rel, key=rel.__getitem__)}); bound {w_bound:.1e}"),
        ("chi-square (10 categorical)", "chi2", CATEGORICAL, "two-sample contingency"),
        ("chi-square p-value", "chi2_p", CATEGORICAL, ""),
        ("PSI, categorical", "psi", CATEGORICAL, ""),
        ("Jensen–Shannon, categorical", "js", CATEGORICAL, ""),
    ]  # fmt: skip
    rows = []
    for label, key, names, note in specs:
        delta, where = _worst(ours, scipy, key, names)
        rows.append((label, f"{delta:.1e}", where if delta > 0 else "", note))
    return table(["statistic", "largest difference, retrainer vs scipy", "at", "note"], rows)


def _flags(res: dict[str, Any]) -> str:
    methods = [m for m in ("retrainer", "scipy", "evidently") if m in res]
    title = {"retrainer": "retrainer", "scipy": "scipy p < 0.01", "evidently": "Evidently"}
    shown = [
        c
        for c in NUMERIC + CATEGORICAL
        if c in DRIFTED
        or c in SUBTLE
        or any(res[m]["features"].get(c, {}).get("flag") for m in methods)
    ]
    rows = []
    for c in shown:
        truth = (
            f"drifted: {DRIFTED[c]}"
            if c in DRIFTED
            else (f"subtle: {SUBTLE[c]}" if c in SUBTLE else "unchanged")
        )
        rows.append(
            [
                c,
                truth,
                *(
                    "**yes**" if res[m]["features"].get(c, {}).get("flag") else "no"
                    for m in methods
                ),
            ]
        )
    hits = []
    for m in methods:
        flagged = {c for c, v in res[m]["features"].items() if v.get("flag")}
        missed = sorted(set(DRIFTED) - flagged)
        false = sorted(flagged - set(DRIFTED))
        hits.append(
            f"{title[m]}: {len(flagged & set(DRIFTED))}/{len(DRIFTED)} drifted found"
            + (f", missed {', '.join(missed)}" if missed else "")
            + f", {len(false)} false alarm(s)"
            + (f" ({', '.join(false)})" if false else "")
        )
    return (
        table(["feature", "constructed", *(title[m] for m in methods)], rows)
        + "\n\n"
        + "\n".join(f"- {h}" for h in hits)
    )


def run(quick: bool) -> str:
    sizes = [20_000] if quick else [100_000, 1_000_000]
    evidently = None if quick else ensure_venv(EVIDENTLY_VENV, EVIDENTLY_REQUIRES)
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        res: dict[str, Any] = {}
        for method in ("reference", "retrainer", "scipy"):
            print(f"   drift {method} n={n:,}", file=sys.stderr, flush=True)
            res[method] = run_worker(["bench.drift", method, str(n)])
        if evidently:
            print(f"   drift evidently n={n:,}", file=sys.stderr, flush=True)
            res["evidently"] = run_worker(["bench.drift", "evidently", str(n)], python=evidently)
        check_same_data(res)
        results[n] = res
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / f"drift-results{'-quick' if quick else ''}.json").write_text(json.dumps(results))
    return render(results, quick)


def render(results: dict[int, dict[str, Any]], quick: bool) -> str:
    import scipy

    largest = max(results)
    ev = results[largest].get("evidently")
    versions = f"scipy {scipy.__version__}, numpy {np.__version__}, pandas {pd.__version__}"
    if ev:
        versions += f"; Evidently {ev['version']} with pandas {ev['pandas']} in its own venv"
    out = [
        "## Data drift: retrainer vs Evidently DataDriftPreset vs the scipy floor\n",
        f"N reference rows against N current rows; {len(NUMERIC)} numeric features (normal, "
        "lognormal, exponential, uniform, Poisson counts, gamma, zero-inflated, two-decimal "
        f"prices; 2% missing in 8) and {len(CATEGORICAL)} categorical (3–50 categories, "
        f"Zipf-distributed), seed {SEED}, the same data for every method. {len(DRIFTED)} "
        f"features drift by construction; {len(SUBTLE)} change so little that a p-value "
        "alone flags them at large N. Versions: " + versions + ".\n",
        "- **retrainer**: reference statistics computed once from the training frame (the "
        "training-time cost, shown apart) and stored as JSON; the check loads them, reads the "
        f"current window in chunks of {CHUNK:,} rows, and reports PSI, KS, Jensen–Shannon and "
        "Wasserstein per numeric feature and chi-square, PSI and Jensen–Shannon per categorical "
        "one, with drift decided on effect size and significance (`Drift()` defaults).",
        "- **scipy floor**: both full frames in memory; `ks_2samp` ×40 (NaN removed), "
        "`chi2_contingency` ×10, numpy PSI on reference deciles; flags on p < 0.01.",
        "- **Evidently**: `Report([DataDriftPreset()])` on both full frames, default tests."
        if ev or not quick
        else "- Evidently is skipped in quick mode.",
        "",
        "Wall time covers the check only (data generation excluded); each method runs in its "
        "own process. Peak RSS is the whole process, its data included; *data* is the RSS "
        "before the timed part (retrainer streams its window, so it holds one chunk).\n",
    ]
    rows = []
    for n, res in results.items():
        ev_s = res.get("evidently", {}).get("seconds")
        ref, ours, sp = res["reference"], res["retrainer"], res["scipy"]
        rows.append(
            [
                "retrainer reference stats (training time, once)",
                f"{n:,}",
                seconds(ref["seconds"]),
                megabytes(ref["peak_mb"]),
                megabytes(ref["data_mb"]),
                "",
                "",
            ]
        )
        rows.append(
            [
                "**retrainer drift check**",
                f"{n:,}",
                f"**{seconds(ours['seconds'])}**",
                f"**{megabytes(ours['peak_mb'])}**",
                megabytes(ours["data_mb"]),
                _ratio(ev_s, ours["seconds"]) if ev_s else "–",
                _ratio(sp["seconds"], ours["seconds"]),
            ]
        )
        rows.append(
            [
                "scipy floor",
                f"{n:,}",
                seconds(sp["seconds"]),
                megabytes(sp["peak_mb"]),
                megabytes(sp["data_mb"]),
                "",
                "1×",
            ]
        )
        if "evidently" in res:
            e = res["evidently"]
            rows.append(
                [
                    "Evidently DataDriftPreset",
                    f"{n:,}",
                    seconds(e["seconds"]),
                    megabytes(e["peak_mb"]),
                    megabytes(e["data_mb"]),
                    "1×",
                    "",
                ]
            )
    out.append(
        table(
            [
                "method",
                "rows",
                "wall time",
                "peak RSS",
                "data",
                "faster than Evidently",
                "faster than scipy",
            ],
            rows,
        )
    )
    big = results[largest]
    ours = big["retrainer"]
    out.append(
        f"\nReference statistics at {largest:,} rows: "
        f"{big['reference']['json_bytes'] / 1e6:.1f} MB of JSON. "
        f"retrainer's verdict: {ours['summary']}\n"
    )
    targets = [
        f"under the scipy floor: {seconds(ours['seconds'])} vs "
        f"{seconds(big['scipy']['seconds'])} — "
        + ("met" if ours["seconds"] < big["scipy"]["seconds"] else "**missed**")
    ]
    if ev:
        speed = ev["seconds"] / ours["seconds"]
        memory = ours["peak_mb"] / ev["peak_mb"]
        targets.insert(
            0,
            f"≥ 50× faster than Evidently: {speed:.0f}× — "
            + ("met" if speed >= 50 else "**missed**"),
        )
        targets.append(
            f"peak memory ≤ 1/3 of Evidently's: {megabytes(ours['peak_mb'])} vs "
            f"{megabytes(ev['peak_mb'])} (1/{1 / memory:.0f}) — "
            + ("met" if memory <= 1 / 3 else "**missed**")
        )
    out.append(f"Targets at {largest:,} rows:\n\n" + "\n".join(f"- {t}" for t in targets) + "\n")
    out.append(f"### Agreement with scipy at {largest:,} rows\n")
    out.append(_agreement(ours["features"], big["scipy"]["features"]) + "\n")
    out.append(f"### Features flagged at {largest:,} rows\n")
    out.append(_flags(big))
    if quick:
        out.append("\n_Quick mode: small N, no Evidently. Run without `--quick` for the table._")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drift", description="one worker")
    parser.add_argument("worker", choices=sorted(WORKERS))
    parser.add_argument("rows", type=int)
    args = parser.parse_args(argv)
    emit(WORKERS[args.worker](args.rows))


if __name__ == "__main__":
    main()
