"""Smoke test of the benchmark runner: each fast bench's quick mode runs and writes its section.

Left out: serving (needs wrk). The six below took 7–17 s each in quick mode on a 2-core
machine; quality's quick mode (a year of weather, the approval regression stream) 60-70 s
of CPU on two worker processes (100 s wall on a loaded machine).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from waits import SUBPROCESS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
QUICK_BENCHES = ["drift", "families", "finetune", "monitoring", "ingestion", "scale"]


@pytest.mark.parametrize("name", QUICK_BENCHES)
def test_quick_bench_writes_its_section(name: str, tmp_path: Path) -> None:
    output = tmp_path / "b.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", name, "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS,  # about 15 s each on a quiet machine
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = output.read_text()
    section = re.search(rf"<!-- bench:{name} -->\n(.*?)<!-- /bench:{name} -->", page, re.S)
    assert section, page[:2000]
    assert re.search(r"^\|---\|", section.group(1), re.M), section.group(1)[:2000]
    assert "(quick mode," in section.group(1)


def test_quick_quality_scores_a_classification_and_a_regression_stream(tmp_path: Path) -> None:
    output = tmp_path / "b.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "quality", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS,  # 100 s on a loaded 2-core machine
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = output.read_text()
    tables = re.findall(r"^### ([^\n]*)\n\n(\|.*?)\n\n", page, re.M | re.S)
    kinds = {title.split("(")[1].split(",")[0] for title, _ in tables}
    assert kinds == {"classification", "regression"}, page[:3000]
    for _title, body in tables:
        assert body.count("(best naive baseline)") == 1, body
        assert "retrainer policy, default spec" in body and "River ARF" in body, body
    regression = next(body for title, body in tables if "regression" in title)
    assert regression.startswith("| strategy | MAE | 95% interval | RMSE |"), regression
    assert "| previous actual" in regression and "| mean of the actuals so far" in regression
    assert "tuned spec" not in regression  # a classification spec: regression runs the default
    assert re.search(r"default spec, choices: ", page), page[-3000:]
    assert page.count("the best naive baseline (") >= 3  # a verdict per retrainer row


def test_a_rerun_keeps_the_peer_versions_of_the_sections_it_keeps(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    try:
        from bench.__main__ import write_page
    finally:
        sys.path.remove(str(REPO))
    output = tmp_path / "b.md"
    output.write_text(
        "# Benchmarks\n\n- Versions: python 3.0, mlflow 3.17.2 (own venv), "
        "evidently 0.7.23 (own venv, pandas 2.3.3)\n\n"
        "<!-- bench:serving -->\nold serving\n<!-- /bench:serving -->\n"
    )
    write_page(output, {"ingestion": "<!-- bench:ingestion -->\nnew\n<!-- /bench:ingestion -->\n"})
    page = output.read_text()
    assert (
        "mlflow 3.17.2 (own venv)" in page and "evidently 0.7.23 (own venv, pandas 2.3.3)" in page
    )
    assert "python 3.0" not in page and "old serving" in page and "\nnew\n" in page
