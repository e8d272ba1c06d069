"""Reading a backup archive without trusting it: every member checked before a row is read.

:func:`scan` reads the archive once, member by member, in bounded memory, and writes nothing.
A member must be a regular file named like one of the layout's shapes
(:mod:`.backup_format`), given once; the members may unpack to at most
:class:`RestoreLimits` (a decompression bomb stops at its header, before its data is
inflated). Each member is hashed as it streams by (an artifact is also HMAC'd under the
signing key); then the manifest must parse, carry its keys, carry a valid signature when a key
is set, and list exactly the archive's members with their hashes and sizes.

:func:`members` streams the members again for the restore, and :func:`lines` splits a table
member into numbered lines no longer than the limit.

>>> import io
>>> list(lines(io.BytesIO(b'{"a": 1}\\n{"a": 2}'), "tables/x.jsonl", limit=100, where="Backup b"))
[(1, b'{"a": 1}'), (2, b'{"a": 2}')]
"""

from __future__ import annotations

import hashlib
import hmac as hmac_lib
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.errors import InputError
from .backup_format import (
    FORMAT,
    MANIFEST,
    SHAPES_TEXT,
    SIGNATURE,
    MiB,
    RestoreLimits,
    member_kind,
    verify_manifest,
)
from .backup_rows import load_object

_CHUNK = 1 << 20
_HEADER = 512  # a tar header's size, counted against the unpacked limit
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
NOTHING = "Nothing was restored."


@dataclass(frozen=True)
class Member:
    """One member as scanned: its kind (see ``member_kind``), size, SHA-256 and, for an
    artifact with a signing key set, the HMAC-SHA256 of its bytes."""

    name: str
    kind: str
    size: int
    sha256: str
    hmac: str | None


@dataclass(frozen=True)
class Scanned:
    """A backup whose structure, manifest and member hashes were all checked."""

    path: Path
    members: dict[str, Member]
    manifest: dict[str, Any]
    format: int

    @property
    def where(self) -> str:
        return f"Backup {str(self.path)!r}"


def scan(path: Path, limits: RestoreLimits, key: bytes | None) -> Scanned:
    """Check everything about the archive at ``path`` that needs no store (see the module);
    InputError naming the member otherwise."""
    where = f"Backup {str(path)!r}"
    cap = limits.unpacked_for(path.stat().st_size)
    found: dict[str, Member] = {}
    raw: bytes | None = None
    total = 0
    with _tar(path, where) as tar:
        for info in _iter(tar, where):
            kind = _check_member(info, where)
            if info.name in found:
                raise InputError(
                    f"{where}: member {info.name} is in the archive twice; a backup holds each "
                    f"member once, so this one was edited or assembled by hand. {NOTHING}"
                )
            if len(found) >= limits.members:
                raise InputError(
                    f"{where} has more than {limits.members:,} members; a retrainer backup has "
                    f"one per table, segment, batch input and artifact. {NOTHING}"
                )
            total += info.size + _HEADER
            if total > cap:
                raise InputError(
                    f"{where}: member {info.name} takes the archive past {cap // MiB:,} MiB "
                    f"unpacked (the archive is {path.stat().st_size / MiB:.1f} MiB): a "
                    "decompression bomb or a damaged archive. If it is a real backup, raise the "
                    "limit with `retrainer restore --max-unpacked MB` (or "
                    f"RETRAINER_RESTORE_MAX_UNPACKED_MB). {NOTHING}"
                )
            if kind == "manifest" and info.size > limits.manifest_bytes:
                raise InputError(
                    f"{where}: member {MANIFEST} is {info.size:,} bytes, more than a manifest "
                    f"holds ({limits.manifest_bytes:,} at most). {NOTHING}"
                )
            found[info.name], data = _digest(tar, info, kind, key, where)
            if kind == "manifest":
                raw = data
    if raw is None:
        raise InputError(f"{where} is not a retrainer backup: it has no {MANIFEST}. {NOTHING}")
    manifest, fmt = _manifest(raw, where)
    _check_signature(manifest, key, where)
    _check_listing(manifest, found, where)
    return Scanned(path, found, manifest, fmt)


class Reader:
    """A member's bytes as a later pass reads them, hashed on the way, so what is restored is
    exactly what :func:`scan` checked (the archive may be swapped between the passes)."""

    def __init__(self, fh: IO[bytes], member: Member, where: str) -> None:
        self.fh, self.member, self.where = fh, member, where
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        return data

    def verified(self) -> bytes:
        """The rest of the member, after its whole content matched the scanned hash."""
        data = b"".join(iter(lambda: _read(self, self.where, self.member.name), b""))
        self.check()
        return data

    def check(self) -> None:
        if self.sha.hexdigest() != self.member.sha256:
            raise InputError(
                f"{self.where}: member {self.member.name} changed while it was restored (the "
                f"archive was replaced or written to). {NOTHING}"
            )


