"""retrainer.serving."""
