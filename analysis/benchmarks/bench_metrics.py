"""Time the batched class-specific table and deletion/insertion against naive per-image loops.

Usage: ``python analysis/benchmarks/bench_metrics.py [--images 16] [--image-size 64] [--threads 2]``
       ``python analysis/benchmarks/bench_metrics.py --full-suite [--cache DIR]``

Default run (well under a minute): a random ``small_cnn`` (8 classes) on random 64 px images. The
naive versions loop over images and classify one image per (class, threshold) or per step with the
plain model, as RISE's reference code and a direct reading of Stalder et al. 2022, Table 1, do; the batched
versions are the ones ``evaluate`` uses. Both see the same inputs; their results are checked to be
equal, and the speed-ups are printed (goal: >= 10x each). Class-specific maps come in two kinds:
``random`` (smooth noise, every threshold gives a new mask: the worst case) and ``trained-like``
(blurred blobs on the present classes, empty masks elsewhere, as a trained Explainer gives).

``--full-suite`` times ``evaluate(..., suite="full")`` on the built-in test split (500 images,
64 px) with a random small_cnn Explanandum, a panel of two (small_cnn seed 1, small_resnet seed 0)
and two attributions: a random ``explanandum_encoder`` Explainer (worst case) and blurred
ground-truth masks (like a trained Explainer). Prints seconds per metric family.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from attrsearch.metrics import class_specific as cs
from attrsearch.metrics import faithfulness as ff
from attrsearch.metrics.common import Classifier, auto_chunk
from attrsearch.models import create_explanandum

THRESHOLDS = [round(0.1 * k, 1) for k in range(1, 10)]


def frozen(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def random_maps(n: int, c: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth noise in (0, 1): every threshold cuts a different mask (no reuse possible)."""
    coarse = torch.randn(n, c, size // 8, size // 8, generator=gen) * 2.0
    return torch.sigmoid(F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False))


