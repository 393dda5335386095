"""The checkpoint -> evaluation pipeline of ``attrsearch evaluate``."""

from __future__ import annotations

from pathlib import Path


def evaluate_checkpoint(checkpoint: Path, out: Path, suite: str = "full", split: str = "test") -> dict[str, float]:
    """``attrsearch evaluate``: load an Explainer checkpoint (a file, or a run folder holding
    ``checkpoints/best.pt``) and its config, rebuild the dataset split, the Explanandum and (suites
    with transfer) the panel from that config, evaluate, write ``out``; returns the metrics."""
    from attrsearch.attribution import explainer_attribution
    from attrsearch.data import build_dataset
    from attrsearch.data.scan import scan_dataset
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.metrics.registry import check_suite
    from attrsearch.metrics.results import write_results
    from attrsearch.metrics.suites import SUITES
    from attrsearch.train.checkpoint import load_explainer
    from attrsearch.train.explanandum import get_explanandum, get_panel
    from attrsearch.train.runtime import configure_threads, resolve_device

    check_suite(suite)
    cfg, explainer = load_explainer(checkpoint, "cpu")
    configure_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device)
    explainer.to(device)
    scan_dataset(cfg.data, cfg.cache_dir)  # every image and mask (all splits: the Explanandum may train here)
    dataset = build_dataset(cfg.data, split, cfg.cache_dir)
    explanandum = get_explanandum(cfg, device)
    panel = get_panel(cfg, device) if SUITES[suite].uses("transfer") else []
    result = evaluate(
        explainer_attribution(explainer), explanandum, dataset, cfg.evaluation, suite=suite, panel=panel, device=device
    )
    write_results(result, out)
    return result.metrics
