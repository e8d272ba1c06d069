"""Entry point of the ``retrainer`` command."""

from __future__ import annotations

from . import data_cmds, demo_cmd, loop_cmds, registry_cmds, train_cmds  # noqa: F401  (registers commands)
from .app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
