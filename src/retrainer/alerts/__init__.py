"""retrainer.alerts."""
