"""retrainer.policy."""
