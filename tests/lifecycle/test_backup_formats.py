"""Backups of formats 1 and 2 (training rows and actuals as table lines; format 1 also kept
each prediction's features on its row) still restore: rows become segments, features become
one-row inputs. Their lines are checked like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backup_craft import (
    KEY,
    MODEL,
    consistent,
    make_source,
    members_of,
    rows_of,
    set_rows,
    workspace,
    write,
)

from retrainer.apps.backup import restore
from retrainer.core.errors import InputError
from retrainer.datasets import WEATHER_FEATURES, weather
from retrainer.families import load_model


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("formats"))


def _legacy(source: Path, fmt: int) -> dict[str, bytes]:
    m = members_of(source)
    for name in [n for n in m if n.startswith("segments/")]:
        del m[name]
    set_rows(m, "segments", [])
    df = weather().head(300)
    rows: list[dict[str, Any]] = [
        {
            "id": i + 1,
            "model": MODEL,
            "entity_id": str(r["day_id"]),
            "event_time": str(r["date"]),
            "target": int(r["rain"]),
            "features": {f: r[f] for f in WEATHER_FEATURES},
        }
        for i, r in df.iterrows()
    ]
    actuals = [
        {"id": 1, "model": MODEL, "entity_id": "x1", "event_time": None, "value": 1},
        {
            "id": 2,
            "model": MODEL,
            "entity_id": "x2",
            "event_time": "1952-01-02T00:00:00",
            "value": 0,
        },
    ]
    m["tables/training_rows.jsonl"] = "\n".join(json.dumps(r) for r in rows).encode()
    m["tables/actuals.jsonl"] = "\n".join(json.dumps(r) for r in actuals).encode()
    manifest = json.loads(m["manifest.json"])
    manifest.update(format=fmt)
    manifest.pop("sizes")
    manifest["rows"].update(training_rows=len(rows), actuals=len(actuals), segments=0)
    if fmt == 1:
        del manifest["format"]  # format 1 wrote none
        predictions = rows_of(m, "predictions")
        for p in predictions:
            p.pop("input_key"), p.pop("input_row")
            p["features"] = json.dumps({"temp_max": 1.0})
        set_rows(m, "predictions", predictions)
        for name in [n for n in m if n.startswith("inputs/")]:
            del m[name]
        del m["tables/prediction_inputs.jsonl"]
        manifest["rows"].pop("prediction_inputs")
    m["manifest.json"] = json.dumps(manifest).encode()
    return consistent(m, key=KEY)


@pytest.mark.parametrize("fmt", [1, 2])
def test_old_formats_restore(tmp_path: Path, source: Path, fmt: int) -> None:
    archive = write(tmp_path / f"format{fmt}.tar.gz", _legacy(source, fmt))
    with workspace(tmp_path / "target", key=KEY) as ws:
        result = restore(ws, archive)
        assert result.rows["training_rows"] == 300 and result.rows["actuals"] == 2
        assert result.artifacts == 2
        champion = ws.store.get_version(MODEL, str(ws.store.roles(MODEL).champion))
        assert len(load_model(ws.artifact_bytes(champion)).predict(weather().head(3))) == 3
        if fmt == 1:
            assert result.rows["prediction_inputs"] == 20  # one per prediction


def test_old_format_lines_are_checked(tmp_path: Path, source: Path) -> None:
    m = _legacy(source, 2)
    lines = m["tables/training_rows.jsonl"].splitlines()
    bad = json.loads(lines[4])
    bad["model"] = "../up"
    lines[4] = json.dumps(bad).encode()
    m["tables/training_rows.jsonl"] = b"\n".join(lines)
    archive = write(tmp_path / "b.tar.gz", consistent(m, key=KEY))
    with workspace(tmp_path / "target", key=KEY) as ws:
        with pytest.raises(InputError, match=r"training_rows.jsonl line 5: model name '../up'"):
            restore(ws, archive)
        assert ws.store.list_versions(MODEL) == []
