"""Artifact store on fsspec (a local folder by default, or s3:// and friends).

Bytes are written to a temporary name, fsynced and renamed (on an object store such as S3, one
PUT, which shows the object whole or not at all): a file under its final name is always
complete. Names are content addresses (the SHA-256), so a retry or a crash before
registration leaves at most an unreferenced file. Every read checks the SHA-256, and when
``RETRAINER_SIGNING_KEY`` is set, a valid HMAC-SHA256 is required (an unsigned artifact is
refused like a wrongly signed one) before the bytes are handed out.

URIs are relative to the artifact root (``churn/<sha256>.rtm``), so a copied workspace
reads and deletes its own files, never the original's. Every URI resolves to
``<root>/<model>/<sha256>.rtm`` with a valid model name: an old absolute URI is read when it
lies under the root, and anything else (``..``, another folder, another file system) is
refused before any file is opened or deleted.

>>> import tempfile
>>> store = ArtifactStore(tempfile.mkdtemp(), signing_key=b"k")
>>> art = store.put("churn", b"model bytes")
>>> art.uri == f"churn/{art.sha256}.rtm"
True
>>> store.get(art.uri, art.sha256, art.hmac, what="churn 1.0.0")
b'model bytes'
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac as hmac_lib
import os
import posixpath
import re
import uuid
from dataclasses import dataclass

from fsspec.implementations.local import LocalFileSystem

from ..core.errors import IntegrityError, StoreUnavailable
from ..core.names import MODEL_NAME, check_model_name
from .objects import bucketed, filesystem, shown

SUFFIX = ".rtm"
# The only shape a stored artifact has under the root: <model>/<sha256>.rtm
_KEY = re.compile(rf"({MODEL_NAME.pattern})/([0-9a-f]{{64}}){re.escape(SUFFIX)}")


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
        self.where = shown(self.url)  # the URL as messages show it (no password)
        # s3:// and friends need their fsspec package (a ConfigError naming the extra)
        self.fs, root = filesystem(self.url, what="Artifact store URL")
        self.local = isinstance(self.fs, LocalFileSystem)
        self.bucketed = bucketed(self.fs)  # an object store: no folders to make
        self._writable = False
        self.root = self._norm(str(root)).rstrip("/") or "/"
        self.signing_key = signing_key

    def _hmac(self, data: bytes) -> str | None:
        if self.signing_key is None:
            return None
        return hmac_lib.new(self.signing_key, data, hashlib.sha256).hexdigest()

    def sign(self, data: bytes) -> str:
        """The HMAC of ``data`` under the signing key (the caller checks that one is set).

        >>> ArtifactStore("memory://s", signing_key=b"k").sign(b"x")[:12]
        'c38edc8815c8'
        """
        mac = self._hmac(data)
        assert mac is not None, "sign() needs a signing key"
        return mac

    def _norm(self, path: str) -> str:
        return os.path.normpath(path) if self.local else posixpath.normpath(path)

    def uri_for(self, model: str, sha256: str) -> str:
        """The root-relative URI of ``model``'s artifact with this SHA-256."""
        check_model_name(model, where="artifact store")
        key = f"{model}/{sha256}{SUFFIX}"
        if not _KEY.fullmatch(key):
            raise IntegrityError(f"{sha256!r} is not a SHA-256 hex digest.")
        return key

    def key(self, uri: str, *, what: str = "an artifact") -> str:
        """The root-relative key ``<model>/<sha256>.rtm`` of ``uri``; IntegrityError when it
        does not name a file of this store (outside the root, another file system, not an
        artifact name).

        >>> store = ArtifactStore("memory://arts")
        >>> sha = "b" * 64
        >>> store.key(f"memory://arts/m/{sha}.rtm") == store.key(f"m/{sha}.rtm") == f"m/{sha}.rtm"
        True
        >>> store.key("../../etc/passwd")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        retrainer.core.errors.IntegrityError: The artifact URI of an artifact ('../../etc/...
        """
        rel: str | None = uri
        if "://" in uri or uri.startswith("/"):
            rel = None
            proto = self.url.split("://", 1)[0] + "://" if "://" in self.url else "file://"
            if uri.startswith(proto) or (self.local and "://" not in uri):
                path = self._norm(str(self.fs._strip_protocol(uri)))
                if path.startswith(self.root.rstrip("/") + "/"):
                    rel = path[len(self.root.rstrip("/")) + 1 :]
        if rel is None or not _KEY.fullmatch(rel):
            raise IntegrityError(
                f"The artifact URI of {what} ({uri!r}) does not name an artifact under the "
                f"artifact folder {self.where}: retrainer reads and deletes only "
                f"<folder>/<model>/<sha256>{SUFFIX} files there. The registry row was edited "
                "or comes from another workspace; nothing was read or deleted. Restore the "
                "version from a backup or retrain.",
                uri=uri,
            )
        return rel

    def location(self, uri: str, *, what: str = "an artifact") -> str:
        """Where ``uri`` lies: the store's URL joined with its key (for messages and tools)."""
        return f"{self.where}/{self.key(uri, what=what)}"

    def _path(self, uri: str, *, what: str = "an artifact") -> str:
        return f"{self.root.rstrip('/')}/{self.key(uri, what=what)}"

    def put(self, model: str, data: bytes) -> StoredArtifact:
        sha = hashlib.sha256(data).hexdigest()
        uri = self.uri_for(model, sha)
        path = self._path(uri)
        parent = path.rsplit("/", 1)[0]
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}{SUFFIX}"
        try:
            if not self.bucketed:
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
            elif self.bucketed:  # one PUT: the object appears whole or not at all
                self.fs.pipe_file(path, data)
            else:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a failed write leaves no temporary file
                if self.local:
                    os.unlink(tmp)
                else:
                    self.fs.rm_file(tmp)
            raise StoreUnavailable(
                f"Cannot write the artifact for model {model!r} under {self.where}: {exc}. "
                "Check that the artifact location exists and is writable."
            ) from None
        return StoredArtifact(uri, sha, self._hmac(data), len(data))

    def check_writable(self) -> None:
        """Write and remove a small probe file under the root (once per store object), so a
        location that cannot be written (a missing bucket, read-only credentials, a read-only
        folder) fails before any training, with StoreUnavailable naming the URL.

        >>> ArtifactStore("memory://probe").check_writable()
        """
        if self._writable:
            return
        probe = f"{self.root.rstrip('/')}/.probe-{uuid.uuid4().hex}"
        try:
            if not self.bucketed:
                self.fs.makedirs(self.root, exist_ok=True)
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except OSError as exc:
            raise StoreUnavailable(
                f"The artifact store {self.where} cannot be written: {type(exc).__name__}: "
                f"{exc}. Nothing was trained. Check that the bucket or folder exists and that "
                "the credentials in the environment (for S3: AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL) may write there.",
                url=self.where,
            ) from None
        self._writable = True

    def get(
        self, uri: str, sha256: str, hmac: str | None, *, what: str, allow_unsigned: bool = False
    ) -> bytes:
        """The verified bytes of an artifact; ``what`` names the version in errors.

        With a signing key, an unsigned artifact (``hmac`` None) is refused unless
        ``allow_unsigned`` (only for signing it: :mod:`retrainer.lifecycle.signing`)."""
        path = self._path(uri, what=what)
        where = self.location(uri, what=what)
        try:
            with self.fs.open(path, "rb") as fh:
                data: bytes = fh.read()
        except FileNotFoundError:
            raise IntegrityError(
                f"The artifact of {what} is missing: {where}. Restore it from a backup "
                "(`retrainer restore`), copy the file there, or retrain.",
                uri=uri,
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"The artifact of {what} at {where} does not match its recorded SHA-256 "
                f"(expected {sha256[:12]}…, got {actual[:12]}…): it was changed or corrupted. "
                "It was not loaded. Restore it from a backup or roll back to another version.",
                uri=uri,
            )
        if self.signing_key is not None and hmac is None and not allow_unsigned:
            model = self.key(uri).split("/", 1)[0]
            raise IntegrityError(
                f"The artifact of {what} at {where} is unsigned, and RETRAINER_SIGNING_KEY "
                "is set: with a key, every artifact must carry a valid signature to load. It "
                "was not loaded. If the version was made before the key was set and you trust "
                f"its file, sign it once with `retrainer sign {model}`; otherwise retrain it, "
                f"or import it again (`retrainer deploy {model} --from-file`) with the key set.",
                uri=uri,
            )
        if hmac is not None:
            if self.signing_key is None:
                raise IntegrityError(
                    f"The artifact of {what} is signed but RETRAINER_SIGNING_KEY is not set, so "
                    "its signature cannot be checked. Set the key it was signed with."
                )
            if not hmac_lib.compare_digest(self.sign(data), hmac):
                raise IntegrityError(
                    f"The artifact of {what} at {where} fails its HMAC check: it was not signed "
                    "with the current RETRAINER_SIGNING_KEY. It was not loaded.",
                    uri=uri,
                )
        return data

    def delete(self, uri: str, *, what: str = "an artifact") -> None:
        """Remove an artifact's file; a URI outside the root is refused, never followed."""
        path = self._path(uri, what=what)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._path(uri)))

    def list_uris(self) -> list[str]:
        """The root-relative URIs of every artifact file under the root."""
        if not self.fs.exists(self.root):
            return []
        prefix = self.root.rstrip("/") + "/"
        found = (self._norm(str(p)) for p in self.fs.find(self.root))
        return sorted(
            p[len(prefix) :]
            for p in found
            if p.startswith(prefix) and _KEY.fullmatch(p[len(prefix) :])
        )
