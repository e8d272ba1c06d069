"""The report at any age: a model one day old, one a month old and a 40-year history. Checked
from the SVG itself: tick labels never repeat, time ticks lie inside the data's span without
stretching past it, no empty chart frame (an empty state says what is missing), dry runs apart
from the decisions taken, a long reason whole in its title, the lineage tree's edges equal to
the parent links; then each page once in headless Chromium (screenshots optionally kept)."""

from __future__ import annotations

import html as htmllib
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrainer.apps.demo import demo_spec
from retrainer.core.spec import parse_spec
from retrainer.plumbing.workspace import Workspace
from retrainer.report import build_report, write_report

from .ages import LONG_REASON

AGES = ("day", "month", "decades")
TIME_CHARTS = ("estimated vs realised performance", "decision timeline")
SHOT_NAMES = {
    "day": "report-young.png",
    "month": "report-month.png",
    "decades": "report-decades.png",
}


def _svgs(page: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<svg[^>]*aria-label="([^"]+)".*?</svg>', page, re.S)
    }


def _ticks(svg: str, axis: str) -> list[tuple[str, dict[str, str]]]:
    """(label, attributes) of each tick label on ``axis`` (x or y)."""
    out = []
    for m in re.finditer(rf'<text class="{axis}tick"([^>]*)>([^<]*)</text>', svg):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        out.append((htmllib.unescape(m.group(2)), attrs))
    return out


@pytest.fixture(scope="module", params=AGES)
def page(request: pytest.FixtureRequest, aged_store: Any) -> dict[str, Any]:
    folder, raw, model = aged_store(request.param)
    with Workspace(parse_spec(raw, environ={})) as ws:
        text = build_report(ws, model)
        span = ws.store.monitor_span(model)
        decisions = ws.store.decisions(model, limit=100_000)
        versions = ws.store.list_versions(model)
        roles = ws.store.roles(model)
    assert span is not None, f"the {request.param} store has no monitored predictions"
    return {"age": request.param, "html": text, "svgs": _svgs(text), "span": span,
            "decisions": decisions, "versions": versions, "roles": roles, "folder": folder,
            "raw": raw, "model": model}  # fmt: skip


def test_tick_labels_never_repeat(page: dict[str, Any]) -> None:
    for name, svg in page["svgs"].items():
        for axis in ("x", "y"):
            labels = [label for label, _ in _ticks(svg, axis)]
            assert len(labels) == len(set(labels)), f"{page['age']}: {name} {axis} ticks {labels}"
    live = page["svgs"][f"live {_metric(page)} over time"]
    assert len(_ticks(live, "y")) >= 3 and len(_ticks(live, "x")) >= 2, live[:300]


def _metric(page: dict[str, Any]) -> str:
    return "accuracy"


def test_time_axes_span_the_data_only(page: dict[str, Any]) -> None:
    first, last = page["span"]
    last += timedelta(hours=1)
    taken = [d.taken_at for d in page["decisions"] if not d.dry_run]
    spans = {
        f"live {_metric(page)} over time": (first, last),
        "estimated vs realised performance": (first, last),
        "decision timeline": (min(taken), max(taken)),
    }
    for name, (lo, hi) in spans.items():
        ticks = _ticks(page["svgs"][name], "x")
        times = [datetime.fromisoformat(a["data-t"]) for _, a in ticks]
        xs = [float(a["x"]) for _, a in ticks]
        assert times == sorted(times) and xs == sorted(xs), f"{page['age']}: {name} {ticks}"
        assert all(64 <= x <= 1176 for x in xs), f"{page['age']}: {name} tick off the plot {xs}"
        # a bucket's point sits mid-bucket: allow one bucket (at most a month) either side
        slack = {"day": timedelta(hours=1), "month": timedelta(days=1)}.get(
            page["age"], timedelta(days=31)
        )
        assert lo - slack <= times[0] and times[-1] <= hi + slack, (
            f"{page['age']}: {name} ticks {times[0]}..{times[-1]} outside the data {lo}..{hi}"
        )
        step = times[1] - times[0] if len(times) > 1 else hi - lo
        assert times[0] - lo <= step * 1.1 + slack and hi - times[-1] <= step * 1.1 + slack, (
            f"{page['age']}: {name} axis stretched past the data: ticks {times[0]}..{times[-1]}, "
            f"data {lo}..{hi}"
        )


