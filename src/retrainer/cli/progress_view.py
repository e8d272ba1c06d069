"""How the CLI shows a long command's progress, on stderr (stdout stays the command's output,
so ``--json`` stays one parseable document): a Rich bar per stage with counts and the time
left when stderr is a terminal, one line per finished stage with its count and elapsed time
otherwise (logs, CI), nothing with ``--quiet``.

>>> import io, sys
>>> sys.stderr = io.StringIO()
>>> with shown("ingest weather") as p:
...     p.stage("read", unit="rows"); p.advance(262_144); p.advance(10)
>>> sys.stderr.getvalue().rsplit(" ", 2)[0]
'ingest weather: read 262,154 rows (2 chunks)'
>>> sys.stderr = sys.__stderr__
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars

from ..core.progress import NO_PROGRESS, Progress, Stage, StageLog
from .app import err, log

QuietFlag = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Show no progress (no bar on a terminal, no stage lines in logs)."
    ),
]


class LineView(StageLog):
    """One line per finished stage on the stderr of the moment: ``train weather: fit 1.2 s``."""

    def __init__(self, label: str) -> None:
        super().__init__(self._write)
        self.label = label

    def stage(self, name: str, total: int | None = None, unit: str = "") -> None:
        log.debug("%s: %s", self.label, name)
        super().stage(name, total, unit)

    def _write(self, s: Stage) -> None:
        sys.stderr.write(f"{self.label}: {s.text()}\n")
        sys.stderr.flush()

    def close(self, ok: bool) -> None:
        self.done() if ok else self.abandon()


def _count(n: int, total: int | None, unit: str) -> str:
    shown = f"{n:,}" if total is None else f"{n:,}/{total:,}"
    return f"{shown} {unit}".rstrip()


class BarView:
    """A Rich bar per stage (kept on screen when done, with its time); the count, and the
    time left once the stage knows its total."""

    def __init__(self, label: str, console: Console) -> None:
        self.label = label
        self.bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID | None = None
        self.n, self.unit = 0, ""
        self.total: int | None = None
        self.started = False

    def stage(self, name: str, total: int | None = None, unit: str = "") -> None:
        log.debug("%s: %s", self.label, name)
        self.done()
        if not self.started:
            self.bars.start()
            self.started = True
        self.n, self.total, self.unit = 0, total, unit
        count = _count(0, total, unit) if unit or total else ""
        self.task = self.bars.add_task(f"{self.label}: {name}", total=total, count=count)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.n += n
            count = _count(self.n, self.total, self.unit) if self.unit or self.total else ""
            self.bars.update(self.task, advance=n, count=count)

    def done(self) -> None:
        if self.task is not None:  # a stage without a total shows full when it ends
            if self.total is None:
                self.bars.update(self.task, total=max(self.n, 1), completed=max(self.n, 1))
            self.bars.stop_task(self.task)
            self.task = None

    def close(self, ok: bool) -> None:
        self.done()
        if self.started:
            self.bars.stop()


@contextmanager
def shown(label: str, quiet: bool = False, console: Console | None = None) -> Iterator[Progress]:
    """The progress to pass to a lifecycle function for the block: a bar when ``console``
    (default: the CLI's stderr) is a terminal, lines otherwise, nothing when ``quiet``."""
    if quiet:
        yield NO_PROGRESS
        return
    console = console or err
    view: LineView | BarView = BarView(label, console) if console.is_terminal else LineView(label)
    ok = False
    try:
        yield view
        ok = True
    finally:
        view.close(ok)
