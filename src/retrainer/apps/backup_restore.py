"""Restore a backup into an empty store: all of it, or nothing.

1. :func:`~.backup_read.scan` checks the archive without writing anything: member names and
   types, sizes against the limits, every member's hash against the manifest, the manifest's
   signature when ``RETRAINER_SIGNING_KEY`` is set.
2. One write transaction on the (empty) store: each table streams line by line, each row
   checked (:mod:`.backup_rows`) and inserted in chunks; the store's keys catch a row given
   twice (the line is found under a savepoint). Then the counts must match the manifest,
   every kept version must have its artifact (and with a key, a valid signature on it), and
   the segments and batch inputs get their Parquet bytes.
3. Only then are the artifacts written (each complete under its content address), and the
   transaction commits.

Any error rolls the transaction back and removes the artifact files this restore created, so
a refused backup leaves the store and the artifact folder as they were. A crash (SIGKILL)
before the commit leaves the store empty, as it was, and at most unreferenced artifact files
that a second restore writes again; after the commit the store is complete.
"""

from __future__ import annotations

import dataclasses
import hmac as hmac_lib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.exc import DataError
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from ..core.errors import ConflictError, InputError
from ..plumbing.workspace import Workspace
from ..store import objects
from ..store import schema as t
from ..store.segments import json_column
from .backup_format import LEGACY, MANIFEST, TABLES, BackupResult, RestoreLimits
from .backup_read import NOTHING, Scanned, lines, members, scan
from .backup_rows import parse_legacy, parse_row

_BATCH_ROWS = 1000
_BATCH_BYTES = 16 << 20
_LEGACY_ROWS = 50_000  # training rows / actuals of formats 1-2 converted per chunk
_BY_NAME = {tb.name: tb for tb in TABLES}


def restore(
    ws: Workspace, path: str | Path, *, limits: RestoreLimits | None = None
) -> BackupResult:
    """Restore a backup into an empty store; everything is verified before it is kept (see
    the module). ``limits`` default to :meth:`RestoreLimits.from_env`. A URL
    (``s3://bucket/x.tar.gz``) is downloaded to a local temporary file first."""
    if objects.is_url(path):
        url = str(path)
        with ws.store.read() as conn:
            _require_empty(ws, conn)  # before downloading it
        with objects.downloaded(url, what="backup") as local:
            result = _restore(ws, local, limits)
        return dataclasses.replace(result, path=objects.shown(url))
    return _restore(ws, Path(path), limits)


def _restore(ws: Workspace, p: Path, limits: RestoreLimits | None) -> BackupResult:
    if not p.is_file():
        raise InputError(
            f"Backup file {str(p)!r} does not exist{' (it is a folder)' if p.is_dir() else ''}."
        )
    limits = limits or RestoreLimits.from_env()
    with ws.store.read() as conn:
        _require_empty(ws, conn)
    if ws.artifacts.bucketed:  # a bucket that cannot be written fails before any reading
        ws.artifacts.check_writable()  # (a local probe would make the folder: left as was)
    scanned = scan(p, limits, ws.artifacts.signing_key)
    created: list[str] = []
    try:
        with ws.store.write() as conn:
            _require_empty(ws, conn)
            loader = _Loader(ws, conn, scanned, limits)
            loader.load_rows()
            loader.check()
            loader.load_members(created)
            _after_rows(conn, loader)
            counts = {k: v for k, v in loader.counts.items() if k not in LEGACY}
            counts.update(ws.store.row_counts(conn))
    except BaseException:
        for uri in created:
            ws.artifacts.delete(uri)
        raise
    return BackupResult(str(p), counts, loader.artifacts)


def _require_empty(ws: Workspace, conn: Connection) -> None:
    """ConflictError unless every table a backup fills is empty (a row left there would
    collide with a restored one)."""
    for table in TABLES:
        if conn.execute(select(func.count()).select_from(table)).scalar():
            what = "models" if table is t.models else f"rows in {table.name}"
            raise ConflictError(
                f"The store {ws.store!r} already holds {what}; restore only into an empty "
                "store. Point `store:` (or RETRAINER_STORE) at a new database and retry."
            )


def _after_rows(conn: Connection, loader: _Loader) -> None:
    if conn.dialect.name == "postgresql":  # keep sequences ahead of restored ids
        for table in TABLES:
            if "id" in table.c and loader.counts.get(table.name):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT MAX(id) FROM {table.name}))"
                )
    loader.ws.store.rebuild_keys(conn)