def trained_like_maps(n: int, c: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """One or two blurred square blobs per image on 'present' classes, zeros elsewhere."""
    maps = torch.zeros(n, c, size, size)
    for i in range(n):
        for k in torch.randperm(c, generator=gen)[: 1 + i % 2].tolist():
            s = size // 4
            y, x = torch.randint(0, size - s, (2,), generator=gen).tolist()
            maps[i, k, y : y + s, x : x + s] = 1.0
    return gaussian_blur(maps.view(n * c, 1, size, size), [7, 7], [1.5, 1.5]).view(n, c, size, size)


def bench_kernels(args: argparse.Namespace) -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    c, size, n = 8, args.image_size, args.images
    model = frozen(create_explanandum("small_cnn", c, image_size=size))
    chunk = auto_chunk("cpu", size, size)
    clf = Classifier(model, chunk_size=chunk)
    plain = Classifier(model, chunk_size=chunk, fast=False)  # batched, without the folded-BN copy
    images = torch.randn(n, 3, size, size, generator=gen)
    clf(images[:8])  # pick the runner outside the timings
    print(
        f"small_cnn, {n} images of {size} px, {c} classes, {torch.get_num_threads()} threads, chunks of {chunk} images"
    )

    naive_model = torch.inference_mode()(model.__call__)
    for kind, maps in (("random", random_maps(n, c, size, gen)), ("trained-like", trained_like_maps(n, c, size, gen))):
        fast, t_fast = timed(lambda: cs.class_specific_probs(clf, images, maps, THRESHOLDS))
        _, t_plain = timed(lambda: cs.class_specific_probs(plain, images, maps, THRESHOLDS))
        slow, t_slow = timed(lambda: cs.class_specific_naive(naive_model, images, maps, THRESHOLDS))
        ok = torch.allclose(fast, slow, atol=1e-4)
        print(
            f"class-specific ({kind:12s}): naive {t_slow:6.2f} s  batched {t_fast:6.2f} s (plain model {t_plain:6.2f} s)"
            f"  speed-up {t_slow / t_fast:5.1f}x  same result: {ok}"
        )

    pps = size  # RISE: image side pixels per step (64 steps at 64 px)
    sal = random_maps(n, 1, size, gen)[:, 0]
    classes = torch.randint(0, c, (n,), generator=gen)
    for mode, kind in (("deletion", "mean"), ("insertion", "blur")):
        fill = ff.substrate(images, kind)
        fast, t_fast = timed(lambda: ff.causal_curves(clf, images, sal, classes, mode, fill, pps, chunk))
        _, t_plain = timed(lambda: ff.causal_curves(plain, images, sal, classes, mode, fill, pps, chunk))
        slow, t_slow = timed(lambda: ff.causal_curves_naive(naive_model, images, sal, classes, mode, fill, pps))
        ok = torch.allclose(fast, slow, atol=1e-4)
        print(
            f"{mode:9s} ({ff.num_steps(size * size, pps)} steps, {kind} substrate): naive {t_slow:6.2f} s  batched {t_fast:6.2f} s"
            f" (plain model {t_plain:6.2f} s)  speed-up {t_slow / t_fast:5.1f}x  same result: {ok}"
        )


def bench_full_suite(args: argparse.Namespace) -> None:
    from attrsearch.attribution import explainer_attribution
    from attrsearch.config import DataConfig, EvaluationConfig
    from attrsearch.data import build_dataset
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.models import create_explainer

    cache = args.cache or tempfile.mkdtemp(prefix="bench-metrics-")
    data_cfg = DataConfig(image_size=args.image_size)
    dataset, t_data = timed(lambda: build_dataset(data_cfg, "test", cache))
    print(f"built-in test split: {len(dataset)} images of {args.image_size} px ({t_data:.1f} s to build/load)")
    torch.manual_seed(0)
    c = dataset.info.num_classes
    explanandum = frozen(create_explanandum("small_cnn", c, image_size=args.image_size))
    panel = [
        ("small_cnn-s1", frozen(create_explanandum("small_cnn", c, image_size=args.image_size))),
        ("small_resnet-s0", frozen(create_explanandum("small_resnet", c, image_size=args.image_size))),
    ]
    explainer = frozen(create_explainer("explanandum_encoder", c, explanandum=explanandum))

    lookup = {}
    for i in range(len(dataset)):
        s = dataset[i]
        gt = (s["masks"] == 1).float()
        lookup[s["image"].numpy().tobytes()] = gaussian_blur(gt[:, None], [7, 7], [1.5, 1.5])[:, 0]

    def gt_like(images: torch.Tensor) -> torch.Tensor:
        return torch.stack([lookup[x.numpy().tobytes()] for x in images])

    probe = torch.randn(512, 3, args.image_size, args.image_size)
    chunk = auto_chunk("cpu", args.image_size, args.image_size)
    for name, model in [("small_cnn", explanandum), panel[1]]:
        clf = Classifier(model, chunk)
        clf(probe[:8])
        _, sec = timed(lambda: clf(probe))
        print(f"{name}: {512 / sec:.0f} images/s in chunks of {chunk} (the load on the machine sets this)")

    cfg = EvaluationConfig()
    ctx = data_cfg.shapes.context.biased_classes
    for name, attribution in (
        ("random Explainer", explainer_attribution(explainer)),
        ("blurred ground truth", gt_like),
    ):
        res, total = timed(
            lambda: evaluate(attribution, explanandum, dataset, cfg, "full", panel=panel, context_classes=ctx)
        )
        parts = "  ".join(f"{k} {v:.1f}" for k, v in res.timings.items() if k != "total" and "/" not in k)
        counts = "  ".join(
            f"{k.split('/')[1]} {v:.0f}" for k, v in res.timings.items() if k.startswith("images_classified/")
        )
        print(f"full suite, {name:21s}: {total:5.1f} s  ({parts})")
        print(f"    images classified: {counts}")
        print(
            f"    iou {res.metrics['segmentation/iou']:.3f}  selectivity {res.metrics['class_specific/selectivity']:.2f}"
            f"  deletion {res.metrics['faithfulness/deletion_auc']:.3f}  insertion {res.metrics['faithfulness/insertion_auc']:.3f}"
            f"  ({res.metrics['faithfulness/images']:.0f} images)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--full-suite", action="store_true", help="time the full suite on the built-in test split instead"
    )
    parser.add_argument("--cache", default=None, help="dataset cache folder for --full-suite (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.full_suite:
        bench_full_suite(args)
    else:
        bench_kernels(args)


if __name__ == "__main__":
    main()
