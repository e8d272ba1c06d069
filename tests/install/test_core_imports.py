"""The core install: no optional library is imported when retrainer's modules are.

One subprocess blocks every optional library (a meta-path finder that raises ImportError), imports
every module of the package and records each blocked import a retrainer module attempted. Only
the family adapters that ``families.FAMILY_MODULES`` loads on demand may need their library;
everything else, ``retrainer --help`` included, must work without them. The same process checks
what the core install does without the libraries: a missing family names its extra, and the
concept-drift check is skipped and says so.

The end-to-end check (build the wheel, install it without extras in a fresh venv, run the
commands) is ``.ci/core-install``, run by ``.ci/run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from retrainer.core.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
# EXTRAS lists the libraries an extra installs; mlflow is the MLflow interop's extra
BLOCKED = sorted({*EXTRAS, "mlflow"})

PROBE = r"""
import importlib, importlib.abc, io, json, pkgutil, sys, traceback
from contextlib import redirect_stdout

BLOCKED = set(json.loads(sys.argv[1]))
attempts = []  # (retrainer module that imported it, blocked module)


def importer():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(("importlib", "_frozen_importlib")) and name != __name__:
            return name
        frame = frame.f_back
    return "?"


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            who = importer()
            if who.startswith("retrainer"):
                attempts.append((who, name))
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Block())
import retrainer
from retrainer.families import FAMILY_MODULES

adapters = {f"retrainer.families.{m}": fam for fam, (m, _) in FAMILY_MODULES.items()}
out = {"failed": {}, "adapters": {}, "attempts": attempts}
for info in pkgutil.walk_packages(retrainer.__path__, "retrainer."):
    if ".migrations" in info.name:
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:
        if info.name in adapters:
            out["adapters"][info.name] = exc.name
        else:
            out["failed"][info.name] = traceback.format_exc(limit=-3)
# the adapters' own imports are the lazy boundary: not counted
out["attempts"] = [a for a in attempts if a[0] not in adapters]

from retrainer.cli.main import main
sys.argv = ["retrainer", "--help"]
buf = io.StringIO()
try:
    with redirect_stdout(buf):
        main()
except SystemExit as exc:
    out["help_exit"] = exc.code
out["help"] = buf.getvalue()

from retrainer.core.errors import FamilyUnavailableError
from retrainer.families import family_class
try:
    family_class("lightgbm")
except FamilyUnavailableError as exc:
    out["lightgbm"] = exc.message

from retrainer.monitoring.concept import ConceptDriftMonitor
mon = ConceptDriftMonitor(min_samples=10, reference_size=10, persistence=1)
out["concept"] = mon.update([1.0] * 10 + [0.0] * 30).to_dict()
print(json.dumps(out))
"""


def test_no_optional_library_is_imported_by_the_core_modules() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(BLOCKED)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["failed"] == {}, "\n".join(out["failed"].values())
    assert out["attempts"] == [], f"imported at import time: {out['attempts']}"
    # each adapter fails on its own library only, and only where the library is optional
    for module, missing in out["adapters"].items():
        assert missing.split(".")[0] in BLOCKED, (module, missing)
    assert "retrainer.families.randomforest" not in out["adapters"]
    assert out["help_exit"] == 0 and "Usage" in out["help"] and "train" in out["help"]
    assert "pip install 'retrainer[lightgbm]'" in out["lightgbm"]
    concept = out["concept"]
    assert concept["skipped"] and not concept["drift"] and not concept["fired"]
    assert "pip install 'retrainer[river]'" in concept["reason"]


def test_every_extra_named_in_errors_exists() -> None:
    """core.extras names the extra to install; each must be one pyproject.toml defines."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(EXTRAS.values()) <= set(extras), set(EXTRAS.values()) - set(extras)
