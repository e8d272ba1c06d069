"""Output files: written whole, never through a planted link, with the mode a user expects."""

from __future__ import annotations

import os
from pathlib import Path

from retrainer.core.files import atomic_output


def test_an_output_gets_the_umask_mode_and_a_private_one_stays_0600(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "scores.csv", what="predict --out") as tmp:
            tmp.write_text("id,p\n")
        with atomic_output(tmp_path / "ws.tar.gz", what="backup", private=True) as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert oct((tmp_path / "scores.csv").stat().st_mode & 0o777) == "0o640"
    assert oct((tmp_path / "ws.tar.gz").stat().st_mode & 0o777) == "0o600"
