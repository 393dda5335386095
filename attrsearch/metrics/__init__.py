"""Metrics of attributions: one module per family, the registry of names, one evaluation entry point.

- ``attribution``: the interface (images -> per-class maps) and ``explainer_attribution``.
- ``segmentation``, ``class_specific``, ``transfer``, ``localization``, ``faithfulness``,
  ``pointing``, ``context``, ``mask_stats``, ``classification``: batched tensor functions.
- ``registry``: names, directions (``metric_mode``), suites, ``format_registry``.
- ``evaluate``: ``evaluate``, ``write_results``, ``evaluate_checkpoint``.

Nothing is imported here, so ``attrsearch.metrics.registry`` stays cheap to import (configs use it).
"""
