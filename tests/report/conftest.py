"""Seeded stores of three ages, built once per session (see ages.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .ages import build


@pytest.fixture(scope="session")
def aged_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``aged_store(age)`` -> (folder, raw spec, model), each age built at most once."""
    built: dict[str, tuple[Path, dict[str, Any], str]] = {}

    def get(age: str) -> tuple[Path, dict[str, Any], str]:
        if age not in built:
            folder = tmp_path_factory.mktemp(f"report-{age}")
            raw, model = build(folder, age)
            built[age] = (folder, raw, model)
        return built[age]

    return get
