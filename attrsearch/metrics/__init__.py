"""Metrics of attributions: one module per family, the registry of names, the suites, one batch loop.

- family modules (formulas + scorer): ``segmentation`` (with the sanity rows), ``classification``,
  ``mask_stats``, ``class_specific``, ``transfer``, ``localization``, ``pointing``, ``context``,
  ``faithfulness``; ``common``: chunked classification and boxes shared by them.
- ``scorer``: the per-batch ``BatchContext``, the ``Scorer`` base, value collection and the family
  registry (``FAMILIES``, ``@register_family(name)`` on each family's scorer, in its own file).
- ``families``: imports the built-in family modules (registering them); ``suites``: the suites
  (``fast``, ``full``) as lists of registered family names and options.
- ``registry``: names, directions (``metric_mode``), ``format_registry``.
- ``evaluate``: ``evaluate`` (the batch loop); ``results``: ``EvaluationResult``, ``write_results``,
  ``average_results``.

Metrics see maps as tensors (``attrsearch.attribution`` makes them) and never import ``train`` or
``sweep``. Nothing is imported here, so ``attrsearch.metrics.registry`` stays cheap to import
(configs use it).
"""
