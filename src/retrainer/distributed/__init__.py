"""retrainer.distributed."""
