"""The ``retrainer`` CLI: Typer commands, thin wrappers over lifecycle/."""
