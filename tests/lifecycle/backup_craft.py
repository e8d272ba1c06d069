"""Crafting backups for the restore tests: a real source backup, its members as bytes,
archives rebuilt from edited members (with a manifest that agrees with them, optionally
signed), raw tar entries of any type, and a snapshot of everything a restore could write."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import yaml

from retrainer.apps.backup import backup
from retrainer.apps.backup_format import sign_manifest
from retrainer.core.spec import parse_spec
from retrainer.datasets import weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.predict import predict_file
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace
from retrainer.store import ArtifactStore
from weather_spec import weather_model

KEY = b"backup-test-key"
MODEL = "weather"


def spec_body(folder: Path, store: str | None = None) -> dict[str, Any]:
    return {
        "store": store or f"sqlite:///{folder / 'store.db'}",
        "artifacts": str(folder / "artifacts"),
        "models": {MODEL: weather_model(params={"n_estimators": 10})},
    }


def workspace(folder: Path, *, key: bytes | None = None, store: str | None = None) -> Workspace:
    """A workspace whose store and artifact folder live in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = parse_spec(spec_body(folder, store), environ={})
    return Workspace(spec, artifacts=ArtifactStore(spec.artifacts, key))


def config(folder: Path, store: str | None = None) -> Path:
    """A retrainer.yaml for a workspace in ``folder`` (for the CLI in a subprocess)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "retrainer.yaml"
    path.write_text(yaml.safe_dump(spec_body(folder, store), sort_keys=False))
    return path


def make_source(folder: Path) -> Path:
    """A signed backup of a store with two versions (one champion), training rows and a
    batch prediction (so every kind of member is in it)."""
    df = weather()
    with workspace(folder / "source", key=KEY) as ws:
        ingest_frame(ws, MODEL, df[df["date"] < "1951-01-01"])
        train(ws, MODEL, deploy=True)
        ingest_frame(ws, MODEL, df[(df["date"] >= "1951-01-01") & (df["date"] < "1952-01-01")])
        train(ws, MODEL, deploy=True)
        rows = folder / "rows.csv"
        df[df["date"] >= "1952-01-01"].head(20).to_csv(rows, index=False)
        predict_file(ws, MODEL, rows, folder / "scored.csv")
        return Path(backup(ws, folder / "source.tar.gz").path)


def members_of(archive: Path) -> dict[str, bytes]:
    """The regular members of an archive, in order."""
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def rows_of(members: dict[str, bytes], table: str) -> list[dict[str, Any]]:
    text = members[f"tables/{table}.jsonl"].decode()
    return [json.loads(line) for line in text.splitlines() if line]


def set_rows(members: dict[str, bytes], table: str, rows: list[dict[str, Any]]) -> None:
    members[f"tables/{table}.jsonl"] = "\n".join(json.dumps(r) for r in rows).encode()


def manifest_of(members: dict[str, bytes]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(members["manifest.json"])
    return loaded


def consistent(members: dict[str, bytes], *, key: bytes | None = None) -> dict[str, bytes]:
    """``members`` with a manifest that agrees with them (hashes, sizes, row counts of the
    tables it lists), signed with ``key`` when given: a crafted backup no checksum catches."""
    manifest = manifest_of(members)
    manifest.pop("hmac", None)
    body = {k: v for k, v in members.items() if k != "manifest.json"}
    manifest["files"] = {k: hashlib.sha256(v).hexdigest() for k, v in body.items()}
    manifest["sizes"] = {k: len(v) for k, v in body.items()}
    for name in list(manifest["rows"]):
        if f"tables/{name}.jsonl" in members:
            lines = members[f"tables/{name}.jsonl"].splitlines()
            manifest["rows"][name] = len([line for line in lines if line])
    if key is not None:
        manifest["hmac"] = sign_manifest(manifest, key)
    return {**body, "manifest.json": json.dumps(manifest).encode()}


def write(path: Path, members: dict[str, bytes]) -> Path:
    """An archive of regular members, in the given order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_entries(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """An archive of raw entries (links, folders, repeated names...)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_entry(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` but the SQLite files and archives, with its SHA-256; and the
    rows of the store in each ``store.db`` found, by table (a restore that wrote anything
    changes it)."""
    import sqlite3

    seen: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.name.endswith(".tar.gz"):
            continue  # the archives a test restores are its inputs
        if p.is_symlink():
            seen[rel] = "-> " + os.readlink(p)
        elif p.is_file() and ".db" not in p.name:
            seen[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.name == "store.db":
            with sqlite3.connect(p) as conn:
                tables = [
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                for tb in tables:
                    seen[f"{rel}:{tb}"] = str(
                        conn.execute(f'SELECT count(*) FROM "{tb}"').fetchone()[0]
                    )
    return seen


def store_rows(ws: Workspace) -> dict[str, int]:
    """Rows per table of a workspace's store (any backend)."""
    from sqlalchemy import func, select

    from retrainer.store import schema as t

    with ws.store.read() as conn:
        return {
            tb.name: int(conn.execute(select(func.count()).select_from(tb)).scalar_one())
            for tb in t.metadata.sorted_tables
        }


def run_cli(cfg: Path, *args: str, key: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``retrainer -c cfg ARGS`` in a subprocess (the real CLI)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    if key is not None:
        env["RETRAINER_SIGNING_KEY"] = key.decode()
    return subprocess.run(
        [sys.executable, "-m", "retrainer.cli.main", "-c", str(cfg), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_line(text: str) -> str:
    """CLI output with its wrapping undone."""
    return " ".join(text.split())
