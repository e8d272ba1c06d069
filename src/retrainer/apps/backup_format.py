"""What a backup holds, and the limits a restore reads it within.

A backup is one ``.tar.gz`` of regular files only:

- ``manifest.json``: ``format``, ``created_at``, ``rows`` (rows per table), ``files`` (the
  SHA-256 of every other member), ``sizes`` (their sizes in bytes, from format 3) and, when
  ``RETRAINER_SIGNING_KEY`` is set at backup time, ``hmac``: the HMAC-SHA256 of the manifest's
  canonical bytes (:func:`manifest_bytes`), which covers every member through its hash;
- ``tables/<table>.jsonl``: SQL rows, one JSON object a line, without their binary columns;
- ``segments/<id>.parquet`` and ``inputs/<key>.parquet``: those binary columns;
- ``artifacts/<model>/<sha256>.rtm``: every kept artifact.

>>> m = {"format": 3, "files": {"tables/models.jsonl": "ab"}, "rows": {"models": 1}}
>>> sig = sign_manifest(m, b"key")
>>> verify_manifest({**m, "hmac": sig}, b"key"), verify_manifest({**m, "hmac": "0" * 64}, b"key")
(True, False)
>>> member_kind("artifacts/churn/" + "a" * 64 + ".rtm"), member_kind("../etc/passwd")
('artifact', None)
"""

from __future__ import annotations

import hashlib
import hmac as hmac_lib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from ..core.errors import InputError
from ..core.names import MODEL_NAME
from ..store import schema as t

FORMAT = 3  # 3: training rows and actuals as segments (formats 1 and 2 are converted)
TABLES: list[Table] = [
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
LEGACY = ("training_rows", "actuals")  # tables of formats 1 and 2
MANIFEST = "manifest.json"
SIGNATURE = "hmac"  # the manifest key holding its signature

_TABLE_NAMES = "|".join([tb.name for tb in TABLES] + list(LEGACY))
_SHAPES = {
    "table": re.compile(rf"tables/({_TABLE_NAMES})\.jsonl"),
    "segment": re.compile(r"segments/(0|[1-9][0-9]{0,18})\.parquet"),
    "input": re.compile(r"inputs/([A-Za-z0-9_-]{1,32})\.parquet"),
    "artifact": re.compile(rf"artifacts/({MODEL_NAME.pattern})/([0-9a-f]{{64}})\.rtm"),
}
SHAPES_TEXT = (
    "manifest.json, tables/<table>.jsonl, segments/<id>.parquet, inputs/<key>.parquet or "
    "artifacts/<model>/<sha256>.rtm"
)


def member_kind(name: str) -> str | None:
    """``manifest``, ``table``, ``segment``, ``input`` or ``artifact`` for a member name of a
    backup; None for any other name (``..``, an absolute path, an unknown table)."""
    if name == MANIFEST:
        return "manifest"
    for kind, shape in _SHAPES.items():
        if shape.fullmatch(name):
            return kind
    return None


def blob_member(table: Table, row: dict[str, Any]) -> str | None:
    """The member holding ``row``'s binary column, if its table has one."""
    if table is t.segments:
        return f"segments/{row['id']}.parquet"
    if table is t.prediction_inputs and row.get("data") is not None:
        return f"inputs/{row['key']}.parquet"
    return None


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical bytes a manifest's signature covers: every key but the signature, sorted,
    compact, ASCII."""
    body = {k: v for k, v in manifest.items() if k != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_manifest(manifest: dict[str, Any], key: bytes) -> str:
    """The HMAC-SHA256 (hex) of the manifest's canonical bytes under ``key``."""
    return hmac_lib.new(key, manifest_bytes(manifest), hashlib.sha256).hexdigest()


def verify_manifest(manifest: dict[str, Any], key: bytes) -> bool:
    """Whether the manifest carries a valid signature under ``key`` (constant-time compare)."""
    given = manifest.get(SIGNATURE)
    if not isinstance(given, str) or not given.isascii():
        return False
    return hmac_lib.compare_digest(sign_manifest(manifest, key), given)


MiB = 1 << 20


@dataclass(frozen=True)
class BackupResult:
    """What a backup wrote or a restore read: the archive, rows per table, artifacts."""

    path: str
    rows: dict[str, int]
    artifacts: int


@dataclass(frozen=True)
class RestoreLimits:
    """How much a restore reads before it calls a backup malformed.

    - ``line_bytes``: the longest table line (one row as JSON); 64 MiB by default.
    - ``unpacked_bytes``: the most bytes all members may unpack to, headers included. By
      default 256 MiB plus 64 times the archive's own size: real backups (Parquet, model files,
      JSON lines) unpack to a few times their size, a decompression bomb to hundreds.
    - ``members``: the most members; 200,000 by default.
    - ``manifest_bytes``: the largest manifest; 64 MiB by default.

    Each can be raised, for a real backup above them, with ``retrainer restore --max-unpacked``
    and ``--max-line`` or ``RETRAINER_RESTORE_MAX_UNPACKED_MB`` / ``RETRAINER_RESTORE_MAX_LINE_MB``.

    >>> RestoreLimits().unpacked_for(1 * MiB) // MiB
    320
    >>> RestoreLimits(unpacked_bytes=5 * MiB).unpacked_for(1 * MiB) // MiB
    5
    """

    line_bytes: int = 64 * MiB
    unpacked_bytes: int | None = None
    members: int = 200_000
    manifest_bytes: int = 64 * MiB

    def unpacked_for(self, archive_size: int) -> int:
        """The unpacked-size cap for an archive of ``archive_size`` bytes."""
        if self.unpacked_bytes is not None:
            return self.unpacked_bytes
        return 256 * MiB + 64 * archive_size

    @classmethod
    def from_env(
        cls, *, unpacked_mb: int | None = None, line_mb: int | None = None
    ) -> RestoreLimits:
        """The limits, with ``RETRAINER_RESTORE_MAX_UNPACKED_MB`` and
        ``RETRAINER_RESTORE_MAX_LINE_MB`` (or the given values, which win) applied."""
        unpacked = unpacked_mb if unpacked_mb is not None else _env_mb("UNPACKED")
        line = line_mb if line_mb is not None else _env_mb("LINE")
        return cls(
            line_bytes=line * MiB if line is not None else cls.line_bytes,
            unpacked_bytes=unpacked * MiB if unpacked is not None else None,
        )


def _env_mb(which: str) -> int | None:
    name = f"RETRAINER_RESTORE_MAX_{which}_MB"
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 0 < int(raw) <= 1 << 40:
        raise InputError(f"{name}={raw!r} is not a size in MiB. Give a positive whole number.")
    return int(raw)
