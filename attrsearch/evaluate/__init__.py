"""Scoring, above training: the pipelines behind ``attrsearch evaluate``, ``attrsearch compare`` and
the "train, then score" story of ``attrsearch train`` and every sweep trial.

- ``pipeline``: one scoring pipeline (``score``) for every source of maps, and ``evaluate_checkpoint``
  / ``evaluate_method`` (``attrsearch evaluate``);
- ``sources``: where the maps come from, the one difference: an Explainer checkpoint, a baseline
  method, an exported Explainer;
- ``checks``: a baseline method checked against the untrained Explanandum before any work;
- ``refine``: test-time refinement of any attribution's maps, and the seconds-per-image timer;
- ``experiment``: ``run_experiment``, train (``attrsearch.train``) then score with the final suite,
  or score an experiment's ``method:`` and train nothing;
- ``compare`` (orchestration) and ``comparison`` (rendering): ``attrsearch compare``.
"""
