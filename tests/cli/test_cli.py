"""The CLI end to end through Typer's runner: exact exit codes, the documented ``--json``
shapes, and for every refused command a message that names the problem and a store left
exactly as it was."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from retrainer.cli.main import app
from retrainer.core.spec import load_spec
from retrainer.datasets import WEATHER_FEATURES
from retrainer.plumbing.workspace import Workspace
from retrainer.store import schema as t
from weather_spec import weather_model

MODEL = "weather"
# small and single-threaded: quick, and no OpenMP spinning on a shared 2-core machine
PARAMS = {"n_estimators": 20, "num_threads": 1}
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Wide consoles so messages never wrap (conftest keeps the caller's RETRAINER_* out)."""
    monkeypatch.setenv("COLUMNS", "2000")
    monkeypatch.chdir(tmp_path)


def invoke(args: list[Any], code: int) -> Result:
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is never an acceptable way to fail
    assert res.exit_code == code, f"exit {res.exit_code}, expected {code}:\n{res.output}"
    return res


def text(res: Result) -> str:
    """Everything printed (stdout and stderr), whitespace collapsed."""
    return " ".join(res.output.split())


@dataclass
class Cli:
    config: Path

    def __call__(self, *args: Any, code: int = 0) -> Result:
        return invoke(["-c", self.config, *args], code)

    def json(self, *args: Any, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def artifact_files(self) -> list[Path]:
        return sorted((self.config.parent / "artifacts").rglob("*.rtm"))


def snapshot(cli: Cli) -> dict[str, Any]:
    """Everything a refused command must leave alone."""
    with Workspace.open(cli.config) as ws:
        roles = ws.store.roles(MODEL)
        with ws.store.read() as conn:
            predictions = conn.execute(select(func.count()).select_from(t.predictions)).scalar()
        return {
            "versions": [(v.version, v.status, v.sha256) for v in ws.store.list_versions(MODEL)],
            "rows": ws.store.training_stats(MODEL)[0],
            "champion": roles.champion,
            "challenger": roles.challenger,
            "events": [e.id for e in ws.store.events(MODEL)],
            "predictions": predictions,
            "artifacts": [p.name for p in cli.artifact_files()],
        }


def edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def bad_config(cli: Cli, change: Callable[[dict[str, Any]], None]) -> Cli:
    """A broken copy of the config next to the good one (same store, same artifacts)."""
    bad = cli.config.with_name("bad.yaml")
    bad.write_text(cli.config.read_text())
    return Cli(edit_config(bad, change))


@pytest.fixture
def weather_file(tmp_path: Path, weather_df: pd.DataFrame) -> Callable[..., Path]:
    """Weather rows in [start, end) written as CSV, Parquet or JSONL (by the suffix)."""

    def write(start: str, end: str, suffix: str) -> Path:
        part = weather_df[(weather_df["date"] >= start) & (weather_df["date"] < end)]
        path = tmp_path / f"weather_{start}_{end}{suffix}"
        if suffix == ".parquet":
            part.to_parquet(path, index=False)
        elif suffix == ".jsonl":
            part.to_json(path, orient="records", lines=True, date_format="iso")
        else:
            part.to_csv(path, index=False)
        return path

    return write


@pytest.fixture
def cli(config_file: Callable[..., Path]) -> Cli:
    return Cli(config_file(params=PARAMS))


def _copy_workspace(template: Path, folder: Path) -> None:
    """The store file(s) and artifacts of ``template`` into ``folder`` (beside its config:
    the config's relative paths then name the copies)."""
    for db in template.glob("retrainer.db*"):
        shutil.copy(db, folder / db.name)
    shutil.copytree(template / "artifacts", folder / "artifacts")


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory, weather_df: pd.DataFrame) -> Path:
    """A folder with two years ingested and 1.0.0 trained and deployed, through the CLI; built
    once, copied by each test that starts from it (``trained``)."""
    folder = tmp_path_factory.mktemp("trained")
    rows = folder / "rows.csv"
    weather_df[(weather_df["date"] >= "1949-01-01") & (weather_df["date"] < "1951-01-01")].to_csv(
        rows, index=False
    )
    cli = Cli(_template_config(folder))
    cli("ingest", MODEL, rows)
    cli("train", MODEL, "--deploy")
    return folder


@pytest.fixture(scope="session")
def two_champions_template(
    trained_template: Path, tmp_path_factory: pytest.TempPathFactory, weather_df: pd.DataFrame
) -> Path:
    """``trained_template`` then 1.1.0 (on one more year, so a different artifact) deployed."""
    folder = tmp_path_factory.mktemp("two_champions")
    _copy_workspace(trained_template, folder)
    rows = folder / "rows.csv"
    weather_df[(weather_df["date"] >= "1951-01-01") & (weather_df["date"] < "1952-01-01")].to_csv(
        rows, index=False
    )
    cli = Cli(_template_config(folder))
    cli("ingest", MODEL, rows)
    cli("train", MODEL)
    cli("deploy", MODEL, "1.1.0", "--force")
    assert len(cli.artifact_files()) == 2
    return folder


