"""The local spool of prediction records the store could not take: append-only JSONL files,
one per server process (``predictions-<pid>-<token>.jsonl``, locked with ``flock`` while its
process lives), replayed oldest first in chunks. After each replayed chunk its byte offset is
saved next to the file (``.offset``), so a crash mid-replay re-sends at most one chunk.
Files of processes that died are replayed by whichever process locks them first.

Where: ``RETRAINER_SPOOL_DIR`` when set, else ``spool/`` next to a local artifacts folder,
else ``spool/`` next to the config file (see ``spool_dir``).

>>> import tempfile
>>> from datetime import datetime
>>> sp = Spool(tempfile.mkdtemp())
>>> sp.append([{"model": "m", "created_at": datetime(2024, 1, 1)}])
>>> got = []
>>> sp.replay(got.extend, 100), got[0]["created_at"], sp.pending
(1, datetime.datetime(2024, 1, 1, 0, 0), 0)
>>> sp.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from ..core.spec import Spec
from ..store.predlog import PredictionRecord, from_legacy
from .writer import Unwritten

Write = Callable[[list[PredictionRecord]], Any]
Size = Callable[[Mapping[str, Any]], int]


Refused = Callable[[Exception], bool]


def _one(record: Mapping[str, Any]) -> int:
    return 1


def _never(exc: Exception) -> bool:
    return False


def spool_dir(spec: Spec) -> Path:
    """The spool folder for a spec (see the module docstring)."""
    env = os.environ.get("RETRAINER_SPOOL_DIR")
    if env:
        return Path(env)
    if "://" not in spec.artifacts or spec.artifacts.startswith("file://"):
        return Path(spec.artifacts.removeprefix("file://")).resolve().parent / "spool"
    if spec.source not in ("<memory>", "") and Path(spec.source).exists():
        return Path(spec.source).resolve().parent / "spool"
    return Path.cwd() / "spool"


def _default(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    return str(v)


def _decode(line: bytes) -> PredictionRecord:
    """A spooled line as a prediction record (one in the older one-row shape converted)."""
    rec: dict[str, Any] = json.loads(line)
    at = rec.get("created_at")
    if isinstance(at, dict) and "$dt" in at:
        rec["created_at"] = datetime.fromisoformat(at["$dt"])
    return from_legacy(rec) if "features" in rec else cast(PredictionRecord, rec)


class Spool:
    def __init__(self, folder: str | Path, size: Size = _one) -> None:
        """``size`` measures a record (e.g. in prediction rows): ``pending``, the totals and
        replay chunks count in it."""
        self.folder = Path(folder)
        self.size = size
        self.folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        self.path = self.folder / f"predictions-{os.getpid()}-{token}.jsonl"
        self._fh: Any = None
        self.spooled_total = 0
        self.failed_total = 0
        self.pending = sum(self._count(p) for p in self._orphans())

    # ---- writing ----------------------------------------------------------------------
    def append(self, batch: Sequence[Mapping[str, Any]], *, failed: bool = False) -> None:
        data = b"".join(json.dumps(r, default=_default).encode() + b"\n" for r in batch)
        if failed:
            with open(self._failed_path(), "ab") as fh:
                fh.write(data)
            self.failed_total += sum(map(self.size, batch))
            return
        own = self._own()
        own.write(data)
        own.flush()
        os.fsync(own.fileno())
        n = sum(map(self.size, batch))
        self.pending += n
        self.spooled_total += n

    def _own(self) -> IO[bytes]:
        if self._fh is None:
            self._fh = open(self.path, "ab")  # noqa: SIM115 (held open for the process's life)
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        return self._fh

    # ---- replay -----------------------------------------------------------------------
    def replay(self, write: Write, chunk: int, refused: Refused = _never) -> int:
        """Send every spooled record through ``write`` in chunks of up to ``chunk`` (measured
        by ``size``; one record at least); returns the size that went. A chunk whose error
        ``refused`` accepts (the records themselves are bad), and a line that is not a
        record, go to the failed file and the replay goes on; any other failure propagates
        and keeps the rest for later. ``write`` may raise ``writer.Unwritten`` after writing
        part of a chunk: the records it names are spooled again, the chunk is done, and its
        cause propagates."""
        sent = 0
        for path in self._orphans():
            with open(path, "rb") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its process is alive and replays it itself
                sent += self._replay_file(path, write, chunk, refused)
                _remove(path)
        if self._fh is not None and self.path.exists():
            sent += self._replay_file(self.path, write, chunk, refused)
            os.ftruncate(self._fh.fileno(), 0)
            _remove(self._offset_path(self.path))
        return sent

    def _replay_file(self, path: Path, write: Write, chunk: int, refused: Refused) -> int:
        offset = self._offset(path)
        sent = 0
        with open(path, "rb") as fh:
            fh.seek(offset)
            while True:
                records, used, total = [], 0, 0
                while total < chunk:
                    line = fh.readline()
                    if not line.endswith(b"\n"):  # the end, or a line still being written
                        break
                    used += len(line)
                    try:
                        records.append(_decode(line))
                    except ValueError:  # not a record (a damaged line): set it aside
                        self._set_aside(line)
                        continue
                    total += self.size(records[-1])
                if not records and not used:
                    return sent
                try:
                    if records:
                        write(records)
                        sent += total
                except Unwritten as stop:  # some records went in before a store error
                    if len(stop.records) == len(records):
                        raise stop.cause from stop
                    self.append(stop.records)  # the rest, at the end: none sent twice
                    self._save_offset(path, offset + used)
                    self.pending = max(0, self.pending - total)
                    raise stop.cause from stop
                except Exception as exc:
                    if not refused(exc):
                        raise
                    self.append(records, failed=True)
                offset += used
                self._save_offset(path, offset)
                self.pending = max(0, self.pending - total)

    def _set_aside(self, line: bytes) -> None:
        with open(self._failed_path(), "ab") as fh:
            fh.write(line)
        self.failed_total += 1

    def _failed_path(self) -> Path:
        return self.folder / f"failed-{os.getpid()}.jsonl"

    # ---- bookkeeping ------------------------------------------------------------------
    def _orphans(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("predictions-*.jsonl") if p != self.path)

    def _count(self, path: Path) -> int:
        try:
            with open(path, "rb") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return 0  # a live process owns it
                fh.seek(self._offset(path))
                lines = (ln for ln in fh if ln.endswith(b"\n"))
                if self.size is _one:
                    return sum(1 for _ in lines)
                return sum(self.size(_decode(ln)) for ln in lines)
        except OSError:
            return 0

    @staticmethod
    def _offset_path(path: Path) -> Path:
        return path.with_name(path.name + ".offset")

    def _offset(self, path: Path) -> int:
        try:
            return int(self._offset_path(path).read_text() or 0)
        except (OSError, ValueError):
            return 0

    def _save_offset(self, path: Path, offset: int) -> None:
        tmp = self._offset_path(path).with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self._offset_path(path))

    def close(self) -> None:
        if self._fh is not None:
            empty = self.path.stat().st_size == 0
            self._fh.close()
            self._fh = None
            if empty:
                _remove(self.path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError):
        Spool._offset_path(path).unlink()
