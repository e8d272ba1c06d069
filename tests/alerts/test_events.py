"""Alert events: one list, checked at spec load with the valid names and a did-you-mean."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml
from typer.testing import CliRunner

from retrainer.alerts import EVENTS, Alert, Event
from retrainer.cli.main import app
from retrainer.core.errors import ConfigError
from retrainer.core.spec import load_spec
from retrainer.core.spec_sections import ALERT_EVENTS, Alerts


def test_the_alert_literal_and_the_spec_list_agree() -> None:
    assert get_args(Event) == EVENTS == ALERT_EVENTS
    for event in ("deploy", "retrained", "critical_degradation", "training_shrunk"):
        assert Alert(event, "m", "t", "x").event == event  # type: ignore[arg-type]


def test_defaults_cover_the_new_events_but_not_every_retrain() -> None:
    events = Alerts().events
    assert {"deploy", "critical_degradation", "training_shrunk", "challenger_started"} <= set(
        events
    )
    assert "retrained" not in events  # opt in: every training would post


def test_an_unknown_event_is_rejected_at_spec_load(tmp_path: Path) -> None:
    path = tmp_path / "retrainer.yaml"
    model = {
        "task": "classification",
        "target": "y",
        "id_column": "id",
        "time_column": "t",
        "features": {"numeric": ["x"]},
        "alerts": {"events": ["deploy", "training_shrinked"]},
    }
    path.write_text(yaml.safe_dump({"models": {"m": model}}))
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    message = caught.value.message
    assert "models.m.alerts.events" in message
    assert "unknown event 'training_shrinked'; did you mean 'training_shrunk'?" in message
    assert "valid: " + ", ".join(ALERT_EVENTS) in message
    res = CliRunner().invoke(app, ["-c", str(path), "train", "m", "--dry-run"])
    assert res.exit_code == 2 and "did you mean 'training_shrunk'" in " ".join(res.output.split())


def test_training_shrink_is_a_fraction() -> None:
    with pytest.raises(ValueError, match="training_shrink"):
        Alerts(training_shrink=1.5)
    assert Alerts(training_shrink=None).training_shrink is None
