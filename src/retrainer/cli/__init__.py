"""retrainer.cli."""
