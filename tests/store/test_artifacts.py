from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from retrainer.core.errors import InputError, IntegrityError
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
    (tmp_path / art.uri).write_bytes(b"abd")
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


# ---- URIs relative to the root; nothing outside it is read or deleted -------------------
def test_uris_are_relative_to_the_root_and_old_absolute_ones_under_it_still_read(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(str(tmp_path / "arts"))
    art = store.put("churn", b"abc")
    assert art.uri == f"churn/{art.sha256}.rtm"
    assert (tmp_path / "arts" / art.uri).read_bytes() == b"abc"
    for old in (f"{tmp_path}/arts/{art.uri}", f"file://{tmp_path}/arts/{art.uri}"):
        assert store.get(old, art.sha256, None, what="churn 1.0.0") == b"abc"
        assert store.exists(old)
    assert store.list_uris() == [art.uri]


@pytest.mark.parametrize(
    "uri",
    [
        "../outside/churn/{sha}.rtm",
        "churn/../../outside/churn/{sha}.rtm",
        "{tmp}/outside/churn/{sha}.rtm",  # another folder, absolute
        "file://{tmp}/outside/churn/{sha}.rtm",
        "{tmp}/arts/../outside/churn/{sha}.rtm",
        "s3://bucket/churn/{sha}.rtm",  # another file system
        "churn/{sha}.txt",
        "../x/{sha}.rtm",
        "churn/notes.rtm",
    ],
)
def test_a_uri_outside_the_root_is_never_read_nor_deleted(tmp_path: Path, uri: str) -> None:
    store = ArtifactStore(str(tmp_path / "arts"))
    art = store.put("churn", b"abc")
    outside = tmp_path / "outside" / "churn" / f"{art.sha256}.rtm"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"abc")
    bad = uri.format(sha=art.sha256, tmp=tmp_path)
    with pytest.raises(IntegrityError, match=r"churn 1\.0\.0 .* does not name an artifact under"):
        store.get(bad, art.sha256, None, what="churn 1.0.0")
    with pytest.raises(IntegrityError, match="nothing was read or deleted"):
        store.delete(bad)
    assert outside.read_bytes() == b"abc" and store.exists(art.uri)


@pytest.mark.parametrize("name", ["../x", "a/b", "", "x\n", ".hidden", "1abc", "a" * 65])
def test_a_model_name_that_is_not_valid_never_reaches_a_path(tmp_path: Path, name: str) -> None:
    store = ArtifactStore(str(tmp_path / "arts"))
    with pytest.raises(InputError, match=r"artifact store: model name .* is not valid"):
        store.put(name, b"abc")
    assert not (tmp_path / "arts").exists() and not list(tmp_path.rglob("*.rtm"))


def test_a_remote_store_reads_its_own_urls_only() -> None:
    store = ArtifactStore("memory://remote-arts")
    art = store.put("m", b"xyz")
    own = f"memory://remote-arts/{art.uri}"
    assert store.get(own, art.sha256, None, what="m") == b"xyz"
    for other in (f"memory://elsewhere/{art.uri}", f"/remote-arts/{art.uri}"):
        with pytest.raises(IntegrityError, match="does not name an artifact under"):
            store.get(other, art.sha256, None, what="m")


# ---- with a signing key, every load needs a valid signature ------------------------------
def test_with_a_key_an_unsigned_artifact_is_refused(tmp_path: Path) -> None:
    art = ArtifactStore(str(tmp_path)).put("m", b"abc")  # made before the key was set
    keyed = ArtifactStore(str(tmp_path), signing_key=b"k1")
    with pytest.raises(IntegrityError, match=r"m 1\.0\.0 at .* is unsigned.*retrainer sign"):
        keyed.get(art.uri, art.sha256, None, what="m 1.0.0")
    assert keyed.get(art.uri, art.sha256, None, what="m", allow_unsigned=True) == b"abc"


def test_with_a_key_a_replaced_file_with_an_edited_hash_is_refused(tmp_path: Path) -> None:
    """The crafted row: the file replaced, the row's SHA-256 edited to match it, the HMAC kept
    or removed. Without a key the hash matches and the bytes load (the hash detects damage,
    not tampering); with a key both variants are refused."""
    keyed = ArtifactStore(str(tmp_path), signing_key=b"k1")
    art = keyed.put("m", b"the real model")
    evil = b"someone else's model"
    path = tmp_path / art.uri
    path.write_bytes(evil)
    edited = hashlib.sha256(evil).hexdigest()
    assert ArtifactStore(str(tmp_path)).get(art.uri, edited, None, what="m") == evil
    with pytest.raises(IntegrityError, match="is unsigned"):
        keyed.get(art.uri, edited, None, what="m 1.0.0")
    with pytest.raises(IntegrityError, match="fails its HMAC check"):
        keyed.get(art.uri, edited, art.hmac, what="m 1.0.0")
