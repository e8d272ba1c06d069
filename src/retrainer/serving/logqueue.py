"""Prediction logging off the request path.

A request appends one item (its body text, entity ids and outputs, not yet encoded) to a
bounded in-memory queue: no I/O, no JSON. One background thread wakes every
``flush_seconds`` (or when ``batch_rows`` are waiting), scores shadow arms with the challenger,
turns items into prediction records (``store.predlog``: the request's input is stored once, as
the text it arrived in; per row only the output is encoded) and writes them with
``store.log_predictions`` in batches.

Batches go through ``writer.deliver``: a batch holding a record the store cannot take (a data
error) is split until that record is alone; only such a record is set aside, in the failed
spool with the reason (``failed``), and the rest of its batch is written. When the store cannot
write (any store error: unreachable, permission denied, read-only, full, locked) the batches
are appended to a local spool (``spool.Spool``, JSONL) and replayed, oldest first, once a
retry succeeds; retries back off from ``retry_seconds``, doubling up to
``max_retry_seconds``; nothing is dropped. A full queue drops the item and counts it
(``dropped``). ``close`` drains the queue: into the store, or into the spool if it is down.

>>> import tempfile
>>> class Store:
...     rows = []
...     def log_predictions(self, records):
...         if any("\\x00" in (r["entity_ids"][0] or "") for r in records):
...             raise ValueError("NUL in an entity id")
...         self.rows += records
...         return len(records)
>>> q = LogQueue(Store(), tempfile.mkdtemp())
>>> for i, eid in enumerate(["a", "b\\x00", "c"]):
...     _ = q.put(LogItem("m", f"r{i}", "1.0.0", "champion", '{"row": {}}', [eid],
...                       datetime(2024, 1, 1), [0]))
>>> q.flush(); (q.written, q.failed, q.spool.pending)
(2, 1, 0)
>>> q.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.ids import time_ordered_id
from ..store.predlog import PredictionRecord, record_rows, request_record
from .spool import Spool
from .writer import PredictionSink, Unwritten, data_error, deliver

if TYPE_CHECKING:
    from .model_holder import Loaded

log = logging.getLogger("retrainer.serving.log")


@dataclass(frozen=True)
class LogItem:
    """One request's predictions; with ``shadow`` the worker also scores ``rows`` (the parsed
    body) with that challenger and logs them as the shadow arm of the same input."""

    model: str
    request_id: str
    version: str
    arm: str
    body: str
    ids: list[str | None]
    created_at: datetime
    outputs: list[Any]
    probas: list[float | None] | None = None
    shadow: Loaded | None = None
    rows: list[Any] | None = None


class LogQueue:
    def __init__(
        self,
        store: PredictionSink,
        spool_dir: str | Path,
        *,
        flush_seconds: float = 0.2,
        batch_rows: int = 5000,
        max_rows: int = 200_000,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 8.0,
    ) -> None:
        self.store = store
        self.spool = Spool(spool_dir, record_rows)
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self.max_rows = max_rows
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self._retry_wait = 0.0
        self.written = self.dropped = self.shadow_errors = 0
        self.store_up = True
        self._items: deque[LogItem] = deque()
        self._rows = 0
        self._held: list[PredictionRecord] = []  # records neither the store nor the spool took
        self._held_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_retry = 0.0
        self._thread: threading.Thread | None = None

    @property
    def failed(self) -> int:
        """Rows set aside as bad (each record's own write refused for its data, or a damaged
        spool line), in the failed spool."""
        return self.spool.failed_total

    @property
    def depth(self) -> int:
        """Rows waiting in memory (queued, or held while neither the store nor the spool can
        take them)."""
        return self._rows + self._held_rows

    def put(self, item: LogItem) -> bool:
        """Queue one request's predictions; never blocks. False (counted) when full."""
        n = len(item.outputs)
        with self._lock:
            if self._rows + self._held_rows + n > self.max_rows:
                self.dropped += n
                return False
            self._items.append(item)
            self._rows += n
            wake = self._rows >= self.batch_rows
        if wake:
            self._wake.set()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop and flush everything queued (to the store, or the spool when it is down)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while self._items:
            self.flush()
        if self._held:
            self.flush()
        if self._held_rows:  # neither the store nor the spool could take them to the end
            log.error("prediction log: %d rows not stored at shutdown", self._held_rows)
        self.spool.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the logger die
                log.exception("prediction log flush failed")

    def flush(self) -> None:
        """Write what was queued when the call began, in batches of up to ``batch_rows``; then
        retry the spool when it is due. Items that arrive meanwhile wait for the next flush:
        chasing them would commit a few rows at a time while requests keep coming."""
        if self._held:  # what neither the store nor the spool could take, first
            held, self._held, self._held_rows = self._held, [], 0
            self._write(held)
        with self._lock:
            left = len(self._items)
        while left:
            batch: list[PredictionRecord] = []
            rows = 0
            while left and rows < self.batch_rows:
                with self._lock:
                    item = self._items.popleft()
                    self._rows -= len(item.outputs)
                left -= 1
                batch += self._records(item)
                rows += len(item.outputs)
            if batch:
                self._write(batch)
        if self.spool.pending and time.monotonic() >= self._next_retry:
            self._replay()

    def _records(self, item: LogItem) -> list[PredictionRecord]:
        key = time_ordered_id()
        served = request_record(
            item.model,
            item.request_id,
            item.version,
            item.arm,
            item.created_at,
            item.body,
            item.ids,
            item.outputs,
            item.probas,
            input_key=key,
        )
        if item.shadow is None or item.rows is None:
            return [served]
        from .predict import score  # the hot path module; imported lazily to avoid a cycle

        try:
            X, _, _ = item.shadow.codec.encode(item.rows)
            outputs, _, probas = score(item.shadow, X)
        except Exception as exc:
            self.shadow_errors += 1
            log.debug("shadow %s %s failed: %s", item.model, item.shadow.version, exc)
            return [served]
        shadow = request_record(
            item.model,
            item.request_id,
            item.shadow.version,
            "shadow",
            item.created_at,
            None,  # the served record stores the input
            item.ids,
            outputs,
            probas,
            input_key=key,
        )
        return [served, shadow]

    def _deliver(self, batch: list[PredictionRecord]) -> int:
        """Write a batch, setting aside only records proven bad (``writer.deliver``)."""
        return deliver(self.store.log_predictions, batch, self._park)

    def _park(self, record: PredictionRecord, why: str) -> None:
        self.spool.append([{**record, "refused": why}], failed=True)
        log.error(
            "prediction log: request %s (%d rows) set aside in %s, refused by the store: %s",
            record.get("request_id"),
            record_rows(record),
            self.spool.folder,
            why,
        )

    def _replay(self) -> bool:
        try:
            n = self.spool.replay(self._deliver, self.batch_rows, data_error)
        except Exception as exc:  # a store error (data errors were set aside record by record)
            self._down(exc)
            return False
        if n:
            log.info("prediction log: replayed %d spooled rows", n)
            self.written += n
        self._up()
        return True

    def _write(self, batch: list[PredictionRecord]) -> None:
        if self.spool.pending and (time.monotonic() < self._next_retry or not self._replay()):
            self._spool(batch)  # keep the order: behind what is already spooled
            return
        try:
            self.written += self._deliver(batch)
            self._up()
        except Unwritten as stop:  # a store error: keep what was not written, retry later
            self._down(stop.cause)
            self._spool(stop.records)

    def _spool(self, records: list[PredictionRecord]) -> None:
        """Append to the spool; while it cannot be written either (a full disk), hold the
        records in memory (counted in ``depth``, bounded by ``max_rows``) for the next flush."""
        try:
            self.spool.append(records)
        except OSError as exc:
            if not self._held:
                log.error("prediction log: cannot spool to %s either, holding rows in memory: %s",
                          self.spool.folder, exc)  # fmt: skip
            self._held += records
            self._held_rows += sum(record_rows(r) for r in records)

    def _up(self) -> None:
        self.store_up, self._retry_wait = True, 0.0

    def _down(self, exc: BaseException) -> None:
        if self.store_up:
            log.warning(
                "prediction log: store unreachable, spooling to %s: %s",
                self.spool.folder,
                getattr(exc, "message", exc),
            )
        self.store_up = False
        wait = min(self.max_retry_seconds, max(self.retry_seconds, 2 * self._retry_wait))
        self._retry_wait = wait
        self._next_retry = time.monotonic() + wait