def _template_config(folder: Path) -> Path:
    """The same config as the ``cli`` fixture's, in ``folder``."""
    path = folder / "retrainer.yaml"
    data = {
        "store": "sqlite:///retrainer.db",
        "artifacts": "artifacts",
        "models": {MODEL: weather_model(params=PARAMS)},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def trained(cli: Cli, trained_template: Path) -> Cli:
    """Two years ingested and 1.0.0 trained and deployed (a private copy of the template)."""
    _copy_workspace(trained_template, cli.config.parent)
    return cli


@pytest.fixture
def two_champions(cli: Cli, two_champions_template: Path) -> Cli:
    """1.0.0 then 1.1.0 (on one more year, so a different artifact) deployed (a private
    copy of the template)."""
    _copy_workspace(two_champions_template, cli.config.parent)
    assert len(cli.artifact_files()) == 2
    return cli


def artifact_of(cli: Cli, version: str) -> Path:
    sha = next(v["sha256"] for v in cli.json("versions", MODEL) if v["version"] == version)
    return next(p for p in cli.artifact_files() if p.stem == sha)


# ---- set-up -----------------------------------------------------------------------------


def test_init_writes_a_valid_commented_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "retrainer.yaml"
    target.parent.mkdir()
    res = invoke(["init", target, "--json"], 0)
    assert json.loads(res.stdout) == {"path": str(target)}
    body = target.read_text()
    assert sum(line.lstrip().startswith("#") or " # " in line for line in body.splitlines()) > 10
    spec = load_spec(target, environ={})
    assert list(spec.models) == ["weather"]

    target.write_text(body + "# my own edit\n")
    res = invoke(["init", target], 1)
    assert str(target) in text(res) and "already exists" in text(res) and "--force" in text(res)
    assert target.read_text().endswith("# my own edit\n")  # untouched

    invoke(["init", target, "--force"], 0)
    assert target.read_text() == body

    # without a path it writes where --config points, and that file drives the next command
    other = tmp_path / "other.yaml"
    invoke(["-c", other, "init"], 0)
    assert other.exists()
    up = json.loads(invoke(["-c", other, "db", "upgrade", "--json"], 0).stdout)
    assert up["from"] is None and up["to"] and up["store"].endswith("retrainer.db")


def test_init_default_path_is_retrainer_yaml_in_the_current_folder(tmp_path: Path) -> None:
    invoke(["init"], 0)
    assert (tmp_path / "retrainer.yaml").exists()
    res = invoke(["init"], 1)
    assert "already exists" in text(res)


def test_db_upgrade_creates_then_reports_the_current_schema(cli: Cli) -> None:
    first = cli.json("db", "upgrade")
    assert set(first) == {"store", "from", "to"}
    assert first["from"] is None and first["to"]
    again = cli.json("db", "upgrade")
    assert again["from"] == again["to"] == first["to"]
    assert f"schema {first['to']} → {first['to']}" in text(cli("db", "upgrade"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_ingest_each_format_and_reingest_adds_nothing(
    cli: Cli, weather_file: Callable[..., Path], suffix: str
) -> None:
    path = weather_file("1949-01-01", "1949-07-01", suffix)
    first = cli.json("ingest", MODEL, path)
    assert first == {"inserted": 181, "duplicates": 0, "rejected": 0, "first_rejects": []}
    again = cli.json("ingest", MODEL, path)
    assert again["inserted"] == 0 and again["duplicates"] == 181 and again["rejected"] == 0
    more = cli.json("ingest", MODEL, weather_file("1949-06-01", "1949-08-01", suffix))
    assert (more["inserted"], more["duplicates"]) == (31, 30)  # July new, June known
    assert snapshot(cli)["rows"] == 212
    assert "0 inserted, 61 duplicates, 0 rejected" in text(
        cli("ingest", MODEL, weather_file("1949-06-01", "1949-08-01", suffix))
    )


def test_ingest_reports_rejected_lines_and_keeps_the_good_rows(
    cli: Cli, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    part = weather_df.head(10).astype(object)
    part.loc[3, "date"] = "not a date"
    part.loc[6, "temperature"] = "warm"
    path = tmp_path / "some_bad.csv"
    part.to_csv(path, index=False)
    res = cli.json("ingest", MODEL, path)
    assert (res["inserted"], res["rejected"]) == (8, 2)
    assert [r["line"] for r in res["first_rejects"]] == [5, 8]  # header is line 1
    assert "'date'" in res["first_rejects"][0]["reason"]
    assert "'temperature'" in res["first_rejects"][1]["reason"]


# ---- the lifecycle, on both backends ----------------------------------------------------

VERSION_KEYS = {
    "version",
    "parent",
    "family",
    "kind",
    "role",
    "status",
    "created_at",
    "created_by",
    "reason",
    "rows",
    "train_start",
    "train_end",
    "metrics",
    "size_bytes",
    "sha256",
}
EVENT_KEYS = {
    "id",
    "action",
    "from_version",
    "to_version",
    "reason",
    "triggered_by",
    "forced",
    "gate",
    "created_at",
}


def test_train_deploy_rollback_predict_lifecycle(
    config_file: Callable[..., Path],
    store_url: str,
    weather_csv: Callable[[str, str], Path],
    tmp_path: Path,
) -> None:
    cli = Cli(config_file(store=store_url, params=PARAMS))
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    before = snapshot(cli)

    plan = cli.json("train", MODEL, "--dry-run")
    assert plan["model"] == MODEL and plan["family"] == "lightgbm"
    assert plan["fallback_family"] == "randomforest"
    assert plan["bump"] == "major" and plan["parent"] is None
    assert plan["window"]["rows"] == 730 and plan["window"]["start"].startswith("1949-01-01")
    assert plan["quality"]["ok"] is True and plan["quality"]["violations"] == []
    assert set(plan["class_balance"]) == {"0", "1"}
    assert "would train lightgbm" in text(cli("train", MODEL, "--dry-run"))
    assert snapshot(cli) == before and before["versions"] == [] and before["artifacts"] == []

    v1 = cli.json("train", MODEL, "--deploy")
    assert VERSION_KEYS | {"deployed"} <= set(v1)
    assert (v1["version"], v1["parent"], v1["kind"], v1["role"], v1["deployed"]) == (
        "1.0.0",
        None,
        "initial",
        "champion",
        True,
    )
    assert v1["family"] == "lightgbm" and v1["rows"] == 730 and v1["created_by"] == "manual"
    assert 0.5 < v1["metrics"]["accuracy"] <= 1 and "roc_auc" in v1["metrics"]
    assert v1["train_start"].startswith("1949-01-01") and v1["size_bytes"] > 0

    cli("ingest", MODEL, weather_csv("1951-01-01", "1952-01-01"))
    v2 = cli.json("train", MODEL, "--reason", "new year of data")
    assert (v2["version"], v2["parent"], v2["kind"], v2["role"], v2["deployed"]) == (
        "1.1.0",
        "1.0.0",
        "full_retrain",
        "archived",
        False,
    )
    assert v2["reason"] == "new year of data" and v2["rows"] == 1095
    assert cli.json("status", MODEL)["champion"]["version"] == "1.0.0"

    ev = cli.json("deploy", MODEL, "1.1.0", "--force", "--reason", "new year")
    assert set(ev) == EVENT_KEYS
    assert (ev["action"], ev["from_version"], ev["to_version"], ev["reason"], ev["forced"]) == (
        "deploy",
        "1.0.0",
        "1.1.0",
        "new year",
        True,
    )
    assert "already the champion" in text(cli("deploy", MODEL, "1.1.0", code=1))

    st = cli.json("status", MODEL)
    assert st["champion"]["version"] == "1.1.0" and st["champion"]["since"]
    assert st["challenger"] is None
    assert (st["model"], st["versions"], st["training_rows"]) == (MODEL, 2, 1095)
    assert [s["model"] for s in cli.json("status")] == [MODEL]
    assert "champion 1.1.0, challenger none" in text(cli("status", MODEL))

    back = cli.json("rollback", MODEL)
    assert (back["action"], back["from_version"], back["to_version"]) == (
        "rollback",
        "1.1.0",
        "1.0.0",
    )
    assert "rolled back 1.0.0 → 1.1.0" in text(cli("rollback", MODEL, "--to", "1.1.0"))
    assert cli.json("status", MODEL)["champion"]["version"] == "1.1.0"
    ev = cli.json("deploy", MODEL, "1.0.0", "--reason", "back to basics")
    assert (ev["from_version"], ev["to_version"], ev["forced"]) == ("1.1.0", "1.0.0", False)

    history = cli.json("history", MODEL)
    assert all(set(e) == EVENT_KEYS for e in history)
    assert [(e["action"], e["from_version"], e["to_version"]) for e in history] == [
        ("deploy", None, "1.0.0"),
        ("deploy", "1.0.0", "1.1.0"),
        ("rollback", "1.1.0", "1.0.0"),
        ("rollback", "1.0.0", "1.1.0"),
        ("deploy", "1.1.0", "1.0.0"),
    ]
    assert [e["forced"] for e in history] == [False, True, False, False, False]
    assert "back to basics" in text(cli("history", MODEL))

    versions = cli.json("versions", MODEL)
    assert all(set(v) >= VERSION_KEYS for v in versions)
    assert [(v["version"], v["parent"], v["role"]) for v in versions] == [
        ("1.0.0", None, "champion"),
        ("1.1.0", "1.0.0", "archived"),
    ]
    assert "1.1.0" in text(cli("versions", MODEL))

    rows = weather_csv("1952-01-01", "1952-02-01")
    pd.read_csv(rows).drop(columns=["rain"]).to_csv(rows, index=False)  # features only
    out = tmp_path / "scored.csv"
    res = cli.json("predict", MODEL, rows, "--out", out)
    assert set(res) == {"version", "rows", "out", "request_id"}
    assert (res["version"], res["rows"], res["out"]) == ("1.0.0", 31, str(out))
    scored = pd.read_csv(out)
    assert len(scored) == 31 and {"prediction", "proba_0", "proba_1"} <= set(scored.columns)
    assert set(scored["prediction"]) <= {0, 1}
    assert ((scored["proba_0"] + scored["proba_1"]) - 1).abs().max() < 1e-9
    assert (scored["day_id"] == pd.read_csv(rows)["day_id"]).all()

    res = cli.json("predict", MODEL, rows, "-o", tmp_path / "scored.parquet", "--version", "1.1.0")
    assert res["version"] == "1.1.0"
    assert "prediction" in pd.read_parquet(tmp_path / "scored.parquet").columns
    assert snapshot(cli)["predictions"] == 62


def test_versions_detail_shows_walk_forward_folds(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    cli = Cli(
        config_file(
            params=PARAMS,
            validation={"scheme": "walk_forward", "folds": 3},
        )
    )
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    trained = cli.json("train", MODEL)
    assert set(trained["folds_summary"]["accuracy"]) == {"mean", "std"}
    [v] = cli.json("versions", MODEL, "--detail")
    assert [f["fold"] for f in v["folds"]] == [0, 1, 2]
    assert all({"train_rows", "test_rows", "accuracy"} <= set(f) for f in v["folds"])
    assert v["folds"][0]["train_rows"] < v["folds"][2]["train_rows"]
    assert v["params"]["n_estimators"] == 20 and v["artifact_uri"].endswith(".rtm")
    assert v["features"]["numeric"] == WEATHER_FEATURES and v["signed"] is False
    shown = text(cli("versions", MODEL, "--detail"))
    assert "1.0.0 walk-forward folds" in shown and "fold=2" in shown
    assert "accuracy:" in shown and "±" in shown
    plain = cli.json("versions", MODEL)[0]
    assert "folds" not in plain and "params" not in plain


def test_fine_tune_registers_a_patch_version_with_its_parent(
    trained: Cli, weather_csv: Callable[[str, str], Path]
) -> None:
    trained("ingest", MODEL, weather_csv("1951-01-01", "1951-07-01"))
    ft = trained.json("fine-tune", MODEL)
    assert VERSION_KEYS | {"deployed", "champion_metrics"} <= set(ft)
    assert (ft["version"], ft["parent"], ft["kind"], ft["role"], ft["deployed"]) == (
        "1.0.1",
        "1.0.0",
        "fine_tune",
        "archived",
        False,
    )
    assert ft["rows"] == 181 and "accuracy" in ft["champion_metrics"]
    assert trained.json("status", MODEL)["champion"]["version"] == "1.0.0"
    again = trained.json("fine-tune", MODEL, "--deploy", "--days", "200")
    assert (again["version"], again["parent"], again["kind"]) == ("1.0.2", "1.0.0", "fine_tune")
    champion = trained.json("status", MODEL)["champion"]["version"]
    assert again["deployed"] == (champion == "1.0.2")  # --deploy, unless the gate said no
    assert again["role"] == ("champion" if again["deployed"] else "archived")
    versions = trained.json("versions", MODEL)
    assert [(v["version"], v["parent"]) for v in versions] == [
        ("1.0.0", None),
        ("1.0.1", "1.0.0"),
        ("1.0.2", "1.0.0"),
    ]
    assert f"(from {champion})" in text(trained("fine-tune", MODEL, "--days", "100"))


def _restored_config(cli: Cli, folder: Path, store: str | None) -> Cli:
    folder.mkdir()
    path = folder / "retrainer.yaml"
    path.write_text(cli.config.read_text())
    return Cli(edit_config(path, lambda d: d.update(store=store or "sqlite:///fresh.db")))


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_backup_restores_into_a_new_empty_store(
    two_champions: Cli,
    tmp_path: Path,
    target: str,
    request: pytest.FixtureRequest,
    weather_csv: Callable[[str, str], Path],
) -> None:
    cli = two_champions
    cli("rollback", MODEL)
    archive = tmp_path / "backup.tar.gz"
    made = cli.json("backup", archive)
    assert made["path"] == str(archive) and made["artifacts"] == 2
    assert made["rows"]["versions"] == 2 and made["rows"]["training_rows"] == 1095

    store = request.getfixturevalue("pg_url") if target == "postgresql" else None
    fresh = _restored_config(cli, tmp_path / "restored", store)
    back = fresh.json("restore", archive)
    assert back["rows"] == made["rows"] and back["artifacts"] == 2
    assert fresh.json("versions", MODEL) == cli.json("versions", MODEL)
    assert fresh.json("status", MODEL) == cli.json("status", MODEL)
    assert fresh.json("history", MODEL) == cli.json("history", MODEL)
    assert len(fresh.artifact_files()) == 2  # copied into the new artifact folder

    # the restored registry works: verified loads, and ids continue after the restored ones
    rows = weather_csv("1952-01-01", "1952-01-11")
    assert fresh.json("predict", MODEL, rows, "-o", tmp_path / "p.csv")["version"] == "1.0.0"
    last_id = max(e["id"] for e in cli.json("history", MODEL))
    assert fresh.json("deploy", MODEL, "1.1.0", "--force")["id"] == last_id + 1

    res = fresh("restore", archive, code=1)
    assert "already holds models" in text(res) and "empty" in text(res)


def test_restore_refuses_a_damaged_backup(two_champions: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    two_champions("backup", archive)
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    victim = next(name for name in members if name.startswith("artifacts/"))
    members[victim] = members[victim][:-1] + bytes([members[victim][-1] ^ 1])
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    fresh = _restored_config(two_champions, tmp_path / "restored", None)
    res = fresh("restore", damaged, code=2)  # a malformed backup is bad input
    assert f"member {victim} is missing or does not match its checksum" in text(res)
    assert "Nothing was restored" in text(res)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tar at all")
    assert "is not a retrainer backup" in text(fresh("restore", garbage, code=2))
    assert fresh.json("status", MODEL)["champion"] is None
    assert fresh.json("versions", MODEL) == [] and fresh.artifact_files() == []


# ---- bad input: each refused with the right code, a clear message, and no change ---------


def test_unknown_model_lists_the_known_ones(trained: Cli, tmp_path: Path) -> None:
    before = snapshot(trained)
    for args in (
        ["train", "churn"],
        ["versions", "churn"],
        ["deploy", "churn", "1.0.0"],
        ["ingest", "churn", tmp_path / "x.csv"],
    ):
        res = trained(*args, code=2)
        assert "'churn'" in text(res) and "Known models: weather" in text(res), args
    body = trained.json("status", "churn", code=2)
    assert body["error"] == "model_not_found" and "Known models: weather" in body["message"]
    assert snapshot(trained) == before


def test_missing_config_key_is_named(trained: Cli) -> None:
    before = snapshot(trained)
    bad = bad_config(trained, lambda d: d["models"][MODEL].pop("target"))
    res = bad("train", MODEL, code=2)
    assert "bad.yaml" in text(res)
    assert "models.weather.target: required key is missing" in text(res)
    assert snapshot(trained) == before


def test_extra_config_key_is_named_with_the_known_keys(trained: Cli) -> None:
    before = snapshot(trained)
    bad = bad_config(trained, lambda d: d["models"][MODEL].update(owner="data team"))
    res = bad("train", MODEL, code=2)
    assert "models.weather.owner: unknown key 'owner'" in text(res)
    assert "known keys: task, target, id_column" in text(res)
    body = bad.json("versions", MODEL, code=2)
    assert body["error"] == "config_invalid"
    assert body["details"]["errors"][0]["loc"] == "models.weather.owner"
    assert snapshot(trained) == before


@pytest.mark.parametrize(
    ("change", "where", "meant"),
    [
        (
            lambda d: d["models"]["weather"]["training"].update(windw_days=30),
            "models.weather.training.windw_days",
            "window_days",
        ),
        (
            lambda d: d["models"]["weather"].update(familly="xgboost"),
            "models.weather.familly",
            "family",
        ),
        (lambda d: d.update(artefacts="elsewhere"), "artefacts", "artifacts"),
    ],
    ids=["section", "model", "top"],
)
def test_misspelled_config_key_says_did_you_mean(
    trained: Cli, change: Callable[[dict[str, Any]], None], where: str, meant: str
) -> None:
    before = snapshot(trained)
    res = bad_config(trained, change)("train", MODEL, code=2)
    assert f"{where}: unknown key" in text(res) and f"did you mean '{meant}'?" in text(res)
    assert snapshot(trained) == before


def test_missing_config_file_says_how_to_create_one(tmp_path: Path) -> None:
    res = invoke(["-c", tmp_path / "nope.yaml", "status"], 2)
    assert "nope.yaml" in text(res) and "retrainer init" in text(res)


def test_feature_in_the_spec_but_not_in_the_data(
    trained: Cli, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    before = snapshot(trained)
    path = tmp_path / "no_visibility.csv"
    weather_df.iloc[800:900].drop(columns=["visibility"]).to_csv(path, index=False)
    res = trained("ingest", MODEL, path, code=2)
    assert "['visibility']" in text(res) and "not in the data" in text(res)
    assert snapshot(trained) == before

    # a feature added to the spec that the stored rows never had
    bad = bad_config(
        trained, lambda d: d["models"][MODEL]["features"]["numeric"].append("humidity")
    )
    res = bad("train", MODEL, code=2)
    assert "['humidity']" in text(res) and "not in its stored rows" in text(res)
    assert snapshot(trained) == before


def test_target_with_one_class(cli: Cli, tmp_path: Path, weather_df: pd.DataFrame) -> None:
    path = tmp_path / "dry_days.csv"
    weather_df[weather_df["rain"] == 0].head(400).to_csv(path, index=False)
    cli("ingest", MODEL, path)
    before = snapshot(cli)
    res = cli("train", MODEL, code=1)
    assert "min_classes" in text(res) and "nothing was trained" in text(res)
    res = cli("train", MODEL, "--allow-quality-warnings", code=2)
    assert "one class only" in text(res)
    assert snapshot(cli) == before


def test_empty_file(trained: Cli, tmp_path: Path) -> None:
    before = snapshot(trained)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    res = trained("ingest", MODEL, empty, code=2)
    assert "empty.csv" in text(res) and "empty" in text(res)
    header_only = tmp_path / "header.csv"
    header_only.write_text("day_id,date,rain\n")
    res = trained("ingest", MODEL, header_only, code=2)
    assert "header.csv" in text(res) and "no rows" in text(res)
    res = trained("predict", MODEL, empty, "-o", tmp_path / "out.csv", code=2)
    assert "empty" in text(res)
    assert snapshot(trained) == before
    assert not (tmp_path / "out.csv").exists()


def test_wrong_file_type(trained: Cli, tmp_path: Path, weather_csv: Callable[..., Path]) -> None:
    before = snapshot(trained)
    sheet = tmp_path / "rows.xlsx"
    sheet.write_bytes(b"PK\x03\x04 not really a spreadsheet")
    res = trained("ingest", MODEL, sheet, code=2)
    assert "unsupported file type '.xlsx'" in text(res) and ".parquet" in text(res)
    disguised = tmp_path / "rows.parquet"
    disguised.write_text(weather_csv("1951-01-01", "1951-02-01").read_text())
    res = trained("ingest", MODEL, disguised, code=2)
    assert "rows.parquet" in text(res) and "cannot be read as PARQUET" in text(res)
    res = trained("ingest", MODEL, tmp_path / "absent.csv", code=2)
    assert "absent.csv" in text(res) and "does not exist" in text(res)
    assert snapshot(trained) == before


def test_tampered_artifact_is_refused_by_predict_deploy_and_rollback(
    two_champions: Cli, weather_csv: Callable[[str, str], Path], tmp_path: Path
) -> None:
    cli = two_champions
    old, current = artifact_of(cli, "1.0.0"), artifact_of(cli, "1.1.0")
    for path in (old, current):
        data = bytearray(path.read_bytes())
        data[100] ^= 0x01  # one flipped bit
        path.write_bytes(bytes(data))
    before = snapshot(cli)
    rows = weather_csv("1952-01-01", "1952-01-11")
    cases = [
        (["rollback", MODEL], "1.0.0", old),
        (["rollback", MODEL, "--to", "1.0.0"], "1.0.0", old),
        (["deploy", MODEL, "1.0.0"], "1.0.0", old),
        (["predict", MODEL, rows, "-o", tmp_path / "out.csv"], "1.1.0", current),
        (["predict", MODEL, rows, "-o", tmp_path / "out.csv", "--version", "1.0.0"], "1.0.0", old),
    ]
    for args, version, path in cases:
        res = cli(*args, code=1)
        assert f"version {version}" in text(res) and str(path) in text(res), args
        assert "SHA-256" in text(res) and "not loaded" in text(res)
    body = cli.json("deploy", MODEL, "1.0.0", code=1)
    assert body["error"] == "artifact_integrity" and body["details"]["uri"].endswith(old.name)
    assert snapshot(cli) == before
    assert not (tmp_path / "out.csv").exists()


def test_version_that_does_not_exist_lists_the_known_ones(
    two_champions: Cli, weather_csv: Callable[[str, str], Path], tmp_path: Path
) -> None:
    before = snapshot(two_champions)
    rows = weather_csv("1952-01-01", "1952-01-11")
    for args in (
        ["deploy", MODEL, "9.9.9"],
        ["rollback", MODEL, "--to", "9.9.9"],
        ["predict", MODEL, rows, "-o", tmp_path / "o.csv", "--version", "9.9.9"],
    ):
        res = two_champions(*args, code=1)
        assert "no version 9.9.9. Known versions: 1.0.0, 1.1.0." in text(res), args
    body = two_champions.json("deploy", MODEL, "9.9.9", code=1)
    assert body["error"] == "version_not_found"
    assert snapshot(two_champions) == before


def test_rollback_with_no_previous_champion(trained: Cli) -> None:
    before = snapshot(trained)
    res = trained("rollback", MODEL, code=1)
    assert "no previous champion" in text(res) and "1.0.0 is the first" in text(res)
    assert "--to VERSION" in text(res)
    assert snapshot(trained) == before


def test_rollback_and_predict_with_no_champion_at_all(
    cli: Cli, weather_csv: Callable[[str, str], Path], tmp_path: Path
) -> None:
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    cli("train", MODEL)
    before = snapshot(cli)
    assert "has no champion" in text(cli("rollback", MODEL, code=1))
    res = cli(
        "predict", MODEL, weather_csv("1951-01-01", "1951-01-05"), "-o", tmp_path / "o.csv", code=1
    )
    assert "no champion" in text(res) and "--deploy" in text(res)
    assert snapshot(cli) == before


def test_store_that_cannot_connect_is_named_without_its_password(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    cli = Cli(config_file(store="postgresql+psycopg://user:secretpw@127.0.0.1:1/x"))
    for args in (
        ["status"],
        ["db", "upgrade"],
        ["versions", MODEL],
        ["ingest", MODEL, tmp_path / "x.csv"],
    ):
        res = cli(*args, code=1)
        assert "postgresql+psycopg://user:***@127.0.0.1:1/x" in text(res), args
        assert "Cannot connect" in text(res) and "secretpw" not in res.output
    res = cli("status", "--json", code=1)
    body = json.loads(res.stdout)
    assert body["error"] == "store_unavailable" and "secretpw" not in res.output


def test_store_url_that_is_not_a_database_url(config_file: Callable[..., Path]) -> None:
    cli = Cli(config_file(store="mysql://root:hunter2@db/x"))
    res = cli("status", code=2)
    assert "backend 'mysql'" in text(res) and "hunter2" not in res.output


def test_unknown_family_lists_the_valid_ones(trained: Cli) -> None:
    before = snapshot(trained)
    valid = "randomforest, lightgbm, xgboost, catboost, river, ensemble, tabpfn"
    res = trained("train", MODEL, "--family", "gbm", code=2)
    assert "Unknown model family 'gbm'" in text(res) and valid in text(res)
    res = trained("train", MODEL, "--family", "gbm", "--dry-run", code=2)
    assert "'gbm'" in text(res)
    res = bad_config(trained, lambda d: d["models"][MODEL].update(family="gbm"))(
        "train", MODEL, code=2
    )
    assert "models.weather: family 'gbm' is not a model family" in text(res)
    assert valid in text(res)
    assert snapshot(trained) == before


def test_params_the_family_does_not_accept(trained: Cli) -> None:
    before = snapshot(trained)
    bad = bad_config(
        trained, lambda d: d["models"][MODEL].update(params={**PARAMS, "max_leafs": 7})
    )
    res = bad("train", MODEL, code=2)
    assert "['max_leafs']" in text(res) and "'lightgbm' family" in text(res)
    assert "did you mean 'num_leaves'" in text(res) and "Accepted:" in text(res)
    res = bad("train", MODEL, "--dry-run", code=2)  # the dry run refuses it as well
    assert "['max_leafs']" in text(res)
    assert snapshot(trained) == before  # no silent fallback to another family


def test_fine_tune_with_no_champion(cli: Cli, weather_csv: Callable[[str, str], Path]) -> None:
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    cli("train", MODEL)
    before = snapshot(cli)
    res = cli("fine-tune", MODEL, code=1)
    assert "'weather' has no champion to fine-tune" in text(res)
    assert "retrainer train weather --deploy" in text(res)
    assert snapshot(cli) == before


def test_fine_tune_across_a_feature_schema_change_needs_a_major_version(
    trained: Cli, weather_csv: Callable[[str, str], Path]
) -> None:
    trained("ingest", MODEL, weather_csv("1951-01-01", "1951-07-01"))
    before = snapshot(trained)
    fewer = bad_config(
        trained, lambda d: d["models"][MODEL]["features"].update(numeric=WEATHER_FEATURES[:-1])
    )
    res = fewer("fine-tune", MODEL, code=1)
    assert "differ from champion 1.0.0" in text(res) and "new major version" in text(res)
    assert snapshot(trained) == before


def test_full_retrain_across_a_feature_schema_change_is_a_major_version(
    trained: Cli, weather_csv: Callable[[str, str], Path]
) -> None:
    trained("ingest", MODEL, weather_csv("1951-01-01", "1951-07-01"))  # rows the gate scores
    fewer = bad_config(
        trained, lambda d: d["models"][MODEL]["features"].update(numeric=WEATHER_FEATURES[:-1])
    )
    made = fewer.json("train", MODEL)
    assert (made["version"], made["parent"]) == ("2.0.0", "1.0.0")


def test_regression_target_given_to_a_classifier(
    cli: Cli, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    frame = weather_df.iloc[:500].copy()
    frame["rain"] = frame["temperature"] * 10 + 50  # a measurement, not a label
    path = tmp_path / "continuous.csv"
    frame.to_csv(path, index=False)
    cli("ingest", MODEL, path)
    before = snapshot(cli)
    for args in (
        ["train", MODEL],
        ["train", MODEL, "--dry-run"],
        ["train", MODEL, "--allow-quality-warnings"],
    ):
        res = cli(*args, code=2)
        assert "is a classifier" in text(res) and "'rain' holds continuous numbers" in text(res)
        assert "task: regression" in text(res)
    assert snapshot(cli) == before


def test_classification_label_given_to_a_regression(
    config_file: Callable[..., Path], tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    cli = Cli(config_file(task="regression", params=PARAMS))
    frame = weather_df.iloc[:300].copy()
    frame["rain"] = frame["rain"].map({0: "dry", 1: "wet"})
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    before = snapshot(cli)
    res = cli("ingest", MODEL, path, code=2)
    assert "0 inserted, 0 duplicates, 300 rejected" in text(res)
    assert "non-numeric target 'rain'" in text(res) and "every row" in text(res)
    body = cli.json("ingest", MODEL, path, code=2)
    assert body["rejected"] == 300 and "non-numeric target" in body["first_rejects"][0]["reason"]
    assert snapshot(cli) == before


def test_walk_forward_with_more_folds_than_the_data_allows(
    config_file: Callable[..., Path], weather_csv: Callable[[str, str], Path]
) -> None:
    cli = Cli(
        config_file(
            params=PARAMS,
            validation={"scheme": "walk_forward", "folds": 50},
        )
    )
    cli("ingest", MODEL, weather_csv("1949-01-01", "1951-01-01"))
    before = snapshot(cli)
    res = cli("train", MODEL, code=2)
    assert "walk-forward with 50 folds" in text(res) and "there are 730" in text(res)
    assert "The most folds these rows allow is 35" in text(res)
    body = cli.json("train", MODEL, code=2)
    assert body["details"]["maximum"] == 35
    assert snapshot(cli) == before


def test_quality_gate_failure_names_check_feature_value_and_limit(
    cli: Cli, tmp_path: Path, weather_df: pd.DataFrame
) -> None:
    frame = weather_df.iloc[:500].copy()
    frame.loc[frame.index[::3], "visibility"] = None  # a third missing
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    cli("ingest", MODEL, path)
    before = snapshot(cli)
    res = cli("train", MODEL, code=1)
    shown = text(res)
    assert "Data quality checks failed" in shown and "nothing was trained" in shown
    assert "missing visibility 33.4% 20.0%" in shown
    assert "--allow-quality-warnings" in shown
    body = cli.json("train", MODEL, code=1)
    assert body["error"] == "quality_failed"
    [v] = body["details"]["quality"]["violations"]
    assert (v["check"], v["feature"], v["limit"]) == ("missing", "visibility", 0.2)
    assert v["value"] == pytest.approx(167 / 500)
    assert cli.json("train", MODEL, "--dry-run")["quality"]["ok"] is False
    assert "missing visibility" in text(cli("train", MODEL, "--dry-run", code=1))
    assert snapshot(cli) == before

    made = cli.json("train", MODEL, "--allow-quality-warnings")
    assert made["version"] == "1.0.0" and snapshot(cli)["versions"] != before["versions"]


def test_errors_in_json_mode_are_a_json_body(cli: Cli) -> None:
    body = cli.json("train", MODEL, code=2)
    assert set(body) >= {"error", "message"} and body["error"] == "input_invalid"
    assert "no training rows" in body["message"] and "retrainer ingest weather" in body["message"]
