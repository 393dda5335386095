"""``attrsearch compare``: the Explainer and baseline methods side by side on one Explanandum.

Every entry is scored with the same suite on the same split (``score_method`` / ``score_explainer``
of ``attrsearch.evaluate.pipeline``); ``explainer`` is the config's Explainer, trained like
``attrsearch train`` into ``DIR/explainer/`` (an existing checkpoint there is reused) or taken from
``--checkpoint``. Slow methods may be capped to the first N images (``--max-images rise=64``); the
tables say so and compare each method with the sanity rows of *its own* images. Each entry also
gets the sanity checks of Adebayo et al. 2018 (cascading randomisation of the Explanandum's layers,
optionally data randomisation).

Writes (rendered by ``attrsearch.evaluate.comparison``): ``DIR/comparison.md`` / ``.csv``,
``DIR/tables/class_specific_<method>.csv`` and ``sanity_randomization.csv``, and
``DIR/methods/<method>/metrics.json`` and ``tables/`` with each entry's full results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attrsearch.attribution import explainer_attribution
from attrsearch.attribution.methods import parse_option_values, resolve_method
from attrsearch.attribution.sanity import (
    SPEARMAN_THRESHOLD,
    cascading_randomization,
    compare_maps,
    parametrized_layers,
)
from attrsearch.data import build_dataset, collate_samples
from attrsearch.errors import UserError
from attrsearch.evaluate.checks import check_method, untrained_explanandum
from attrsearch.evaluate.comparison import comparison_frame, comparison_markdown, write_tables
from attrsearch.evaluate.experiment import run_experiment
from attrsearch.evaluate.pipeline import score_explainer, score_method
from attrsearch.metrics.registry import check_suite
from attrsearch.metrics.results import write_results
from attrsearch.train.checkpoint import load_checkpoint, load_explainer
from attrsearch.train.explanandum import get_explanandum
from attrsearch.train.runtime import configure_threads, resolve_device

log = logging.getLogger(__name__)

EXPLAINER = "explainer"
# compare --sanity-data: the Explainer trained against the shuffled-label Explanandum
SHUFFLED_EXPLAINER = "explainer_shuffled_labels"
DEFAULT_SANITY_IMAGES = 4

# A method as the sanity checks call it: (model, images (B, 3, H, W), targets (B, C) | None) -> maps.
SanityMethod = Callable[[nn.Module, Tensor, Tensor | None], Tensor]


def parse_methods(text: str) -> list[str]:
    """``"explainer,gradcam,rise"`` -> names, in order; one-line errors for an empty or repeated entry."""
    names = [n.strip() for n in str(text).split(",")]
    if not names or any(not n for n in names):
        raise UserError(f"--methods: expected comma-separated method names, got {text!r}")
    seen = [n for i, n in enumerate(names) if n in names[:i]]
    if seen:
        raise UserError(f"--methods: {seen[0]} is listed twice")
    return names


def parse_caps(items: list[str] | None, methods: list[str]) -> dict[str, int]:
    """``["rise=64"]`` -> ``{"rise": 64}``; the method must be one of ``methods``, N >= 1."""
    caps: dict[str, int] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in methods:
            raise UserError(f"--max-images {item}: expected METHOD=N with METHOD one of {', '.join(methods)}")
        try:
            caps[name] = int(raw)
        except ValueError:
            raise UserError(f"--max-images {item}: N must be a whole number") from None
        if caps[name] < 1:
            raise UserError(f"--max-images {item}: N must be at least 1")
    return caps


def parse_method_options(items: list[str] | None, methods: list[str]) -> dict[str, dict[str, Any]]:
    """``["rise.masks=2000"]`` -> ``{"rise": {"masks": 2000}}`` (values parsed as YAML)."""
    grouped: dict[str, list[str]] = {}
    for item in items or []:
        name, dot, rest = item.partition(".")
        if not dot or name not in methods or name == EXPLAINER:
            raise UserError(f"--option {item}: expected METHOD.KEY=VALUE with METHOD one of the baseline --methods")
        grouped.setdefault(name, []).append(rest)
    return {name: parse_option_values(values) for name, values in grouped.items()}


def _explainer_checkpoint(cfg, out: Path, checkpoint: Path | None, run_name: str = EXPLAINER) -> Path:
    """``--checkpoint``, else ``DIR/<run_name>/checkpoints/best.pt`` if a finished run left it, else
    train the config's Explainer there (``run_experiment``, resumable) and return its best checkpoint."""
    if checkpoint is not None:
        return checkpoint
    run_dir = out / run_name
    best = run_dir / "checkpoints" / "best.pt"
    if best.is_file() and (run_dir / "metrics.json").is_file():
        log.info("compare: %s: reusing %s", run_name, best)
        return best
    log.info("compare: %s: training the config's Explainer into %s", run_name, run_dir)
    summary = run_experiment(cfg, run_dir, resume=True)
    return Path(summary["checkpoint_path"])


