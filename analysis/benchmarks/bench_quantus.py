"""Deletion curves: the shipped batched ``causal_curves`` beside Quantus 0.6's PixelFlipping on identical
maps and protocol, in one run, with the evaluation's classifier in float32 and in bfloat16.

    .venv/bin/python analysis/benchmarks/bench_quantus.py [CONFIG.yaml] [--images 16] [--threads 1] [--repeats 3]

CONFIG (default ``sweeps/shapes_single.yaml``) gives the data (its test split), the Explanandum (from
the cache; trained first when missing, a few minutes) and the pixels per step. The maps are the
Explanandum's all-class Grad-CAM of each image's scored class (the present class it scores highest),
turned into distinct values by our rank order (ties by position), so Quantus's unstable argsort
removes exactly the pixels ours removes at every step. Protocol: deletion, the mean colour (zero in
normalised space: Quantus's ``perturb_baseline=0.0``; its ``"black"`` is each image's minimum), ``pixels_per_step``
pixels (x 3 channels = Quantus's ``features_in_step``) per step, sigmoid of the logit (Quantus run
with ``softmax=False``). Quantus's curve starts after the first step; its points are ours 1..n.

Quantus is timed through ``PixelFlipping.evaluate_batch`` (its per-batch loop: numpy perturbation and
its PyTorchModel, no preprocessing), which favours it slightly; ``__call__`` also asserts that
``features_in_step`` divides H x W, which 3 x 64 does not at 64 px. Ours is timed with the clean and the
zero image classified inside the timed block (the evaluation classifies them anyway).

Prints the seconds of each, the ratios, the largest curve and AUC differences to Quantus and every
deletion / insertion AUC's change under bfloat16. Quantus is the ``bench`` extra; without it the
script prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from attrsearch.attribution.methods import method_attribution
from attrsearch.config import load_experiment
from attrsearch.data import build_dataset, collate_samples
from attrsearch.metrics.common import Classifier, auto_chunk
from attrsearch.metrics.faithfulness import causal_curves, curve_auc, pixel_ranks, scored_classes, substrate
from attrsearch.train.explanandum import get_explanandum
from attrsearch.train.runtime import configure_threads

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "sweeps" / "shapes_single.yaml"


def ours(model, dtype, chunk, x, sal, c, mode, kind, pixels):
    """(curves (B, n + 1), seconds): the evaluation's path, clean / zero images classified in the block."""
    clf = Classifier(model, chunk, dtype=dtype)
    clf(x[:1])  # picks (and fuses / converts) the runner outside the timing, as the evaluation's first pass does
    start = time.perf_counter()
    clean = torch.sigmoid(clf(x).gather(1, c[:, None])[:, 0])
    fill = substrate(x, kind)
    zero = torch.sigmoid(clf(torch.zeros_like(x[:1]))[0, c]) if kind == "mean" else None
    first, last = (clean, zero) if mode == "deletion" else (zero, clean)
    curves = causal_curves(clf, x, sal, c, mode, fill, pixels, chunk, first, last)
    return curves, time.perf_counter() - start


def quantus_deletion(quantus, model, x, distinct, c, pixels, batch):
    """(curves (B, n) of sigmoid probabilities after steps 1..n, seconds) from Quantus's PixelFlipping."""
    from quantus.helpers.model.pytorch_model import PyTorchModel

    metric = quantus.PixelFlipping(
        features_in_step=3 * pixels, perturb_baseline=0.0, normalise=False, abs=False, disable_warnings=True
    )
    wrapped = PyTorchModel(model, channel_first=True, softmax=False, device="cpu")
    xs, a, ys = x.numpy(), distinct[:, None].numpy(), c.numpy()
    start = time.perf_counter()
    out = []
    for i in range(0, len(xs), batch):
        out += metric.evaluate_batch(
            model=wrapped, x_batch=xs[i : i + batch], y_batch=ys[i : i + batch], a_batch=a[i : i + batch]
        )
    seconds = time.perf_counter() - start
    return torch.sigmoid(torch.tensor(np.asarray(out), dtype=torch.float32)), seconds


def load_inputs(cfg, count: int):
    """The first ``count`` labelled test images, their scored classes and Grad-CAM maps of those classes."""
    dataset = build_dataset(cfg.data, "test", cfg.cache_dir)
    model = get_explanandum(cfg, "cpu")
    xs, ys = [], []
    for batch in torch.utils.data.DataLoader(dataset, batch_size=64, collate_fn=collate_samples):
        keep = batch["labels"].bool().any(1)
        xs.append(batch["image"][keep])
        ys.append(batch["labels"][keep])
        if sum(len(v) for v in xs) >= count:
            break
    x, y = torch.cat(xs)[:count], torch.cat(ys)[:count]
    with torch.no_grad():
        c, _ = scored_classes(model(x), y, "label")
    maps = method_attribution(model, "gradcam")(x)
    sal = maps.gather(1, c.view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[-2:]))[:, 0]
    h, w = sal.shape[-2:]
    distinct = (h * w - pixel_ranks(sal)).float().view_as(sal)  # same order as sal, no ties
    return model, x, c, distinct, dataset.info.image_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; each time is the fastest round's")
    args = parser.parse_args()
    try:
        import quantus
    except ImportError:
        print("bench_quantus: quantus is not installed (the bench extra: pip install '.[bench]'); skipped")
        return 0
    configure_threads(args.threads)
    cfg = load_experiment(args.config)
    model, x, c, sal, side = load_inputs(cfg, args.images)
    pixels = cfg.evaluation.faithfulness.pixels_per_step or side
    chunk = cfg.evaluation.classify_chunk or auto_chunk("cpu", side, side)
    print(f"{len(x)} images, {side} px, {pixels} pixels per step, chunk {chunk}, {args.threads} thread(s)")

    t_q, runs = float("inf"), {}
    for _ in range(args.repeats):  # interleaved, so a busy moment of a shared machine hits every variant alike
        theirs, seconds = quantus_deletion(quantus, model, x, sal, c, pixels, batch=len(x))
        t_q = min(t_q, seconds)
        for dtype in ("float32", "bfloat16"):
            curves, seconds = ours(model, dtype, chunk, x, sal, c, "deletion", "mean", pixels)
            runs[dtype] = (curves, min(seconds, runs.get(dtype, (None, float("inf")))[1]))
    ins = {dtype: ours(model, dtype, chunk, x, sal, c, "insertion", "blur", pixels)[0] for dtype in runs}
    ref = runs["float32"][0]
    q_curves = torch.cat([ref[:, :1], theirs], dim=1)  # Quantus has no step 0: the clean image's value
    print(f"Quantus PixelFlipping (float32):      {t_q:7.2f} s")
    for dtype, (_, seconds) in runs.items():
        print(f"ours, classifier {dtype:9s}:        {seconds:7.2f} s   Quantus / ours = {t_q / seconds:5.2f}x")
    print(
        f"agreement with Quantus (float32): max |curve diff| {(ref[:, 1:] - theirs).abs().max():.2e}, "
        f"max |deletion AUC diff| {(curve_auc(ref) - curve_auc(q_curves)).abs().max():.2e}"
    )
    for name, (a, b) in {
        "deletion": (ref, runs["bfloat16"][0]),
        "insertion": (ins["float32"], ins["bfloat16"]),
    }.items():
        change = (curve_auc(b) - curve_auc(a)).abs()
        metric = (curve_auc(b).mean() - curve_auc(a).mean()).abs()
        print(
            f"bfloat16 vs float32 {name} AUC per image: mean |change| {change.mean():.2e}, max {change.max():.2e}; "
            f"the metric (mean over images) changes by {metric:.2e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
