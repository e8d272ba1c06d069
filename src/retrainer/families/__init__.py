"""retrainer.families."""