def labelled_batch(cfg, split: str, count: int) -> dict[str, Tensor]:
    """The first ``count`` images of the split that have a label, collated (``collate_samples``: image,
    labels, masks, ...)."""
    ds = build_dataset(cfg.data, split, cfg.cache_dir)
    samples = []
    for i in range(len(ds)):
        sample = ds[i]
        if torch.as_tensor(sample["labels"]).bool().any():
            samples.append(sample)
        if len(samples) == count:
            break
    if not samples:
        raise UserError(f"compare: the {split} split has no labelled image for the sanity checks")
    return collate_samples(samples)


def sanity_batch(cfg, split: str, count: int) -> tuple[Tensor, Tensor]:
    """The first ``count`` images of the split that have a label: (images (N, 3, H, W), targets (N, C) bool)."""
    batch = labelled_batch(cfg, split, count)
    return batch["image"], batch["labels"].bool()


def _method_fn(name: str, options: dict[str, Any]) -> SanityMethod:
    fn, opts = resolve_method(name, options)
    kwargs = opts.model_dump()
    return lambda model, images, targets: fn(model, images, targets, **kwargs)


def _explainer_fn(checkpoint: Path, device: torch.device) -> SanityMethod:
    """The Explainer as a sanity-check method: it never reads the model it is handed (amortised)."""
    _, explainer = load_explainer(checkpoint, device)
    attribute = explainer_attribution(explainer)
    return lambda model, images, targets: attribute(images.to(device))


def check_inputs(cfg, methods, checkpoint, options, suite: str, sanity_images: int) -> None:
    """Everything that can be checked, before any work: the suite, names, options, CAM layers, LRP
    rules (against the untrained architecture) and the checkpoint file."""
    check_suite(suite)
    if sanity_images < 1:
        raise UserError("--sanity-images: must be at least 1")
    model = untrained_explanandum(cfg)
    for name in methods:
        if name != EXPLAINER:
            check_method(cfg, name, options.get(name), model=model)
    if checkpoint is not None:
        if EXPLAINER not in methods:
            raise UserError("--checkpoint: only used by the explainer entry of --methods")
        load_checkpoint(checkpoint)  # a one-line error now, not after the baselines ran


class Entrants:
    """What every entry is scored against: the Explanandum, the sanity images and, with ``sanity_data``,
    the shuffled-label Explanandum (and the Explainer trained against it)."""

    def __init__(self, cfg, methods, out: Path, checkpoint, split: str, sanity_images: int, sanity_data: bool):
        configure_threads(cfg.train.num_threads)
        self.device = device = resolve_device(cfg.train.device)
        self.checkpoint = _explainer_checkpoint(cfg, out, checkpoint) if EXPLAINER in methods else None
        self.explanandum = get_explanandum(cfg, device)
        self.shuffled = self.shuffled_fn = None
        if sanity_data:
            recipe = cfg.explanandum.recipe.model_copy(update={"shuffle_labels": True})
            explanandum = cfg.explanandum.model_copy(update={"recipe": recipe})
            shuffled_cfg = cfg.model_copy(update={"explanandum": explanandum})
            self.shuffled = get_explanandum(shuffled_cfg, device)
            if EXPLAINER in methods:  # amortised: its data randomisation is an Explainer trained against `shuffled`
                shuffled_ckpt = _explainer_checkpoint(shuffled_cfg, out, None, SHUFFLED_EXPLAINER)
                self.shuffled_fn = _explainer_fn(shuffled_ckpt, device)
        images, targets = sanity_batch(cfg, split, sanity_images)
        self.images, self.targets = images.to(device), targets.to(device)


