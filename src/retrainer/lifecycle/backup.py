"""Backup and restore of the whole workspace (store rows + artifacts), verified both ways.

A backup is one ``.tar.gz``: ``manifest.json`` (format, time, row counts, the SHA-256 of
every member), ``tables/<table>.jsonl`` and ``artifacts/<model>/<sha256>.rtm``. It is
backend-neutral: a SQLite backup restores into PostgreSQL and back.
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

from sqlalchemy import DateTime, func, select

from ..core.clock import utcnow
from ..core.errors import ConflictError, InputError, IntegrityError
from ..store import schema as t
from ..store.convert import jsonsafe
from .workspace import Workspace

FORMAT = 2  # 2: prediction inputs in their own table (format 1 is converted)
TABLES = [
    t.models,
    t.versions,
    t.roles,
    t.deployments,
    t.training_rows,
    t.prediction_inputs,
    t.predictions,
    t.actuals,
    t.decisions,
    t.job_runs,
]


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


def backup(ws: Workspace, path: str | Path) -> BackupResult:
    p = Path(path)
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    tmp = p.with_name(p.name + ".partial")
    with tarfile.open(tmp, "w:gz") as tar:
        with ws.store.read() as conn:
            for table in TABLES:
                lines = [
                    json.dumps(jsonsafe(dict(r._mapping)), sort_keys=True)
                    for r in conn.execute(select(table))
                ]
                rows[table.name] = len(lines)
                _add(tar, f"tables/{table.name}.jsonl", "\n".join(lines).encode(), files)
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
    tmp.replace(p)
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
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        text = members.get(f"tables/{table.name}.jsonl", b"").decode()
        dt_cols = [c.name for c in table.columns if isinstance(c.type, DateTime)]
        recs = [json.loads(line) for line in text.splitlines() if line]
        for r in recs:
            for c in dt_cols:
                if r.get(c):
                    r[c] = datetime.fromisoformat(r[c])
        tables[table.name] = recs
    if manifest.get("format", 1) < 2:
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
    return BackupResult(str(p), {k: len(v) for k, v in tables.items()}, arts)
