"""Deletion / insertion on a trained Explainer: the cost and the AUCs of the shipped protocol beside
the two ways to make it cheaper (a bfloat16 classifier, fewer images), on the same maps in one run.

    .venv/bin/python analysis/benchmarks/bench_faithfulness_options.py RUN/checkpoints/best.pt [--caps 200 250]

The checkpoint's own config gives the data (its test split), the Explanandum (from the cache) and the
faithfulness settings (substrates, pixels per step, scored class). Per image: the scored class, its
map from the Explainer, the deletion and insertion curves (``metrics.faithfulness.causal_curves``)
with the evaluation's classifier (float32, fused) and with the same classifier under CPU bfloat16
autocast. Prints each variant's time, mean AUCs with their standard errors, the bfloat16 deviations
(mean and largest per image) and the means on the first N images for each ``--caps`` N.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from attrsearch.attribution import explainer_attribution
from attrsearch.data import build_dataset, collate_samples
from attrsearch.metrics.common import Classifier, auto_chunk
from attrsearch.metrics.faithfulness import causal_curves, curve_auc, scored_classes, substrate
from attrsearch.train.checkpoint import load_explainer
from attrsearch.train.explanandum import get_explanandum
from attrsearch.train.runtime import configure_threads


def bfloat16(classify: Classifier) -> Callable[[Tensor], Tensor]:
    def run(images: Tensor) -> Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return classify(images).float()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--caps", type=int, nargs="*", default=[200, 250])
    parser.add_argument("--threads", type=int, default=None, help="default: the checkpoint config's")
    args = parser.parse_args()
    cfg, explainer = load_explainer(args.checkpoint, "cpu")
    configure_threads(args.threads or cfg.train.num_threads)
    fcfg = cfg.evaluation.faithfulness
    dataset = build_dataset(cfg.data, "test", cfg.cache_dir)
    side = dataset.info.image_size
    chunk = cfg.evaluation.classify_chunk or auto_chunk("cpu", side, side)
    classify = Classifier(get_explanandum(cfg, "cpu"), chunk)
    attribute = explainer_attribution(explainer)
    pixels = fcfg.pixels_per_step or side
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=False, collate_fn=collate_samples)

    batches = []  # (images, scored classes, their maps): the same inputs for every variant
    for batch in loader:
        x = batch["image"]
        classes, use = scored_classes(classify(x), batch["labels"], fcfg.scored_class)
        maps = attribute(x)
        sal = maps.gather(1, classes.view(-1, 1, 1, 1).expand(-1, 1, side, side))[:, 0]
        batches.append((x[use], classes[use], sal[use]))

    aucs, seconds = {}, {}
    for name, run in (("float32 (shipped)", classify), ("bfloat16 autocast", bfloat16(classify))):
        start = time.perf_counter()
        out = {"deletion": [], "insertion": []}
        for x, c, sal in batches:
            for mode, kind in (("deletion", fcfg.deletion_substrate), ("insertion", fcfg.insertion_substrate)):
                curves = causal_curves(run, x, sal, c, mode, substrate(x, kind), pixels, chunk)
                out[mode].append(curve_auc(curves))
        seconds[name] = time.perf_counter() - start
        aucs[name] = {mode: torch.cat(v) for mode, v in out.items()}

    ref, low = aucs["float32 (shipped)"], aucs["bfloat16 autocast"]
    n = len(ref["deletion"])
    f32, b16 = seconds["float32 (shipped)"], seconds["bfloat16 autocast"]
    print(f"{args.checkpoint}: {n} images, {pixels} pixels per step, chunks of {chunk}")
    print(f"time: float32 {f32:.1f} s, bfloat16 {b16:.1f} s ({f32 / b16:.2f}x)")
    for mode in ("deletion", "insertion"):
        a, b = ref[mode], low[mode]
        print(
            f"{mode} AUC: all {n}: {a.mean():.4f} (s.e. {a.std().item() / math.sqrt(n):.4f}); "
            f"bfloat16 {b.mean():.4f} (mean diff {(b - a).mean():+.5f}, largest per image {(b - a).abs().max():.4f})"
        )
        for cap in (c for c in args.caps if c < n):
            part = a[:cap]
            print(
                f"  first {cap}: {part.mean():.4f} (s.e. {part.std().item() / math.sqrt(cap):.4f}; "
                f"{part.mean() - a.mean():+.4f} vs all; float32 time ~{f32 * cap / n:.1f} s by count)"
            )


if __name__ == "__main__":
    main()
