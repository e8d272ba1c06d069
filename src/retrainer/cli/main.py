"""Entry point of the ``retrainer`` command."""

from __future__ import annotations

from . import (  # noqa: F401  (registers commands)
    compare_cmd,
    data_cmds,
    demo_cmd,
    loop_cmds,
    mlflow_cmds,
    policy_cmds,
    report_cmd,
    rollout_cmd,
    rows_cmds,
    scheduler_cmd,
    serve_cmd,
    sign_cmd,
    train_cmds,
    version_cmds,
)
from .app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
