"""A full disk during the artifact write of `train --deploy`: a clear error naming the
artifact location and the disk (exit 1), the previous champion still serving, nothing
registered without its artifact and nothing half-written left on the full disk.

The artifacts live on a 2 MB tmpfs mounted by the test (as root; unmounted in a finally)
and filled up before the run; the store stays on the ordinary disk.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from faulthelp import MODEL, Ledger, check_workspace, child_env, write_config

from retrainer.core.spec import load_spec
from retrainer.datasets import weather
from retrainer.lifecycle.ingest import ingest_frame
from retrainer.lifecycle.train import train
from retrainer.plumbing.workspace import Workspace

pytestmark = pytest.mark.slow
SIZE = "2m"
RUN_LIMIT = 600  # seconds for one `train` subprocess: about 3 s on a quiet machine


@contextmanager
def small_filesystem(folder: Path) -> Iterator[Path]:
    """A ``SIZE`` tmpfs mounted at ``folder`` (made), unmounted afterwards."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, (
        f"could not mount a {SIZE} tmpfs at {folder} (the test needs root or CAP_SYS_ADMIN): "
        f"{mounted.stderr.strip()}"
    )
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write one file until the file system is full; return it."""
    filler = folder / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as fh, suppress(OSError):
        while fh.write(block):
            pass
    return filler


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, Path, str, set[str]]]:
    """A workspace whose artifacts lie on a full small file system, with a champion trained
    before it filled up; yields (config, artifact folder, champion, files before)."""
    data = weather()
    with small_filesystem(tmp_path / "small") as small:
        config = write_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", str(small))
        with Workspace(load_spec(config, environ={})) as ws:
            ingest_frame(ws, MODEL, data[data["date"] < "1953-01-01"])
            champion = train(ws, MODEL, deploy=True).version.version
        kept = {p.name for p in small.rglob("*") if p.is_file()} | {"filler"}
        fill(small)
        yield config, small, champion, kept


def train_deploy(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrainer.cli.main", "-c", str(config), "train", MODEL, "--deploy"],
        cwd=config.parent,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        check=False,
    )


def test_disk_full_during_the_artifact_write_keeps_the_champion(
    full_disk: tuple[Path, Path, str, set[str]], tmp_path: Path
) -> None:
    config, small, champion, _kept = full_disk
    with Workspace(load_spec(config, environ={})) as ws:
        versions = [v.version for v in ws.store.list_versions(MODEL)]
    run = train_deploy(config)
    said = " ".join(run.stderr.split())
    assert run.returncode == 1, said
    assert "Traceback" not in run.stderr, run.stderr
    assert str(small) in said, said  # where
    assert "No space left on device" in said, said  # why
    with Workspace(load_spec(config, environ={})) as ws:
        assert ws.store.roles(MODEL).champion == champion
        assert [v.version for v in ws.store.list_versions(MODEL)] == versions  # none half-made
    sample = tmp_path / "sample.csv"
    weather().head(20).drop(columns=["rain"]).to_csv(sample, index=False)
    assert check_workspace(config, Ledger(had_champion=True), sample, tmp_path) == []


def test_a_failed_artifact_write_leaves_no_temporary_file(
    full_disk: tuple[Path, Path, str, set[str]],
) -> None:
    config, small, _champion, kept = full_disk
    assert train_deploy(config).returncode == 1
    left = {p.name for p in small.rglob("*") if p.is_file()} - kept
    assert not left, f"the failed write left {left} on the full disk"
