"""Opening a workspace (spec dict, file, folder), closing it, the exports, bad input."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import retrainer
import retrainer.api
from retrainer.core.errors import ConfigError, ConflictError, InputError, ModelNotFound

from .apihelp import MODEL, spec_dict


def test_a_spec_dict_is_not_changed_by_opening_it(tmp_path: Path) -> None:
    spec = spec_dict(tmp_path)
    before = copy.deepcopy(spec)
    with retrainer.open(spec) as rt:
        assert rt.models == [MODEL]
        assert len(rt.versions(MODEL)) == 0
    assert spec == before


def test_a_folder_or_its_spec_file_open_the_same_workspace(workspace_dir: Path) -> None:
    with retrainer.open(workspace_dir) as rt:
        assert rt.spec.store == f"sqlite:///{(workspace_dir / 'retrainer.db').resolve()}"
    with retrainer.open(str(workspace_dir / "retrainer.yaml")) as rt:
        assert rt.spec.artifacts == str((workspace_dir / "artifacts").resolve())


def test_a_folder_without_a_spec_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no retrainer\.yaml.*retrainer init"):
        retrainer.open(tmp_path)


def test_the_context_manager_disposes_the_store_engine(tmp_path: Path) -> None:
    disposed: list[bool] = []
    with retrainer.open(spec_dict(tmp_path)) as rt:
        engine = rt.workspace.store.engine
        dispose = engine.dispose
        engine.dispose = lambda *a, **k: (disposed.append(True), dispose(*a, **k))[1]  # type: ignore[method-assign]
    assert disposed == [True]
    rt.close()  # twice is harmless
    assert disposed == [True]
    with pytest.raises(ConflictError, match="is closed"):
        rt.versions(MODEL)


def test_an_unknown_model_is_named_with_the_known_ones(rt: retrainer.Retrainer) -> None:
    with pytest.raises(ModelNotFound, match=r"'churn' is not in the spec.*Known models: rain"):
        rt.train("churn")
    with pytest.raises(ModelNotFound) as caught:
        rt.predict("churn", pd.DataFrame({"x": [1]}))
    assert caught.value.details == {"model": "churn", "known": [MODEL]}


def test_bad_arguments_say_what_is_expected(rt: retrainer.Retrainer, days: pd.DataFrame) -> None:
    with pytest.raises(
        InputError, match=r"ingest takes a pandas DataFrame or a file path \(CSV.*list"
    ):
        rt.ingest(MODEL, [{"day_id": "d1"}])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="takes a spec file, a workspace folder or a spec"):
        retrainer.open(42)  # type: ignore[arg-type]
    rt.ingest(MODEL, days.iloc[:800])
    rt.train(MODEL, deploy=True)
    with pytest.raises(InputError, match="out= streams a logged file prediction"):
        rt.predict(MODEL, days.iloc[:5], out="scored.csv")
    with pytest.raises(InputError, match="the frame has no rows"):
        rt.predict(MODEL, days.iloc[:0])
    with pytest.warns(UserWarning, match="no 'day_id' column .* no actual sent to feedback"):
        rt.predict(MODEL, days.iloc[:5].drop(columns="day_id"))


def test_every_public_name_resolves_and_both_lists_agree() -> None:
    assert retrainer.__all__ == retrainer.api.__all__
    for name in retrainer.__all__:
        assert getattr(retrainer, name) is getattr(retrainer.api, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        retrainer.nope  # type: ignore[attr-defined]  # noqa: B018


def test_import_retrainer_loads_none_of_the_library() -> None:
    code = (
        "import sys, retrainer; "
        "print(sorted(m for m in ('pandas', 'sqlalchemy', 'retrainer.api', 'retrainer.lifecycle')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
