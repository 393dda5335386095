"""``attrsearch production results/NAME``: the recommendation and the base, trained for production.

Both configurations of ``best.yaml`` (the best trial's values; the base's own values of the searched
fields otherwise identical) train with the same ``n`` seeds (``best.yaml``'s seed and the next ones)
and are scored on the test split with the full suite, into ``results/NAME/production/{best,base}/``
(each seed's final metrics in ``seeds/seed<S>/metrics.json``). The report then compares them per
metric, the optimised objective and the held-out metric families alike, with a paired test over
seeds (``attrsearch.analysis.production``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from attrsearch.analysis.production import PRODUCTION_DIR
from attrsearch.config.base import set_dotted
from attrsearch.errors import UserError
from attrsearch.results.layout import BEST_FILE

log = logging.getLogger(__name__)


def production_configs(root: Path) -> dict[str, dict[str, Any]]:
    """{"best": best.yaml's experiment, "base": the same with the base's values of the searched fields}."""
    from attrsearch.analysis.results import read_results
    from attrsearch.analysis.stats import base_values

    path = root / BEST_FILE
    if not path.is_file():
        raise UserError(f"{root}: no {BEST_FILE} (the sweep writes it once a trial has completed)")
    best = yaml.safe_load(path.read_text()) or {}
    base = yaml.safe_load(path.read_text()) or {}
    for dotted, value in base_values(read_results(root)).items():
        if value is not None:
            set_dotted(base, dotted, value)
    base["name"] = f"{best.get('name', root.name)}-base"
    return {"best": best, "base": base}


def run_production(root: str | Path, seeds: int = 3, restart: bool = False) -> dict[str, Path]:
    """Train and score both configurations with ``seeds`` seeds each; returns their folders."""
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.evaluate.experiment import run_experiment
    from attrsearch.resolve import resolve_experiment

    root = Path(root)
    if seeds < 2:
        raise UserError("--seeds: at least 2 (a paired test over seeds needs two)")
    configs = production_configs(root)
    checked = {
        k: resolve_experiment(validate(ExperimentConfig, v, source=f"{root / BEST_FILE} ({k})"), str(root))
        for k, v in configs.items()
    }
    out = {}
    for kind, cfg in checked.items():
        first = cfg.seed
        folder = root / PRODUCTION_DIR / kind
        log.info(
            "production: %s (%d of 2), seeds %d..%d, into %s", kind, len(out) + 1, first, first + seeds - 1, folder
        )
        run_experiment(cfg, folder, resume=not restart, seeds=list(range(first, first + seeds)))
        out[kind] = folder
    return out
