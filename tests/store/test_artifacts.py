from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.core.errors import IntegrityError
from retrainer.store import ArtifactStore


def test_put_is_content_addressed_and_verified(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    art = store.put("m", b"abc")
    assert art.uri.endswith(f"m/{art.sha256}.rtm") and art.size_bytes == 3 and art.hmac is None
    assert store.get(art.uri, art.sha256, None, what="m 1.0.0") == b"abc"
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp")]


def test_tampered_bytes_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    art = store.put("m", b"abc")
    Path(art.uri).write_bytes(b"abd")
    with pytest.raises(
        IntegrityError, match=r"m 1\.0\.0 at .* does not match its recorded SHA-256"
    ):
        store.get(art.uri, art.sha256, None, what="m 1.0.0")


def test_hmac_signed_and_checked(tmp_path: Path) -> None:
    signed = ArtifactStore(str(tmp_path), signing_key=b"k1")
    art = signed.put("m", b"abc")
    assert art.hmac is not None
    other = ArtifactStore(str(tmp_path), signing_key=b"k2")
    with pytest.raises(IntegrityError, match="HMAC"):
        other.get(art.uri, art.sha256, art.hmac, what="m 1.0.0")
    unsigned = ArtifactStore(str(tmp_path))
    with pytest.raises(IntegrityError, match="RETRAINER_SIGNING_KEY is not set"):
        unsigned.get(art.uri, art.sha256, art.hmac, what="m 1.0.0")


def test_missing_file(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    art = store.put("m", b"abc")
    store.delete(art.uri)
    with pytest.raises(IntegrityError, match="missing"):
        store.get(art.uri, art.sha256, None, what="m 1.0.0")


def test_fsspec_memory_backend() -> None:
    store = ArtifactStore("memory://arts")
    art = store.put("m", b"xyz")
    assert store.get(art.uri, art.sha256, None, what="m") == b"xyz"
    assert store.list_uris() == [art.uri]