class _Loader:
    """The rows and members of one scanned backup, checked and written in one transaction."""

    def __init__(
        self, ws: Workspace, conn: Connection, scanned: Scanned, limits: RestoreLimits
    ) -> None:
        self.ws, self.conn, self.scanned, self.limits = ws, conn, scanned, limits
        self.fmt = scanned.format
        self.where = scanned.where
        self.counts: dict[str, int] = {tb.name: 0 for tb in TABLES}
        self.segment_rows = {"rows": 0, "actuals": 0}
        self.live: dict[str, tuple[str, str, str | None, str]] = {}  # member -> version
        self.blobs = {n for n, m in scanned.members.items() if m.kind in ("segment", "input")}
        self.artifacts = 0

    # -- pass 2: rows --------------------------------------------------------------------
    def load_rows(self) -> None:
        for member, fh in members(self.scanned):
            if member.kind != "table":
                continue
            name = member.name
            table = name.removeprefix("tables/").removesuffix(".jsonl")
            numbered = lines(fh, name, limit=self.limits.line_bytes, where=self.where)
            if table in LEGACY:
                self._legacy(table, name, numbered)
            else:
                self._table(_BY_NAME[table], name, numbered)

    def _table(self, table: Table, member: str, numbered: Iterator[tuple[int, bytes]]) -> None:
        batch: list[tuple[int, dict[str, Any]]] = []
        size = n = 0
        for n, line in numbered:
            where = f"{self.where}: {member} line {n}"
            row = parse_row(table, line, where=where, format_1=self.fmt < 2)
            self._note(table, row, where)
            batch.append((n, row))
            size += len(line)
            if len(batch) >= _BATCH_ROWS or size >= _BATCH_BYTES:
                self._insert(table, member, batch)
                batch, size = [], 0
        self._insert(table, member, batch)
        self.counts[table.name] = n

    def _note(self, table: Table, row: dict[str, Any], where: str) -> None:
        """What the later checks need from a row, and the columns it gets here."""
        if table is t.versions:
            row["artifact_uri"] = self.ws.artifacts.uri_for(row["model"], row["sha256"])
            if row["status"] != "deleted":
                member = f"artifacts/{row['model']}/{row['sha256']}.rtm"
                self.live[member] = (row["model"], row["version"], row["hmac"], row["sha256"])
        elif table is t.segments:
            if f"segments/{row['id']}.parquet" not in self.scanned.members:
                raise InputError(
                    f"{where}: segment {row['id']} has no member segments/{row['id']}.parquet "
                    f"holding its rows. {NOTHING}"
                )
            row["data"] = b""  # its Parquet bytes come with its member (pass 3)
            self.blobs.discard(f"segments/{row['id']}.parquet")
            if row["kind"] in self.segment_rows:
                self.segment_rows[row["kind"]] += row["n_rows"]
        elif table is t.prediction_inputs:
            row["data"] = None
            self.blobs.discard(f"inputs/{row['key']}.parquet")
        elif table is t.predictions and self.fmt < 2:
            features = row.pop("features")
            self.counts["prediction_inputs"] += 1
            self._insert(
                t.prediction_inputs,
                "tables/predictions.jsonl",
                [
                    (
                        0,
                        {
                            "key": row["input_key"],
                            "model": row["model"],
                            "created_at": row["created_at"],
                            "body": '{"row": ' + features + "}",
                            "data": None,
                        },
                    )
                ],
            )

    def _insert(self, table: Table, member: str, batch: list[tuple[int, dict[str, Any]]]) -> None:
        """Insert a chunk under a savepoint; when the store refuses it, find the line."""
        if not batch:
            return
        try:
            with self.conn.begin_nested():
                self.conn.execute(table.insert(), [row for _, row in batch])
            return
        except (DbIntegrityError, DataError):
            pass
        for n, row in batch:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(table.insert(), [row])
            except (DbIntegrityError, DataError) as exc:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                keys = ", ".join(f"{c.name}={row.get(c.name)!r}" for c in table.primary_key)
                what = (
                    f"repeats a row given before ({keys})"
                    if isinstance(exc, DbIntegrityError)
                    else "holds a value the store refuses"
                )
                line = f"line {n}" if n else "(a row made from it)"
                raise InputError(
                    f"{self.where}: {member} {line} {what}: {reason}. {NOTHING}"
                ) from None
        raise AssertionError("a chunk the store refused was stored row by row")

    def _legacy(self, name: str, member: str, numbered: Iterator[tuple[int, bytes]]) -> None:
        if self.fmt >= 3:
            raise InputError(
                f"{self.where}: member {member} belongs to formats 1 and 2, but the manifest "
                f"says format {self.fmt}. {NOTHING}"
            )
        chunk: list[dict[str, Any]] = []
        n = 0
        for n, line in numbered:
            chunk.append(parse_legacy(name, line, where=f"{self.where}: {member} line {n}"))
            if len(chunk) >= _LEGACY_ROWS:
                _store_legacy(self.ws, self.conn, name, chunk)
                chunk = []
        _store_legacy(self.ws, self.conn, name, chunk)
        self.counts[name] = n

    # -- checks between the passes ------------------------------------------------------
    def check(self) -> None:
        for member in sorted(self.blobs):
            table = "segments" if member.startswith("segments/") else "prediction_inputs"
            raise InputError(
                f"{self.where}: member {member} belongs to no row of tables/{table}.jsonl. "
                f"{NOTHING}"
            )
        if self.fmt >= 3:
            self.counts["training_rows"] = self.segment_rows["rows"]
            self.counts["actuals"] = self.segment_rows["actuals"]
        for table, said in self.scanned.manifest.get("rows", {}).items():
            if table in _BY_NAME or table in LEGACY:
                got = self.counts.get(table, 0)
                if got != said:
                    raise InputError(
                        f"{self.where}: {MANIFEST} says {said:,} rows of {table}, the backup "
                        f"holds {got:,} (member tables/{table}.jsonl"
                        f"{' and its segments' if table in LEGACY and self.fmt >= 3 else ''}). "
                        f"{NOTHING}"
                    )
        key = self.ws.artifacts.signing_key
        for member, (model, version, mac, sha) in self.live.items():
            what = f"the artifact of {model} {version} (member {member})"
            found = self.scanned.members.get(member)
            if found is None or found.sha256 != sha:
                raise InputError(
                    f"{self.where}: {what} is missing or does not match the version's SHA-256. "
                    f"{NOTHING}"
                )
            if key is None:
                continue
            if mac is None:
                raise InputError(
                    f"{self.where}: {what} is unsigned (its version row has no hmac), and "
                    "RETRAINER_SIGNING_KEY is set: with a key, every artifact must carry a "
                    "valid signature. If you trust this backup, restore it with the key unset, "
                    f"then sign its versions once with `retrainer sign MODEL`. {NOTHING}"
                )
            if not (mac.isascii() and hmac_lib.compare_digest(found.hmac or "", mac)):
                raise InputError(
                    f"{self.where}: {what} fails its HMAC check under RETRAINER_SIGNING_KEY: "
                    f"it was changed, or signed with another key. {NOTHING}"
                )

    # -- pass 3: Parquet bytes and artifacts ----------------------------------------------
    def load_members(self, created: list[str]) -> None:
        for member, fh in members(self.scanned):
            name = member.name
            if member.kind == "segment":
                seg = int(name.removeprefix("segments/").removesuffix(".parquet"))
                self._blob(t.segments.c.id, seg, fh.verified(), name)
            elif member.kind == "input":
                key = name.removeprefix("inputs/").removesuffix(".parquet")
                self._blob(t.prediction_inputs.c.key, key, fh.verified(), name)
            elif member.kind == "artifact" and name in self.live:
                model, sha = self.live[name][0], self.live[name][3]
                uri = self.ws.artifacts.uri_for(model, sha)
                existed = self.ws.artifacts.exists(uri)
                stored = self.ws.artifacts.put(model, fh.verified())
                if not existed:
                    created.append(stored.uri)
                self.artifacts += 1

    def _blob(self, column: Any, value: Any, data: bytes, member: str) -> None:
        table = column.table
        done = self.conn.execute(update(table).where(column == value).values(data=data))
        if done.rowcount != 1:
            raise InputError(
                f"{self.where}: member {member} belongs to no row of tables/{table.name}.jsonl. "
                f"{NOTHING}"
            )


def _store_legacy(ws: Workspace, conn: Connection, name: str, rows: list[dict[str, Any]]) -> None:
    """Training rows or actuals of a format 1 or 2 backup, stored as segments."""
    import pandas as pd

    from ..lifecycle.ingest import label_column

    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for model, part in by_model.items():
        times = pd.to_datetime([r.get("event_time") for r in part]).astype("datetime64[us]")
        ids = [r["entity_id"] for r in part]
        if name == "training_rows":
            feats = pd.DataFrame.from_records([r["features"] for r in part])
            frame = pd.DataFrame(
                {
                    "entity_id": ids,
                    "event_time": times,
                    "target": label_column(pd.Series([r["target"] for r in part], dtype=object)),
                }
            )
            for col in feats.columns:
                frame[col] = json_column(feats[col])
            ws.store.append_rows(conn, model, frame, "restore")
        else:
            frame = pd.DataFrame(
                {
                    "entity_id": ids,
                    "event_time": times,
                    "value": label_column(pd.Series([r["value"] for r in part], dtype=object)),
                    "prediction_id": pd.array(
                        [r.get("prediction_id") for r in part], dtype="Int64"
                    ),
                }
            )
            ws.store.append_actuals(conn, model, frame, "restore")