def test_no_empty_chart_frame(page: dict[str, Any]) -> None:
    for name, svg in page["svgs"].items():
        empty = re.search(r'<text class="empty"[^>]*>([^<]+)<', svg)
        drawn = len(re.findall(r"<(path|circle|rect) ", svg))
        if empty:
            assert "yet" in empty.group(1) or "No " in empty.group(1), empty.group(1)
        elif name == "version lineage":
            assert '<g class="node"' in svg, f"{page['age']}: the lineage has no node"
        else:
            assert drawn >= 3, f"{page['age']}: chart {name!r} is an empty frame"
    for name in (f"live {_metric(page)} over time", "estimated vs realised performance"):
        assert 'class="empty"' not in page["svgs"][name], f"{page['age']}: {name} is empty"
    drift = page["svgs"]["per-feature drift heat map"]
    if page["age"] == "decades":
        labels = [label for label, _ in _ticks(drift, "x")]
        years = sorted({int(s) for s in labels})
        assert len(re.findall(r"<title>\w+ \d{4}: PSI [\d.]+</title>", drift)) >= 40
        # the replayed years only (1969 to 2008), each labelled once
        assert years[0] >= 1968 and years[-1] <= 2009 and len(years) == len(labels), labels
    else:
        assert "No drift checks yet" in drift or "PSI" in drift


def test_dry_runs_apart_and_reasons_whole(page: dict[str, Any]) -> None:
    text = page["html"]
    taken = re.search(r"<section id='decisions-taken'>(.*?)</section>", text, re.S)
    dry = re.search(r"<section id='dry-runs'>(.*?)</section>", text, re.S)
    assert taken and dry
    assert "dry run" not in taken.group(1).lower()
    n_dry = sum(d.dry_run for d in page["decisions"])
    assert n_dry >= 1 and dry.group(1).count("<tr>") == n_dry + 1  # + the head row
    n_taken = sum(not d.dry_run and d.action != "nothing" for d in page["decisions"])
    assert taken.group(1).count("<tr>") == min(n_taken, 400) + 1
    cells = re.findall(r'<td title="([^"]*)">([^<]*)</td>', taken.group(1))
    long = [(htmllib.unescape(t), htmllib.unescape(s)) for t, s in cells if "degradation thr" in t]
    assert long and long[0][0] == LONG_REASON, "the long reason is not whole in its title"
    shown = long[0][1]
    assert shown.endswith("…") and LONG_REASON.startswith(shown[:-1])
    assert LONG_REASON[len(shown) - 1] in " ,;:", f"cut mid-word: {shown!r}"
    for title, short in re.findall(r'<td title="([^"]*)">([^<]*)</td>', text):
        assert htmllib.unescape(title).startswith(htmllib.unescape(short)[:-1])


def test_lineage_is_a_tree_of_the_parent_links(page: dict[str, Any]) -> None:
    svg = page["svgs"]["version lineage"]
    edges = set(re.findall(r'<path class="edge" data-from="([^"]*)" data-to="([^"]*)"', svg))
    names = {v.version for v in page["versions"]}
    assert edges == {(v.parent, v.version) for v in page["versions"] if v.parent in names}
    nodes = dict(re.findall(r'<g class="node" data-version="([^"]*)"[^>]*data-role="(\w+)"', svg))
    assert set(nodes) == names
    assert [n for n, role in nodes.items() if role == "champion"] == [page["roles"].champion]
    kinds = set(re.findall(r'data-kind="(\w+)"', svg))
    assert kinds <= {"initial", "full_retrain", "fine_tune", "incremental_update", "import"}
    if page["age"] == "decades":
        assert "full_retrain" in kinds and len(nodes) >= 3


def test_an_empty_model_says_what_is_missing(tmp_path: Path) -> None:
    with Workspace(parse_spec(demo_spec(tmp_path), environ={})) as ws:
        svgs = _svgs(build_report(ws, "weather"))
    assert "No labelled predictions yet" in svgs["live accuracy over time"]
    assert "No drift checks yet" in svgs["per-feature drift heat map"]
    assert "No decisions taken yet" in svgs["decision timeline"]
    assert "No versions yet" in svgs["version lineage"]


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None, (
        "chromium is not installed: `make test` installs it with `make browser` (Debian "
        "packages chromium, chromium-driver; needs apt-get as root), or install them by hand"
    )
    return browser


def screenshot(page: Path, png: Path, profile: Path, size: tuple[int, int]) -> None:
    """The page in headless Chromium, saved as ``png`` (window ``size``)."""
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
         f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def test_each_age_renders_in_headless_chromium(page: dict[str, Any], tmp_path: Path) -> None:
    """One page load per age. SAVE_REPORT_SHOTS=docs/img keeps a small copy of each."""
    from PIL import Image

    with Workspace(parse_spec(page["raw"], environ={})) as ws:
        out = write_report(ws, page["model"], tmp_path / "report.html")
    png = tmp_path / "shot.png"
    screenshot(out, png, tmp_path / "profile", (1280, 2300))
    image = Image.open(png).convert("RGB")
    assert image.size == (1280, 2300)
    colours = image.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 500, f"only {len(colours)} distinct colours: the page looks blank"
    chart = image.crop((80, 250, 1200, 650)).getcolors(maxcolors=1_000_000) or []
    assert len(chart) > 50, "the live chart area is one flat colour"
    keep = os.environ.get("SAVE_REPORT_SHOTS")
    if keep:
        small = image.resize((960, 1725), Image.Resampling.LANCZOS)
        small = small.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        small.save(Path(keep) / SHOT_NAMES[page["age"]], optimize=True)
