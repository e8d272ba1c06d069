"""Backup of the whole workspace (store rows + artifacts) to one verified, optionally signed
archive; restore lives in :mod:`.backup_restore` (re-exported here).

The archive's layout is in :mod:`.backup_format`. The keys that de-duplicate segment rows are
not written: a restore rebuilds them from the segments. It is backend-neutral: a SQLite backup
restores into PostgreSQL and back. With ``RETRAINER_SIGNING_KEY`` set, the manifest is signed,
and a restore with the key set refuses a backup that is not.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

from sqlalchemy import LargeBinary, func, select

from ..core.clock import utcnow
from ..core.files import atomic_output
from ..core.progress import Progress, current, reports
from ..plumbing.workspace import Workspace
from ..store import objects
from ..store import schema as t
from ..store.convert import jsonsafe
from .backup_format import (
    FORMAT,
    MANIFEST,
    SIGNATURE,
    TABLES,
    BackupResult,
    blob_member,
    sign_manifest,
)

_SPOOL = 8 << 20  # a table's lines stay in memory up to this size, then spill to a file


class _Writer:
    """Members added to the tar, with the SHA-256 and size of each noted for the manifest."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.files: dict[str, str] = {}
        self.sizes: dict[str, int] = {}

    def add(self, name: str, data: bytes) -> None:
        fh = io.BytesIO(data)
        fh.seek(0, io.SEEK_END)
        self.add_file(name, fh, hashlib.sha256(data).hexdigest())

    def add_file(self, name: str, fh: IO[bytes], sha256: str) -> None:
        info = tarfile.TarInfo(name)
        info.size = fh.tell()
        info.mtime = 0
        fh.seek(0)
        self.tar.addfile(info, fh)
        self.files[name], self.sizes[name] = sha256, info.size


@reports
def backup(ws: Workspace, path: str | Path, *, progress: Progress | None = None) -> BackupResult:
    """Write the store and every kept artifact to one archive at ``path`` (its folder made;
    written under a temporary name and renamed, so a failure leaves no partial backup);
    ``progress`` hears of each table and artifact written. A URL (``s3://bucket/x.tar.gz``)
    is written to a local temporary file first and uploaded once complete."""
    if objects.is_url(path):
        url = str(path)
        with tempfile.TemporaryDirectory(prefix="retrainer-backup-") as tmp:
            local = _backup(ws, Path(tmp) / "backup.tar.gz")
            current().stage("upload")
            objects.upload(Path(local.path), url, what="backup")
        return BackupResult(objects.shown(url), local.rows, local.artifacts)
    return _backup(ws, Path(path))


def _backup(ws: Workspace, p: Path) -> BackupResult:
    shown = current()  # ``progress``, or the caller's
    rows: dict[str, int] = {}
    with atomic_output(p, what="backup", private=True) as tmp, tarfile.open(tmp, "w:gz") as tar:
        out = _Writer(tar)
        with ws.store.read() as conn:
            streamed = conn.execution_options(stream_results=True, yield_per=500)
            shown.stage("tables", total=len(TABLES), unit="tables")
            for table in TABLES:
                rows[table.name] = _add_table(out, streamed, table)
                shown.advance()
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
        shown.stage("artifacts", total=len(uris), unit="artifacts")
        for uri, (model, sha, mac, version) in sorted(uris.items()):
            data = ws.artifacts.get(
                uri, sha, mac, what=f"model {model!r} version {version}", allow_unsigned=True
            )
            out.add(f"artifacts/{model}/{sha}.rtm", data)
            shown.advance()
        shown.stage("manifest")
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": utcnow().isoformat(),
            "rows": rows,
            "files": out.files,
            "sizes": out.sizes,
        }
        if ws.artifacts.signing_key is not None:
            manifest[SIGNATURE] = sign_manifest(manifest, ws.artifacts.signing_key)
        _Writer(tar).add(MANIFEST, json.dumps(manifest, indent=1).encode())
    shown.done()
    return BackupResult(str(p), rows, len(uris))


def _add_table(out: _Writer, conn: Any, table: Any) -> int:
    """Add ``table``'s rows as JSON lines (binary columns as their own members first); the
    lines spill to a temporary file, so a large table is never held in memory."""
    blobs = [c.name for c in table.columns if isinstance(c.type, LargeBinary)]
    n = 0
    digest = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(_SPOOL) as lines:
        for r in conn.execute(select(table)):
            row = dict(r._mapping)
            member = blob_member(table, row)
            for c in blobs:
                data = row.pop(c)
                if member is not None and data is not None:
                    out.add(member, bytes(data))
            line = (b"\n" if n else b"") + json.dumps(jsonsafe(row), sort_keys=True).encode()
            lines.write(line)
            digest.update(line)
            n += 1
        out.add_file(f"tables/{table.name}.jsonl", lines, digest.hexdigest())
    return n


from .backup_restore import restore  # noqa: E402  (the CLI and callers import both from here)

__all__ = ["BackupResult", "backup", "restore"]