def members(scanned: Scanned) -> Iterator[tuple[Member, Reader]]:
    """Each member of a scanned archive and a reader of its bytes, in archive order; each is
    checked against the scan once the caller is done with it."""
    where = scanned.where
    seen = 0
    with _tar(scanned.path, where) as tar:
        for info in _iter(tar, where):
            member = scanned.members.get(info.name)
            fh = tar.extractfile(info) if info.isfile() and not info.issparse() else None
            if member is None or fh is None or seen >= len(scanned.members):
                raise InputError(
                    f"{where}: member {info.name!r} was not in the archive when it was checked "
                    f"(the archive was replaced while it was restored). {NOTHING}"
                )
            seen += 1
            reader = Reader(fh, member, where)
            yield member, reader
            while _read(reader, where, info.name):
                pass
            reader.check()
    if seen != len(scanned.members):
        raise InputError(
            f"{where}: the archive lost members while it was restored (it was replaced). {NOTHING}"
        )


def lines(
    fh: IO[bytes] | Reader, name: str, *, limit: int, where: str
) -> Iterator[tuple[int, bytes]]:
    """The numbered lines of a table member, read in chunks; a line longer than ``limit``
    bytes or an empty line is an InputError naming the member and the line."""
    pending = bytearray()
    n = 0
    while chunk := _read(fh, where, name):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            pending += chunk[start:end]
            n += 1
            _check_line(pending, n, name, limit, where)
            yield n, bytes(pending)
            pending.clear()
            start = end + 1
        pending += chunk[start:]
        if len(pending) > limit:
            _check_line(pending, n + 1, name, limit, where)
    if pending or n:
        _check_line(pending, n + 1, name, limit, where)
        yield n + 1, bytes(pending)


def _check_line(line: bytearray, n: int, name: str, limit: int, where: str) -> None:
    if len(line) > limit:
        raise InputError(
            f"{where}: {name} line {n} is longer than {limit // MiB} MiB (one row as JSON). If "
            "it is a real row, raise the limit with `retrainer restore --max-line MB` (or "
            f"RETRAINER_RESTORE_MAX_LINE_MB). {NOTHING}"
        )
    if not line:
        raise InputError(f"{where}: {name} line {n} is empty; each line holds one row. {NOTHING}")


class _BoundedInfo(tarfile.TarInfo):
    """A tar header whose own extension (a PAX header, a GNU long name) is at most
    ``_META_BYTES``: tarfile reads one whole into memory before any member is seen, so a
    small archive declaring a 1 GiB extended header would otherwise take 1 GiB."""

    def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _META_TYPES and self.size > _META_BYTES:
            raise _OversizedHeader(
                f"an extended tar header of {self.size:,} bytes (a member name or PAX record "
                f"takes at most {_META_BYTES:,}): a decompression bomb or a damaged archive"
            )
        return super()._proc_member(tarfile)  # type: ignore[misc,no-any-return]


class _OversizedHeader(tarfile.HeaderError):
    pass


_META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_META_BYTES = 1 << 20


@contextmanager
def _tar(path: Path, where: str) -> Iterator[tarfile.TarFile]:
    try:
        tar = tarfile.open(path, "r:gz", tarinfo=_BoundedInfo)  # noqa: SIM115  (closed below)
    except _TAR_ERRORS as exc:
        raise InputError(f"{where} is not a retrainer backup ({exc}). {NOTHING}") from None
    try:
        yield tar
    finally:
        tar.close()


def _iter(tar: tarfile.TarFile, where: str) -> Iterator[tarfile.TarInfo]:
    """The members, one header at a time; the headers read are not kept (a tar of millions of
    members stays small in memory)."""
    while True:
        try:
            info = tar.next()
        except _TAR_ERRORS as exc:
            raise InputError(f"{where} is damaged or truncated ({exc}). {NOTHING}") from None
        if info is None:
            return
        tar.members.clear()  # type: ignore[attr-defined]
        yield info


def _read(fh: IO[bytes] | Reader, where: str, name: str) -> bytes:
    try:
        return fh.read(_CHUNK)
    except _TAR_ERRORS as exc:
        raise InputError(
            f"{where}: member {name} is damaged or truncated ({exc}). {NOTHING}"
        ) from None


def _check_member(info: tarfile.TarInfo, where: str) -> str:
    name = info.name
    if not info.isfile() or info.issparse():
        what = (
            "a symbolic link" if info.issym() else
            "a hard link" if info.islnk() else
            "a folder" if info.isdir() else
            "a sparse file" if info.issparse() else "a device or pipe"
        )  # fmt: skip
        raise InputError(
            f"{where}: member {name} is {what}; a backup holds only regular files, so it was "
            f"not written by retrainer. {NOTHING}"
        )
    kind = member_kind(name)
    if kind is None:
        why = (
            "an absolute path" if name.startswith("/") else
            "a path that climbs out with '..'" if ".." in name.split("/") else
            "not a name a backup uses"
        )  # fmt: skip
        raise InputError(
            f"{where}: member {name!r} is {why}; a backup holds only {SHAPES_TEXT}. {NOTHING}"
        )
    return kind


