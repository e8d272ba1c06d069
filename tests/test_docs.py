"""The docs keep up with the code: every CLI command has help text and a section in
docs/cli.md listing its arguments and options; every error code and its exit code is in the
exit-code table; every key of the spec is in docs/configuration.md; every page's ``>>>``
examples run (docs/python.md: every public method of the Python API is shown)."""

from __future__ import annotations

import doctest
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from retrainer.cli.main import app
from retrainer.core import errors
from retrainer.core.spec import ModelSpec, Spec

DOCS = Path(__file__).resolve().parents[1] / "docs"
CLI_MD = (DOCS / "cli.md").read_text(encoding="utf-8")
CONFIG_MD = (DOCS / "configuration.md").read_text(encoding="utf-8")


def _commands(cmd: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every leaf command of the Typer app (sub-apps such as ``db`` included) by its path."""
    cmd = cmd if cmd is not None else typer.main.get_command(app)
    subs = getattr(cmd, "commands", None)
    if subs is None:
        yield " ".join(prefix), cmd
        return
    for name, sub in sorted(subs.items()):
        yield from _commands(sub, (*prefix, name))


COMMANDS = dict(_commands())


def _section(command: str) -> str:
    """The text of docs/cli.md under ``## `retrainer COMMAND` `` up to the next heading."""
    heading = re.compile(rf"^## `retrainer {re.escape(command)}`\s*$", re.M)
    found = heading.search(CLI_MD)
    if found is None:
        return ""
    rest = CLI_MD[found.end() :]
    end = re.search(r"^## ", rest, re.M)
    return rest[: end.start()] if end else rest


def test_the_walk_finds_the_commands_and_the_db_sub_app() -> None:
    assert {"init", "ingest", "train", "versions", "db upgrade"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_has_help_text(command: str) -> None:
    help_text = (COMMANDS[command].help or "").strip()
    assert help_text, f"`retrainer {command}` has no help text: give its function a docstring"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_is_documented_with_its_options(command: str) -> None:
    section = _section(command)
    assert section, f"docs/cli.md has no section '## `retrainer {command}`'"
    for param in COMMANDS[command].params:
        if getattr(param, "param_type_name", "") == "argument":
            name = (param.name or "").upper()
            assert f"`{name}`" in section, f"argument {name} of `{command}` is not in docs/cli.md"
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in section, f"option {opt} of `{command}` is not in docs/cli.md"
    assert "Exit codes" in section, f"the section of `{command}` does not list its exit codes"
    if any("--json" in p.opts for p in COMMANDS[command].params if hasattr(p, "opts")):
        assert "```json" in section, f"the section of `{command}` has no --json example"


def test_global_config_option_is_documented() -> None:
    root = typer.main.get_command(app)
    preamble = CLI_MD.split("\n## `retrainer ", 1)[0]
    for param in root.params:
        for opt in param.opts:
            assert f"`{opt}" in preamble, f"global option {opt} is not in docs/cli.md's preamble"


def _error_classes(base: type[errors.RetrainerError]) -> Iterator[type[errors.RetrainerError]]:
    yield base
    for sub in base.__subclasses__():
        yield from _error_classes(sub)


def test_every_error_code_is_in_the_exit_code_table() -> None:
    table = CLI_MD.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in table.splitlines()
        if line.startswith("| `")
    }
    for cls in _error_classes(errors.RetrainerError):
        code = errors.exit_code(cls("x"))
        assert f"`{cls.code}`" in rows.get(str(code), ""), (
            f"error code {cls.code!r} (exit {code}) is not in the exit {code} row of docs/cli.md"
        )


def _spec_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _spec_keys(ann, f"{prefix}{name}.")


def _is_section(key: str) -> bool:
    cls: Any = ModelSpec if key.split(".")[0] in ModelSpec.model_fields else Spec
    for part in key.split("."):
        cls = cls.model_fields[part].annotation
    return isinstance(cls, type) and issubclass(cls, BaseModel)


SPEC_KEYS = sorted(
    [k for k in _spec_keys(Spec) if k != "source"]  # set by the loader, not a key
    + [k for k in _spec_keys(ModelSpec) if k != "name"]  # the key of `models:` is the name
)


def test_the_key_walk_reaches_sections() -> None:
    assert {"store", "auth.protect_reads", "training.window_days", "serving.extra"} <= set(
        SPEC_KEYS
    )


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_spec_key_is_documented(key: str) -> None:
    """A key has a table row with its default and meaning; a section may have a heading."""
    if _is_section(key) and re.search(rf"^### `{re.escape(key)}`\s*$", CONFIG_MD, re.M):
        return
    row = re.search(rf"^\| `{re.escape(key)}` \|([^|]*)\|([^|]*)\|", CONFIG_MD, re.M)
    assert row, f"spec key {key!r} has no row '| `{key}` | default | meaning |' in configuration.md"
    default, meaning = (part.strip() for part in row.groups())
    assert default and meaning, f"the row of {key!r} in configuration.md lacks a default or meaning"


@pytest.mark.parametrize(
    "variable",
    [
        "RETRAINER_CONFIG",
        "RETRAINER_STORE",
        "RETRAINER_ARTIFACTS",
        "RETRAINER_SIGNING_KEY",
        "RETRAINER_API_TOKEN",
        "RETRAINER_<MODEL>__<FIELD>",
    ],
)
def test_environment_variable_is_documented(variable: str) -> None:
    assert f"`{variable}" in CONFIG_MD


DOCTESTED = sorted(p for p in DOCS.glob("*.md") if re.search(r"^>>> ", p.read_text("utf-8"), re.M))


def test_the_python_api_page_is_doctested() -> None:
    assert DOCS / "python.md" in DOCTESTED


@pytest.mark.parametrize("page", DOCTESTED, ids=lambda p: p.name)
def test_doc_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's ``>>>`` examples run in order as one doctest, in an empty folder."""
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(page.read_text("utf-8"), {}, page.name, str(page), 0)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=report.write)
    assert runner.failures == 0, f"{page.name}: examples fail:\n{report.getvalue()}"


def test_every_public_method_of_the_python_api_is_documented() -> None:
    from retrainer.api.facade import Retrainer

    page = (DOCS / "python.md").read_text(encoding="utf-8")
    methods = [m for m in vars(Retrainer) if not m.startswith("_") and callable(vars(Retrainer)[m])]
    assert {"ingest", "train", "predict", "feedback", "monitor", "report"} <= set(methods)
    for name in methods:
        assert f"`rt.{name}(" in page, f"Retrainer.{name} is not in docs/python.md's table"
