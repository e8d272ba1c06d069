"""retrainer.scheduler."""
