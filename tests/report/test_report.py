"""The HTML report on a 40-year history: self-contained, every chart drawn, the naive
baselines shown, written by the CLI (the browser checks are in test_ages.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrainer.apps.demo import demo_spec
from retrainer.cli.main import app
from retrainer.core.spec import parse_spec
from retrainer.plumbing.workspace import Workspace
from retrainer.report import build_report

CHARTS = (
    "live accuracy over time",
    "estimated vs realised performance",
    "per-feature drift heat map",
    "decision timeline",
)


MODEL = "stream"  # the model of every age in ages.py


@pytest.fixture(scope="module")
def workspace(aged_store: Any) -> Path:
    """The 40-year history of conftest's ``aged_store`` (ages.py)."""
    folder, _, model = aged_store("decades")
    assert model == MODEL
    return Path(folder)


def _spec(folder: Path) -> Any:
    return parse_spec(yaml.safe_load((folder / "retrainer.yaml").read_text()), environ={})


def _svgs(html: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<svg[^>]*aria-label="([^"]+)".*?</svg>', html, re.S)
    }


def test_every_chart_is_drawn_and_nothing_is_fetched(workspace: Path) -> None:
    raw = _spec(workspace)
    with Workspace(raw) as ws:
        html = build_report(ws, MODEL)
    svgs = _svgs(html)
    assert set(CHARTS) <= set(svgs)
    for name in CHARTS:
        shapes = len(re.findall(r"<(path|rect|circle) ", svgs[name]))
        assert shapes >= 5, f"chart {name!r} drew {shapes} shapes"
    for name in CHARTS[:2]:  # the line charts: a line through every month
        longest = max(p.count(" L") for p in re.findall(r'<path d="([^"]+)"', svgs[name]))
        assert longest >= 20, f"chart {name!r}: its longest line has {longest} segments"
    cells = re.findall(r"<title>\w+ \d{4}: PSI [\d.]+</title>", svgs[CHARTS[2]])
    assert len(cells) >= 8, "the drift heat map has no measured cells"
    dots = re.findall(r"<circle ", svgs[CHARTS[3]])
    assert len(dots) >= 20, "the decision timeline shows no decisions"
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    assert 'data-version="1.0.0"' in svgs["version lineage"]


def test_the_report_shows_the_naive_baselines(workspace: Path) -> None:
    with Workspace(_spec(workspace)) as ws:
        html = build_report(ws, MODEL)
    table = re.search(r'<table class="naive">(.*?)</table>', html, re.S)
    assert table is not None, "no naive baseline table"
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([\d,]+)</td><td>([^<]*)</td>",
                      table.group(1))  # fmt: skip
    names = [r[0] for r in rows]
    assert names[0] == "served" and {"naive:last", "naive:mean"} <= set(names)
    by_name = {r[0]: r for r in rows}
    assert by_name["naive:mean"][1] == "the majority class"
    served_n = int(by_name["served"][2].replace(",", ""))
    for name in ("naive:last", "naive:mean"):  # each actual once, the first has no guess
        assert served_n - 1 <= int(by_name[name][2].replace(",", "")) <= served_n
        assert 0 <= float(by_name[name][3]) <= 1
    live = _svgs(html)["live accuracy over time"]
    assert live.count('stroke-dasharray="5 3"') >= 2  # a dashed line per baseline
    assert "naive:last (the previous actual)" in live


def test_the_cli_writes_the_report(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        app, ["-c", str(workspace / "retrainer.yaml"), "report", MODEL, "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    r = CliRunner().invoke(app, ["-c", str(workspace / "retrainer.yaml"), "report", "nope"])
    assert r.exit_code == 2, r.output


def test_an_empty_model_still_gets_a_page(tmp_path: Path) -> None:
    spec = parse_spec(demo_spec(tmp_path), environ={})
    with Workspace(spec) as ws:
        html = build_report(ws, "weather")
    assert "<svg" in html and isinstance(pd.Timestamp.now(), pd.Timestamp)
