"""Artifact store on fsspec (a local folder by default, or s3:// and friends).

Bytes are written to a temporary name, fsynced and renamed: a file under its final name is
always complete. Names are content addresses (the SHA-256), so a retry or a crash before
registration leaves at most an unreferenced file. Every read checks the SHA-256, and the
HMAC-SHA256 when ``RETRAINER_SIGNING_KEY`` is set, before the bytes are handed out.

>>> import tempfile
>>> store = ArtifactStore(tempfile.mkdtemp(), signing_key=b"k")
>>> art = store.put("churn", b"model bytes")
>>> store.get(art.uri, art.sha256, art.hmac, what="churn 1.0.0")
b'model bytes'
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac as hmac_lib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..core.errors import IntegrityError, StoreUnavailable

SUFFIX = ".rtm"


@dataclass(frozen=True)
class StoredArtifact:
    uri: str
    sha256: str
    hmac: str | None
    size_bytes: int


def signing_key_from_env() -> bytes | None:
    key = os.environ.get("RETRAINER_SIGNING_KEY")
    return key.encode() if key else None


class ArtifactStore:
    def __init__(self, url: str, signing_key: bytes | None = None) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.signing_key = signing_key

    def _hmac(self, data: bytes) -> str | None:
        if self.signing_key is None:
            return None
        return hmac_lib.new(self.signing_key, data, hashlib.sha256).hexdigest()

    def uri_for(self, model: str, sha256: str) -> str:
        return f"{self.url}/{model}/{sha256}{SUFFIX}"

    def _path(self, uri: str) -> str:
        return str(self.fs._strip_protocol(uri))

    def put(self, model: str, data: bytes) -> StoredArtifact:
        sha = hashlib.sha256(data).hexdigest()
        uri = self.uri_for(model, sha)
        path = self._path(uri)
        parent = path.rsplit("/", 1)[0]
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}{SUFFIX}"
        try:
            self.fs.makedirs(parent, exist_ok=True)
            if self.local:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
                dir_fd = os.open(parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            else:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot write the artifact for model {model!r} under {self.url}: {exc}. "
                "Check that the artifact location exists and is writable."
            ) from None
        return StoredArtifact(uri, sha, self._hmac(data), len(data))

    def get(self, uri: str, sha256: str, hmac: str | None, *, what: str) -> bytes:
        """The verified bytes of an artifact; ``what`` names the version in errors."""
        path = self._path(uri)
        try:
            with self.fs.open(path, "rb") as fh:
                data: bytes = fh.read()
        except FileNotFoundError:
            raise IntegrityError(
                f"The artifact of {what} is missing: {uri}. Restore it from a backup "
                "(`retrainer restore`) or retrain.",
                uri=uri,
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"The artifact of {what} at {uri} does not match its recorded SHA-256 "
                f"(expected {sha256[:12]}…, got {actual[:12]}…): it was changed or corrupted. "
                "It was not loaded. Restore it from a backup or roll back to another version.",
                uri=uri,
            )
        if hmac is not None:
            if self.signing_key is None:
                raise IntegrityError(
                    f"The artifact of {what} is signed but RETRAINER_SIGNING_KEY is not set, so "
                    "its signature cannot be checked. Set the key it was signed with."
                )
            if not hmac_lib.compare_digest(self._hmac(data) or "", hmac):
                raise IntegrityError(
                    f"The artifact of {what} at {uri} fails its HMAC check: it was not signed "
                    "with the current RETRAINER_SIGNING_KEY. It was not loaded.",
                    uri=uri,
                )
        return data

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(uri))

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._path(uri)))

    def list_uris(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        found = self.fs.find(self.root)
        return [
            f"{self.url}/{Path(p).relative_to(self.root)}"
            for p in found
            if p.endswith(SUFFIX) and not Path(p).name.startswith(".tmp-")
        ]
