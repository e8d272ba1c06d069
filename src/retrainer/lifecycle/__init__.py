"""retrainer.lifecycle."""
