"""The HTML report: self-contained, every chart drawn, and it renders in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retrainer.cli.main import app
from retrainer.core.spec import parse_spec
from retrainer.datasets import weather
from retrainer.lifecycle.demo import demo_spec
from retrainer.lifecycle.replay import ReplayConfig, replay
from retrainer.lifecycle.workspace import Workspace
from retrainer.report import build_report, write_report

CHARTS = (
    "live accuracy over time",
    "estimated vs realised performance",
    "per-feature drift heat map",
    "decision timeline",
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short replay: two years of training, two and a half replayed."""
    folder = tmp_path_factory.mktemp("report")
    raw = demo_spec(folder)
    raw["models"]["weather"]["params"] = {"n_estimators": 40, "num_threads": 1}
    (folder / "retrainer.yaml").write_text(__import__("yaml").safe_dump(raw))
    data = weather()[lambda d: d["date"] < "1953-07-01"]
    with Workspace(parse_spec(raw, environ={})) as ws:
        replay(ws, "weather", data, ReplayConfig(initial_days=730, maintain_every_days=28))
    return folder


def _svgs(html: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<svg[^>]*aria-label="([^"]+)".*?</svg>', html, re.S)
    }


def test_every_chart_is_drawn_and_nothing_is_fetched(workspace: Path) -> None:
    raw = parse_spec(demo_spec(workspace), environ={})
    with Workspace(raw) as ws:
        html = build_report(ws, "weather")
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
    assert "champion lineage: " in html and "1.0.0 (initial" in html


def test_the_report_shows_the_naive_baselines(workspace: Path) -> None:
    with Workspace(parse_spec(demo_spec(workspace), environ={})) as ws:
        html = build_report(ws, "weather")
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


def test_the_report_renders_in_headless_chromium(workspace: Path, tmp_path: Path) -> None:
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None, (
        "chromium is not installed: `make test` installs it with `make browser` (Debian "
        "packages chromium, chromium-driver; needs apt-get as root), or install them by hand"
    )
    with Workspace(parse_spec(demo_spec(workspace), environ={})) as ws:
        page = write_report(ws, "weather", tmp_path / "report.html")
    png = tmp_path / "out.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1400,2400",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(png).convert("RGB")
    assert image.size == (1400, 2400)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 500, f"only {len(colours)} distinct colours: the page looks blank"
    # the chart area (below the header) is not one flat colour either
    band = image.crop((100, 300, 1300, 700)).getcolors(maxcolors=1_000_000) or []
    assert len(band) > 50


def test_the_cli_writes_the_report(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = CliRunner().invoke(
        app, ["-c", str(workspace / "retrainer.yaml"), "report", "weather", "--out", str(out)]
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
