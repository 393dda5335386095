"""The results folder contract, without Ray: below both ``sweep`` (which writes a results folder from
Ray's state) and ``analysis`` (which reads one for ``attrsearch status`` and ``attrsearch report``).

- ``layout``: the file names of ``<storage>/<sweep>/`` and of each trial folder, the columns of
  ``trials.csv`` and the bookkeeping keys of a reported result that are not metrics;
- ``trial``: the trial record (one row of ``trials.csv``), written and read back here only;
- ``choice``: ranking, the Pareto front, the best trial (``best.yaml``) and the recommended one (the
  report's robust pick), so that ``best.yaml``, ``pareto.csv`` and the report agree by construction.
"""
