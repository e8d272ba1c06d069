"""Where a backup goes: a new folder is made for it; one that cannot be made is a clear
error with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from retrainer.core.errors import InputError
from retrainer.lifecycle.backup import backup
from retrainer.lifecycle.workspace import Workspace


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
