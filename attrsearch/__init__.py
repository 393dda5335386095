"""attrsearch: study and tune learned attribution (Explainer networks for frozen classifiers)."""

__version__ = "0.1.0"
