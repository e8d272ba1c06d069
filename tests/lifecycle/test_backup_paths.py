"""Where a backup goes: a new folder is made for it; one that cannot be made is a clear
error with nothing written; a link planted at its temporary name is never written through."""

from __future__ import annotations

import os
import random
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from retrainer.apps.backup import backup
from retrainer.core import files
from retrainer.core.errors import InputError
from retrainer.plumbing.workspace import Workspace


def test_backup_makes_its_folder(make_workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    ws = make_workspace()
    target = tmp_path / "backups" / "nightly" / "store.tar.gz"
    result = backup(ws, target)
    assert target.exists() and result.path == str(target)


def test_backup_under_a_file_is_a_clear_error(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(InputError, match="backup: cannot create the folder"):
        backup(ws, tmp_path / "taken" / "store.tar.gz")
    assert not list(tmp_path.glob("taken*/**/*.partial"))


class _Names:
    """uuid4 stand-in: the first name is the one a symlink was planted at, then fresh ones."""

    def __init__(self, planted: str) -> None:
        self.given = [planted]

    def __call__(self) -> uuid.UUID:
        if self.given:
            return uuid.UUID(self.given.pop(0))
        return uuid.UUID(int=random.getrandbits(128))


def test_backup_never_writes_through_a_link_at_its_temporary_name(
    make_workspace: Callable[..., Workspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out" / "store.tar.gz"
    target.parent.mkdir()
    planted = "0123456789abcdef0123456789abcdef"
    links = [target.with_name(f".{target.name}.{h}.partial") for h in (planted, planted[:8])]
    for link in links:  # the name as written now, and its short form of earlier releases
        link.symlink_to(victim)
    monkeypatch.setattr(files.uuid, "uuid4", _Names(planted))
    backup(ws, target)
    assert victim.read_text() == "precious"  # the link was not followed
    assert all(os.readlink(link) == str(victim) for link in links)  # nor removed
    assert target.is_file() and not target.is_symlink()
    assert tarfile.is_tarfile(target) and oct(target.stat().st_mode & 0o777) == "0o600"


def test_every_temporary_name_taken_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    planted = "fedcba9876543210fedcba9876543210"
    tmp_path.joinpath(f".{target.name}.{planted}.partial").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setattr(files.uuid, "uuid4", lambda: uuid.UUID(planted))
    taken = pytest.raises(InputError, match=r"fresh temporary names beside .* were all taken")
    with taken, files.atomic_output(target, what="report --out") as tmp:
        tmp.write_text("never")
    assert not (tmp_path / "elsewhere").exists() and not target.exists()
