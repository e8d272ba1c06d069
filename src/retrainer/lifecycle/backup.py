"""Backup and restore of the whole workspace (store rows + artifacts), verified both ways.

A backup is one ``.tar.gz``: ``manifest.json`` (format, time, row counts, the SHA-256 of
every member), ``tables/<table>.jsonl`` (SQL rows, without their binary columns),
``segments/<id>.parquet`` (each columnar segment of training rows and actuals),
``inputs/<key>.parquet`` (batch inputs stored as Parquet) and
``artifacts/<model>/<sha256>.rtm``. The keys that de-duplicate segment rows are not written:
a restore rebuilds them from the segments. It is backend-neutral: a SQLite backup restores
into PostgreSQL and back.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, LargeBinary, func, select

from ..core.clock import utcnow
from ..core.errors import ConflictError, InputError, IntegrityError
from ..core.files import atomic_output
from ..store import schema as t
from ..store.convert import jsonsafe
from ..store.segments import json_column
from .workspace import Workspace

FORMAT = 3  # 3: training rows and actuals as segments (formats 1 and 2 are converted)
TABLES = [
    t.models,
    t.versions,
    t.roles,
    t.deployments,
    t.segments,
    t.actual_links,
    t.prediction_inputs,
    t.predictions,
    t.decisions,
    t.job_runs,
]
_LEGACY = ("training_rows", "actuals")  # tables of formats 1 and 2


@dataclass(frozen=True)
class BackupResult:
    path: str
    rows: dict[str, int]
    artifacts: int


def _add(tar: tarfile.TarFile, name: str, data: bytes, manifest: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))
    manifest[name] = hashlib.sha256(data).hexdigest()


def _blob_member(table: Any, row: dict[str, Any]) -> str | None:
    if table is t.segments:
        return f"segments/{row['id']}.parquet"
    if table is t.prediction_inputs and row.get("data") is not None:
        return f"inputs/{row['key']}.parquet"
    return None


def backup(ws: Workspace, path: str | Path) -> BackupResult:
    """Write the store and every kept artifact to one archive at ``path`` (its folder made;
    written under a temporary name and renamed, so a failure leaves no partial backup)."""
    p = Path(path)
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    with atomic_output(p, what="backup") as tmp, tarfile.open(tmp, "w:gz") as tar:
        with ws.store.read() as conn:
            for table in TABLES:
                blobs = [c.name for c in table.columns if isinstance(c.type, LargeBinary)]
                lines = []
                for r in conn.execute(select(table)):
                    row = dict(r._mapping)
                    member = _blob_member(table, row)
                    for c in blobs:
                        data = row.pop(c)
                        if member is not None and data is not None:
                            _add(tar, member, bytes(data), files)
                    lines.append(json.dumps(jsonsafe(row), sort_keys=True))
                rows[table.name] = len(lines)
                _add(tar, f"tables/{table.name}.jsonl", "\n".join(lines).encode(), files)
            for kind, name in (("rows", "training_rows"), ("actuals", "actuals")):
                rows[name] = int(
                    conn.execute(
                        select(func.coalesce(func.sum(t.segments.c.n_rows), 0)).where(
                            t.segments.c.kind == kind
                        )
                    ).scalar_one()
                )
            uris = {
                r.artifact_uri: (r.model, r.sha256, r.hmac, r.version)
                for r in conn.execute(select(t.versions).where(t.versions.c.status != "deleted"))
            }
        for uri, (model, sha, mac, version) in sorted(uris.items()):
            data = ws.artifacts.get(uri, sha, mac, what=f"model {model!r} version {version}")
            _add(tar, f"artifacts/{model}/{sha}.rtm", data, files)
        manifest = {
            "format": FORMAT,
            "created_at": utcnow().isoformat(),
            "rows": rows,
            "files": files,
        }
        _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode(), {})
    return BackupResult(str(p), rows, len(uris))


def _inputs_of_format_1(predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Format 1 kept each prediction's features on its row: each becomes a one-row input, as
    the 0004 migration does."""
    inputs = []
    for r in predictions:
        key = f"p{r['id']}"
        inputs.append(
            {
                "key": key,
                "model": r["model"],
                "created_at": r["created_at"],
                "body": '{"row": ' + r.pop("features") + "}",
            }
        )
        r.update(input_key=key, input_row=0)
    return inputs


