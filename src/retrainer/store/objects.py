"""Files at a URL (``s3://bucket/key`` and other fsspec file systems) for whole-file outputs
and inputs such as backups: written locally first and uploaded in one piece, or downloaded
to a local temporary file before anything reads them.

Credentials never appear in a URL retrainer prints: they come from the environment (for S3,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` ...), and a URL with
``user:password@`` is shown with the password replaced.

>>> is_url("s3://bucket/backups/x.tar.gz"), is_url("/var/backups/x.tar.gz"), is_url("file:///x")
(True, False, False)
>>> shown("s3://key:secret@bucket/x")
's3://key:***@bucket/x'
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

from ..core.errors import InputError, StoreUnavailable
from ..core.extras import missing_library

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:]*):[^/@]*@", re.IGNORECASE)
# Protocols whose top level is a bucket: makedirs there would create one, so it is never called
BUCKETED = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss"})


def is_url(path: str | Path) -> bool:
    """Whether ``path`` names a file on another file system than the local one."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def shown(url: str) -> str:
    """``url`` as it may be printed: a password in it replaced by ``***``."""
    return _USERINFO.sub(r"\1:***@", url)


def filesystem(url: str, *, what: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path in it; a ConfigError naming the extra
    when its library is not installed."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise missing_library(f"{what} {shown(url)!r}", exc) from None
    return fs, str(path)


def bucketed(fs: Any) -> bool:
    """Whether ``fs`` is an object store (its top level a bucket: no folders to make)."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return bool(BUCKETED.intersection(protocols))


def upload(local: Path, url: str, *, what: str) -> None:
    """Copy the finished file ``local`` to ``url`` in one put (an object store shows the
    object only once complete). StoreUnavailable naming the URL when it cannot be written."""
    fs, path = filesystem(url, what=what)
    try:
        if not bucketed(fs):
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(local), path)
    except OSError as exc:
        raise StoreUnavailable(
            f"Cannot write the {what} to {shown(url)}: {type(exc).__name__}: {exc}. Check that "
            "the bucket or folder exists and that the credentials in the environment may "
            "write there.",
            url=shown(url),
        ) from None


@contextlib.contextmanager
def downloaded(url: str, *, what: str) -> Iterator[Path]:
    """A local temporary copy of the file at ``url``, removed afterwards; InputError naming
    the URL when there is no such file, StoreUnavailable when it cannot be read."""
    fs, path = filesystem(url, what=what)
    with tempfile.TemporaryDirectory(prefix="retrainer-") as tmp:
        local = Path(tmp) / "download"
        try:
            fs.get_file(path, str(local))
        except FileNotFoundError:
            raise InputError(
                f"The {what} {shown(url)} does not exist. Give the URL `retrainer backup` "
                "wrote (see `--json` of that command).",
                url=shown(url),
            ) from None
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot read the {what} at {shown(url)}: {type(exc).__name__}: {exc}. "
                "Check the URL and the credentials in the environment.",
                url=shown(url),
            ) from None
        yield local