def _digest(
    tar: tarfile.TarFile, info: tarfile.TarInfo, kind: str, key: bytes | None, where: str
) -> tuple[Member, bytes | None]:
    fh = tar.extractfile(info)
    assert fh is not None  # a regular file
    sha = hashlib.sha256()
    mac = hmac_lib.new(key, digestmod=hashlib.sha256) if key and kind == "artifact" else None
    kept = bytearray() if kind == "manifest" else None
    size = 0
    while chunk := _read(fh, where, info.name):
        sha.update(chunk)
        size += len(chunk)
        if mac is not None:
            mac.update(chunk)
        if kept is not None:
            kept += chunk
    member = Member(info.name, kind, size, sha.hexdigest(), mac.hexdigest() if mac else None)
    return member, bytes(kept) if kept is not None else None


def _manifest(raw: bytes, where: str) -> tuple[dict[str, Any], int]:
    manifest = load_object(raw, f"{where}: {MANIFEST}")
    fmt = manifest.get("format", 1)  # format 1 wrote no format
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise InputError(
            f"{where}: {MANIFEST} key 'format' is {fmt!r}, expected 1 to {FORMAT}. {NOTHING}"
        )
    if fmt > FORMAT:
        raise InputError(
            f"{where} has format {fmt}, written by a newer retrainer; this one reads formats 1 "
            f"to {FORMAT}. Upgrade retrainer to restore it. {NOTHING}"
        )
    required = {"files": dict} | ({"rows": dict} if fmt >= 3 else {})
    shapes = {"rows": dict, "sizes": dict, "created_at": str, SIGNATURE: str} | required
    for k, kind in shapes.items():
        if k not in manifest:
            if k in required:
                raise InputError(
                    f"{where}: {MANIFEST} misses the key {k!r} (format {fmt} has it). {NOTHING}"
                )
            continue
        if not isinstance(manifest[k], kind):
            raise InputError(
                f"{where}: {MANIFEST} key {k!r} is a {type(manifest[k]).__name__}, expected "
                f"a JSON {'object' if kind is dict else 'string'}. {NOTHING}"
            )
    for k, value_type in (("files", str), ("rows", int), ("sizes", int)):
        for name, value in manifest.get(k, {}).items():
            if not isinstance(value, value_type) or isinstance(value, bool):
                raise InputError(
                    f"{where}: {MANIFEST} {k}[{name!r}] is {value!r}, expected "
                    f"{'a SHA-256 hex string' if value_type is str else 'a whole number'}. "
                    f"{NOTHING}"
                )
    return manifest, fmt


def _check_signature(manifest: dict[str, Any], key: bytes | None, where: str) -> None:
    signed = SIGNATURE in manifest
    if key is None:
        if signed:
            raise InputError(
                f"{where} is signed, but RETRAINER_SIGNING_KEY is not set, so its signature "
                "cannot be checked and its signed artifacts would not load. Set the key it was "
                f"made with and run restore again. {NOTHING}"
            )
        return
    if not signed:
        raise InputError(
            f"{where} is not signed, and RETRAINER_SIGNING_KEY is set: with a key, only a "
            "backup whose manifest carries a valid signature is restored (checksums alone "
            "cannot tell a tampered backup from a good one). Use a backup made with the key "
            "set; if you made this one yourself and trust it, restore it with the key unset, "
            f"then sign its versions once with `retrainer sign MODEL`. {NOTHING}"
        )
    if not verify_manifest(manifest, key):
        raise InputError(
            f"{where}: the signature of {MANIFEST} does not verify under RETRAINER_SIGNING_KEY: "
            "the backup was changed after it was made, or made with another key. Use an "
            f"untouched backup, or set the key it was made with. {NOTHING}"
        )


def _check_listing(manifest: dict[str, Any], found: dict[str, Member], where: str) -> None:
    files: dict[str, str] = manifest["files"]
    sizes: dict[str, int] = manifest.get("sizes", {})
    for name in found:
        if name != MANIFEST and name not in files:
            raise InputError(
                f"{where}: member {name} is not listed in {MANIFEST}, so nothing vouches for "
                f"it: the archive was changed after the backup was made. {NOTHING}"
            )
    for name, sha in files.items():
        if member_kind(name) in (None, "manifest"):
            raise InputError(
                f"{where}: {MANIFEST} lists {name!r}, which is not a member a backup holds "
                f"({SHAPES_TEXT}). {NOTHING}"
            )
        got = found.get(name)
        if got is None or got.sha256 != sha:
            raise InputError(
                f"{where} is damaged: member {name} is missing or does not match its checksum "
                f"in {MANIFEST}. {NOTHING}"
            )
        if name in sizes and sizes[name] != got.size:
            raise InputError(
                f"{where}: member {name} is {got.size:,} bytes, {MANIFEST} says "
                f"{sizes[name]:,}. {NOTHING}"
            )
