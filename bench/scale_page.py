"""The page of the scale benchmark: the table of steps beside their floors, the store's size,
start-up, and the targets (see ``bench.scale`` for what is measured)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from .common import megabytes, seconds, table
from .scale_floor import BATCH_ROWS, CPUS
from .scale_run import (
    EARLY_STOP,
    FLOORS,
    HOLDOUT,
    MIB,
    MODEL,
    STEPS,
    TRAIN_TARGET,
    Run,
    SizeResult,
    _done,
)


def size_label(n: int) -> str:
    """A row count as the page writes it.

    >>> size_label(100_000), size_label(1_000_000), size_label(2_500)
    ('100k', '1M', '2.5k')
    """
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def _time(run: Run | str | None) -> str:
    if run is None:
        return "—"
    if isinstance(run, str):
        return run
    return seconds(run.wall) if run.wall is not None else f"did not finish in {run.timeout:g} s"


def _rss(run: Run | str | None) -> str:
    return megabytes(run.rss_mb) if isinstance(run, Run) and run.finished else "—"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _x(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}×"


def _wall(run: Run | str | None) -> float | None:
    return run.wall if isinstance(run, Run) else None


def _peak(run: Run | str | None) -> float | None:
    return run.rss_mb if isinstance(run, Run) and run.finished else None


def _median(runs: list[Run], key: Callable[[Run], float | None]) -> float | None:
    values = [v for v in map(key, runs) if v is not None]
    return statistics.median(values) if values else None


@dataclass
class Targets:
    lines: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    def add(self, what: str, misses: list[str], unknown: list[str] | None = None) -> None:
        self.lines.append((what, misses, unknown or []))

    def render(self) -> list[str]:
        out = []
        for what, misses, unknown in self.lines:
            verdict = "**not met**: " + "; ".join(misses) if misses else "met"
            if unknown and not misses:
                verdict = "not measured: " + "; ".join(unknown)
            elif unknown:
                verdict += "; not measured: " + "; ".join(unknown)
            out.append(f"- {what}: {verdict}")
        return out


def render(
    sizes: list[SizeResult],
    startups: dict[str, list[Run]],
    quick: bool,
    loads: tuple[float, float],
) -> str:
    small, big = sizes[0], sizes[-1]
    growth = big.n / small.n
    max_growth = 1.2 * growth  # 12 for 100k -> 1M
    ratio_head = f"time {size_label(big.n)} ÷ {size_label(small.n)}"
    rows, targets = [], Targets()
    over_floor, over_rss, over_growth = [], [], []
    floor_unmeasured, growth_unmeasured = [], []
    for step in STEPS:
        for res in sizes:
            run, fl = res.steps.get(step), res.floors.get(step)
            t, r = _ratio(_wall(run), _wall(fl)), _ratio(_peak(run), _peak(fl))
            grow = _ratio(_wall(run), _wall(small.steps.get(step))) if res is big else None
            limit = TRAIN_TARGET if step == "train" else 2.0
            where = f"{step} {size_label(res.n)}"
            unfinished = isinstance(run, Run) and not run.finished
            if step in FLOORS and res.with_floors and res is big:  # the targets are at 1M
                if t is not None and t > limit:
                    over_floor.append(f"{where} {t:.2f}×")
                elif unfinished and _done(fl):
                    over_floor.append(f"{where} did not finish")
                elif t is None:
                    floor_unmeasured.append(where)
                if r is not None and r > 2:
                    over_rss.append(f"{where} {r:.2f}×")
            if res is big:
                if grow is not None and grow > max_growth:
                    over_growth.append(f"{step} {grow:.1f}")
                elif unfinished and _done(small.steps.get(step)):
                    over_growth.append(f"{step} did not finish")
                elif grow is None:
                    growth_unmeasured.append(step)
            floor_cell = "as today"
            if step in FLOORS:
                floor_cell = _time(fl) if res.with_floors else "not run (quick mode)"
            rows.append(
                [
                    step if res is small else "",
                    size_label(res.n),
                    _time(run),
                    _rss(run),
                    floor_cell,
                    _rss(fl) if step in FLOORS else "—",
                    f"**{_x(t)}**" if t is not None else "—",
                    _x(r),
                    _x(grow).replace("×", "") if res is big else "",
                ]
            )
    targets.add(
        f"every step ≤ 2× its floor at {size_label(big.n)} (train ≤ {TRAIN_TARGET}×)",
        over_floor,
        floor_unmeasured,
    )
    targets.add(
        f"{ratio_head} ≤ {max_growth:g} for every step"
        + ("" if big.n == 10 * small.n else f" (12 scaled to this {growth:g}× size step)"),
        over_growth,
        growth_unmeasured,
    )
    targets.add(f"peak RSS ≤ 2× the floor's at {size_label(big.n)}", over_rss, floor_unmeasured)

    store_rows, store_miss, store_unknown = [], [], []
    for res in sizes:
        for when, key, parquet, rows_text in (
            ("after ingest", "store_ingest", res.facts.get("rows.parquet", 0),
             f"{res.n:,} training rows"),
            ("after feedback", "store",
             res.facts.get("rows.parquet", 0) + res.facts.get("floor-feedback.parquet", 0),
             f"{res.n:,} ingested + {res.n:,} fed back, with {res.n:,} predictions logged"),
        ):  # fmt: skip
            files = res.facts.get(key, {})
            if not files:
                continue
            store = sum(files.values())
            ratio = _ratio(store, parquet)
            store_rows.append(
                [
                    size_label(res.n),
                    when,
                    rows_text,
                    megabytes(store / MIB),
                    ", ".join(f"{k} {megabytes(v / MIB)}" for k, v in files.items()),
                    megabytes(parquet / MIB) if parquet else "not written (quick mode)",
                    _x(ratio),
                ]
            )
            if res is big and key == "store_ingest":
                if ratio is None:
                    store_unknown.append("no Parquet file to compare (quick mode)")
                elif ratio > 2:
                    store_miss.append(f"{ratio:.1f}× at {size_label(res.n)}")
    targets.add(
        f"store size for {size_label(big.n)} training rows ≤ 2× the Parquet file of the rows",
        store_miss,
        store_unknown,
    )

    start_rows = []
    limits = {"retrainer --help": 0.5, f"retrainer status {MODEL}": 1.0}
    for name, runs in startups.items():
        limit = next((v for k, v in limits.items() if name.startswith(k)), None)
        med = _median(runs, lambda r: r.wall)
        start_rows.append(
            [
                _code(name),
                str(len(runs)),
                seconds(med) if med is not None else "—",
                seconds(min(r.wall for r in runs if r.wall is not None)) if med else "—",
                seconds(max(r.wall for r in runs if r.wall is not None)) if med else "—",
                megabytes(_median(runs, lambda r: r.rss_mb) or 0),
            ]
        )
        if limit is not None:
            miss = [] if med is not None and med < limit else [f"median {seconds(med or 0)}"]
            targets.add(f"{_code(name)} < {limit:g} s", miss)

    command = "python -m bench --only scale" + (" --quick" if quick else "")
    recipe_notes = _recipe_notes(sizes)
    load_before, load_after = loads
    labels = " and ".join(f"{r.n:,}" for r in sizes)
    return "\n".join(
        [
            "## Scale: the data path through the CLI, each step beside its floor",
            "",
            "```",
            command,
            "```",
            "",
            f"One model at {labels} rows: 20 numeric features (1% missing in four), 2 "
            "categorical (4 and 30 levels), a 0/1 target drawn from a logistic function of "
            "four features and both categories, string ids, event times over 60 days "
            "(seeded, generated once into `bench/.data`). Per size a fresh workspace (SQLite "
            "store, lightgbm family, defaults otherwise) and one `retrainer` process per "
            "step, with `--json`, whose output is checked (ingest inserted N, train deployed, "
            "predict scored N, feedback matched N, monitor saw N labelled predictions, drift "
            "reported every feature, maintain decided):",
            "",
            "1. `retrainer ingest scale rows.csv` — N labelled rows, days 1–60",
            "2. `retrainer train scale --deploy`",
            "3. `retrainer predict scale score.csv --out scored.csv` — N new rows of day 61, "
            "logged",
            "4. `retrainer feedback scale actuals.csv` — the labels of those N rows",
            "5. `retrainer monitor scale`, 6. `retrainer drift scale`, "
            "7. `retrainer maintain scale --dry-run`",
            "",
            "Wall time from spawn to exit and the process's own peak RSS (`os.wait4`), "
            "interpreter start and imports included. Each floor is one `python -m "
            "bench.scale_floor` process timed the same way"
            + (
                " (quick mode: at the larger size only, and every process with "
                "`OMP_WAIT_POLICY=PASSIVE` so that a busy machine cannot stall LightGBM's "
                "threads)"
                if quick
                else ""
            )
            + ":",
            "",
            "- ingest: `pandas.read_csv(engine='pyarrow', dtype_backend='pyarrow')` of rows.csv "
            "(times parsed by the reader) and `to_parquet` of the same rows; no validation, no "
            "de-duplication.",
            "- train: `read_parquet` of a Parquet copy of the rows (the ingest floor's, made "
            "outside this timing), the float matrix retrainer's families use (categories as "
            "codes of the sorted levels), then the LightGBM fits `fit_family` makes with the "
            f"version's parameters (`retrainer versions --detail --json`) {_thread_note()}: "
            f"the evaluation fit on the oldest {1 - HOLDOUT:.0%} with early stopping on its "
            f"newest {EARLY_STOP:.0%} and a predict of the holdout; the settling fit, the same "
            "on every row (skipped, as in retrainer, when the first hit its cap); the final fit "
            "on every row with the rounds of the trained artifact (trees in its model.txt).",
            "- predict: `read_csv` (pyarrow engine) of score.csv, the booster loaded from the "
            "artifact's model.txt, `booster.predict` on the feature frame (categories as pandas "
            f"category dtype with the training levels) on {_predict_threads(sizes)}, and the "
            "input with prediction and class probabilities written by `pyarrow.csv.write_csv`.",
            "- feedback: `read_csv` (pyarrow engine) of actuals.csv and of retrainer's "
            "scored.csv, a pandas merge on the id, the joined rows (id, time, label, features) "
            "written to Parquet.",
            "- monitor, drift, maintain: no floor; as today.",
            "",
            *recipe_notes,
            table(
                [
                    "step",
                    "rows",
                    "wall time",
                    "peak RSS",
                    "floor wall time",
                    "floor peak RSS",
                    "time ÷ floor",
                    "RSS ÷ floor",
                    ratio_head,
                ],
                rows,
            ),
            "",
            "### Store size",
            "",
            "Every file of the workspace but the spec and the artifacts folder (the SQLite "
            "database, its WAL and shared-memory index), measured right after ingest (the "
            "training rows alone: the target) and right after feedback (the training rows, the "
            "actuals, and the prediction log with its logged inputs), beside the Parquet files of "
            "the same rows (the ingest and feedback floors' outputs).",
            "",
            table(
                ["size", "when", "rows", "store", "files", "Parquet", "store ÷ Parquet"],
                store_rows,
            ),
            "",
            "### Start-up",
            "",
            f"{len(next(iter(startups.values())))} runs of each command in a row, one "
            "process each, timed like the steps; `retrainer status` in a size's workspace after "
            "its steps" + (" (quick mode: the larger size only)" if quick else "") + ". Median, "
            "fastest and slowest wall time, median peak RSS; `python -c pass` for scale.",
            "",
            table(["command", "runs", "median", "fastest", "slowest", "peak RSS"], start_rows),
            "",
            "### Targets",
            "",
            *targets.render(),
            "",
            f"Load average (1 min) on this shared {os.cpu_count()}-core machine: "
            f"{load_before:.1f} before, {load_after:.1f} after."
            + ("" if quick else _load_note(loads)),
        ]
    )


def _load_note(loads: tuple[float, float]) -> str:
    if max(loads) <= (os.cpu_count() or 1):
        return ""
    return (
        f" With more runnable threads than cores, LightGBM's {CPUS} OpenMP threads (train, "
        "predict and their floors) spend CPU spin-waiting and their times swing widely from "
        "run to run."
    )


def _code(name: str) -> str:
    """A start-up row's name with its command as code.

    >>> _code("retrainer status m (1M workspace)")
    '`retrainer status m` (1M workspace)'
    """
    command, _, rest = name.partition(" (")
    return f"`{command}`" + (f" ({rest}" if rest else "")


def _thread_note() -> str:
    return f"on {CPUS} threads (retrainer's default: the CPUs the process may use)"


def _predict_threads(sizes: list[SizeResult]) -> str:
    """The predict floor's threads per size, e.g. "1 thread at 2k, 2 threads at 1M (...)"."""
    parts = []
    for res in sizes:
        k = 1 if res.n < BATCH_ROWS else CPUS
        parts.append(f"{k} thread{'s' if k > 1 else ''} at {size_label(res.n)}")
    return (
        ", ".join(parts) + f" (retrainer's default: one thread below {BATCH_ROWS:,} rows, the "
        "training threads from there)"
    )


def _recipe_notes(sizes: list[SizeResult]) -> list[str]:
    notes = []
    for res in sizes:
        recipe, fit = res.facts.get("recipe"), res.facts.get("floor_train")
        if recipe is None or fit is None:
            continue
        settle = fit["settle_rounds"]
        same = "the same" if fit["own_estimate"] == recipe["rounds"] else "**not** the same"
        text = (
            f"{size_label(res.n)}: version {recipe['version']} has {recipe['rounds']} rounds; "
            f"the floor made {fit['fits']} fits (evaluation stopped at {fit['eval_rounds']}"
            + (f", settling at {settle}" if settle is not None else "")
            + f"), whose estimate {fit['own_estimate']} is {same}"
        )
        check = res.facts.get("predict_check")
        if check is not None:
            text += (
                f"; the predict floor's probabilities differ from retrainer's by at most "
                f"{check['max_abs_diff']:.1e} (labels agree on {check['agreement']:.2%})"
            )
        notes.append(f"- {text}.")
    return [*notes, ""] if notes else []