def score_entry(cfg, name: str, at: Entrants, options, suite: str, split: str, cap: int | None):
    """One entry scored with the suite and its sanity checks: (``EvaluationResult``, the cascade)."""
    log.info("compare: scoring %s%s", name, f" on the first {cap} images" if cap is not None else "")
    if name == EXPLAINER:
        result = score_explainer(at.checkpoint, suite, split, cfg, at.device, cap)
        fn = _explainer_fn(at.checkpoint, at.device)
    else:
        result = score_method(cfg, name, options.get(name), suite, split, cap, at.device, at.explanandum)
        fn = _method_fn(name, options.get(name, {}))
    n = min(len(at.images), cap if cap is not None else len(at.images))  # a capped method: fewer sanity images
    x, t = at.images[:n], at.targets[:n]
    steps = 1 + len(parametrized_layers(at.explanandum))  # the original maps, then one set per randomised layer
    with _bar(f"{name}: sanity, cascading randomisation", steps, cfg.train.progress) as bar:
        sanity = cascading_randomization(at.explanandum, _counted(fn, bar), x, t)
    result.metrics.update(sanity.metrics())
    result.metrics["sanity/randomization/images"] = float(n)
    if at.shuffled is not None:
        randomised = at.shuffled_fn if name == EXPLAINER else fn
        data = compare_maps(fn(at.explanandum, x, t), randomised(at.shuffled, x, t), t)
        result.metrics["sanity/data_randomization/spearman"] = data["spearman"]
        result.metrics["sanity/data_randomization/ssim"] = data["ssim"]
        result.metrics["sanity/data_randomization/passed"] = float(data["spearman"] <= SPEARMAN_THRESHOLD)
    return result, sanity


def _bar(desc: str, total: int, enabled: bool) -> Any:
    """A progress bar (what, n of N, elapsed and time left), like ``attrsearch train``'s."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"compare: {desc}", unit="maps", disable=not enabled, leave=False)


def _counted(fn: SanityMethod, bar: Any) -> SanityMethod:
    """``fn`` advancing ``bar`` by one after each call."""

    def method(model: nn.Module, images: Tensor, targets: Tensor | None) -> Tensor:
        maps = fn(model, images, targets)
        bar.update(1)
        return maps

    return method


def _explainer_notes(methods: list[str], sanity_data: bool) -> list[str]:
    notes = []
    if EXPLAINER in methods:
        notes.append(
            "explainer: amortised, its maps are a function of the image alone at inference (the Explanandum is read "
            "only while training), so randomising the Explanandum's layers leaves them unchanged by construction; "
            "the check that applies is data randomisation with an Explainer retrained on the shuffled-label "
            "classifier" + (f" (trained into {SHUFFLED_EXPLAINER}/)" if sanity_data else " (--sanity-data)")
        )
    if sanity_data:
        notes.append(
            "data randomisation: maps for the Explanandum vs for one trained on shuffled labels (same recipe; the "
            "Explainer: one trained against it); **fail** when their Spearman exceeds the threshold"
        )
    return notes


def compare(
    cfg,
    methods: list[str],
    out: Path,
    *,
    checkpoint: Path | None = None,
    max_images: dict[str, int] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    suite: str = "full",
    split: str | None = None,
    sanity_images: int = DEFAULT_SANITY_IMAGES,
    sanity_data: bool = False,
) -> dict[str, Any]:
    """Score ``methods`` (``explainer`` and/or method names) and write the comparison into ``out``.

    Everything that can be checked is checked first (``check_inputs``). Returns ``{"markdown": path,
    "csv": path, "results": {method: metrics}}``.
    """
    out = Path(out)
    split = split or cfg.evaluation.split
    max_images, options = dict(max_images or {}), dict(options or {})
    check_inputs(cfg, methods, checkpoint, options, suite, sanity_images)
    entrants = Entrants(cfg, methods, out, checkpoint, split, sanity_images, sanity_data)
    results, notes, sanity_layers = {}, [], {}
    started = time.perf_counter()
    for k, name in enumerate(methods):
        if k:
            spent = time.perf_counter() - started
            left = spent / k * (len(methods) - k)
            log.info(
                "compare: entry %d of %d (%s); %.0f s so far, about %.0f s left", k + 1, len(methods), name, spent, left
            )
        result, sanity_layers[name] = score_entry(cfg, name, entrants, options, suite, split, max_images.get(name))
        write_results(result, out / "methods" / name)
        results[name] = result
        notes.extend(n for n in result.notes if n.startswith(f"{name}:"))
    notes += _explainer_notes(methods, sanity_data)

    write_tables(out, results, sanity_layers)
    frame = comparison_frame(results)
    frame.to_csv(out / "comparison.csv")
    md = comparison_markdown(cfg, results, frame, split, suite, max_images, notes, SPEARMAN_THRESHOLD)
    (out / "comparison.md").write_text(md)
    metrics = {k: v.metrics for k, v in results.items()}
    return {"markdown": out / "comparison.md", "csv": out / "comparison.csv", "results": metrics}
