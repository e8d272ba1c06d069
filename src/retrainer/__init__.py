"""retrainer keeps tabular ML models good after they ship."""

__version__ = "0.1.0"
