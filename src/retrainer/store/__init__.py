"""retrainer.store."""
