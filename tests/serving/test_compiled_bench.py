"""The compiled-inference bench's quick mode runs and writes its table (timings not asserted:
only that every tree family was compiled, verified and timed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from waits import SUBPROCESS

pytest.importorskip("onnxruntime", reason="the compiled extra: pip install 'retrainer[compiled]'")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_quick_compiled_bench_times_every_tree_family(tmp_path: Path) -> None:
    output = tmp_path / "b.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "compiled", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS,  # about 50 s on a busy 2-core machine
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    section = re.search(
        r"<!-- bench:compiled -->\n(.*?)<!-- /bench:compiled -->", output.read_text(), re.S
    )
    assert section, output.read_text()[:2000]
    body = section.group(1)
    for family in ("randomforest", "lightgbm", "xgboost", "catboost"):
        assert re.search(rf"^\| {family} \| .* \| \*\*[\d.]+×\*\* \|", body, re.M), body
    assert "served native" not in body and "(quick mode," in body