def restore(ws: Workspace, path: str | Path) -> BackupResult:
    """Restore a backup into an empty store; everything is verified before anything is written."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Backup file {str(p)!r} does not exist.")
    try:
        with tarfile.open(p, "r:gz") as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{p} is not a retrainer backup ({exc}).") from None
    if "manifest.json" not in members:
        raise InputError(f"{p} is not a retrainer backup: it has no manifest.json.")
    manifest = json.loads(members["manifest.json"])
    for name, sha in manifest["files"].items():
        if name not in members or hashlib.sha256(members[name]).hexdigest() != sha:
            raise IntegrityError(
                f"Backup {p} is damaged: member {name} is missing or does not match its "
                "checksum. Nothing was restored."
            )
    with ws.store.read() as conn:
        if conn.execute(select(func.count()).select_from(t.models)).scalar():
            raise ConflictError(
                f"The store {ws.store!r} already holds models; restore only into an empty "
                "store. Point `store:` (or RETRAINER_STORE) at a new database and retry."
            )
    fmt = manifest.get("format", 1)
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in [tb.name for tb in TABLES] + (list(_LEGACY) if fmt < 3 else []):
        text = members.get(f"tables/{name}.jsonl", b"").decode()
        tables[name] = [json.loads(line) for line in text.splitlines() if line]
    for table in TABLES:
        dt_cols = [c.name for c in table.columns if isinstance(c.type, DateTime)]
        for r in tables[table.name]:
            for c in dt_cols:
                if r.get(c):
                    r[c] = datetime.fromisoformat(r[c])
            member = _blob_member(table, {**r, "data": True})
            if member is not None and member in members:
                r["data"] = members[member]
            elif table is t.prediction_inputs:
                r["data"] = None
    if fmt < 2:
        tables["prediction_inputs"] = _inputs_of_format_1(tables["predictions"])
    arts = 0
    for v in tables["versions"]:
        if v["status"] == "deleted":
            continue
        data = members.get(f"artifacts/{v['model']}/{v['sha256']}.rtm")
        if data is None or hashlib.sha256(data).hexdigest() != v["sha256"]:
            raise IntegrityError(
                f"Backup {p}: the artifact of {v['model']} {v['version']} is missing or damaged."
            )
        stored = ws.artifacts.put(v["model"], data)
        v["artifact_uri"] = stored.uri
        arts += 1
    with ws.store.write() as conn:
        for table in TABLES:
            if tables[table.name]:
                conn.execute(table.insert(), tables[table.name])
        if conn.dialect.name == "postgresql":  # keep sequences ahead of restored ids
            for table in TABLES:
                if "id" in table.c and tables[table.name]:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT MAX(id) FROM {table.name}))"
                    )
        ws.store.rebuild_keys(conn)
        counts = {k: len(v) for k, v in tables.items() if k not in _LEGACY}
        if fmt < 3:
            counts.update(_legacy_rows(ws, conn, tables))
        counts.update(ws.store.row_counts(conn))
    return BackupResult(str(p), counts, arts)


def _legacy_rows(
    ws: Workspace, conn: Any, tables: dict[str, list[dict[str, Any]]]
) -> dict[str, int]:
    """Training rows and actuals of a format 1 or 2 backup, stored as segments."""
    import pandas as pd

    from .ingest import label_column

    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in tables["training_rows"]:
        by_model.setdefault(r["model"], []).append(r)
    for model, rows in by_model.items():
        feats = pd.DataFrame.from_records([r["features"] for r in rows])
        frame = pd.DataFrame(
            {
                "entity_id": [r["entity_id"] for r in rows],
                "event_time": pd.to_datetime([r["event_time"] for r in rows]).astype(
                    "datetime64[us]"
                ),
                "target": label_column(pd.Series([r["target"] for r in rows], dtype=object)),
            }
        )
        for col in feats.columns:
            frame[col] = json_column(feats[col])
        ws.store.append_rows(conn, model, frame, "restore")
    acts: dict[str, list[dict[str, Any]]] = {}
    for r in tables["actuals"]:
        acts.setdefault(r["model"], []).append(r)
    for model, rows in acts.items():
        frame = pd.DataFrame(
            {
                "entity_id": [r["entity_id"] for r in rows],
                "event_time": pd.to_datetime([r["event_time"] for r in rows]).astype(
                    "datetime64[us]"
                ),
                "value": label_column(pd.Series([r["value"] for r in rows], dtype=object)),
                "prediction_id": pd.array([r["prediction_id"] for r in rows], dtype="Int64"),
            }
        )
        ws.store.append_actuals(conn, model, frame, "restore")
    return {}
