"""retrainer.evaluation."""
