"""retrainer.monitoring."""
