"""Forward+backward time per batch of the default CPU models, side by side.

    .venv/bin/python analysis/benchmarks/bench_models.py --threads 2 --batch 64 --size 64

Rows:
- small_cnn train step: forward + backward to the weights (training the Explanandum).
- small_cnn frozen, 2B to input: what the wysiwyc loss (Stalder et al. 2022) costs per Explainer step (eval mode, no
  weight grads, backward to the masked images; 2x the batch: masked-in and masked-out).
- explanandum_encoder / unet_small: Explainer forward + backward (frozen encoder: decoder only).
- full Explainer step: Explainer + wysiwyc loss on the frozen small_cnn, forward + backward.
Median of ``--repeats`` timed runs after one warm-up; wall time and process CPU time (all threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from attrsearch.config import WysiwycObjective
from attrsearch.models import create_explainer, create_explanandum
from attrsearch.objectives.wysiwyc import wysiwyc_loss


def timed(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Median wall and process CPU seconds of ``fn`` (CPU time is less sensitive to a busy machine)."""
    fn()  # warm-up (oneDNN picks its kernels on the first call)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    b, c, s = args.batch, args.classes, args.size
    x = torch.randn(b, 3, s, s)
    labels = (torch.rand(b, c) < 0.3).float()

    classifier = create_explanandum("small_cnn", c).train()
    frozen = create_explanandum("small_cnn", c).eval().requires_grad_(False)
    resnet = create_explanandum("small_resnet", c).train()
    explainers = {
        "explanandum_encoder": create_explainer("explanandum_encoder", c, explanandum=frozen).train(),
        "explanandum_encoder (no image branch)": create_explainer(
            "explanandum_encoder", c, explanandum=frozen, image_branch=False
        ).train(),
        "unet_small": create_explainer("unet_small", c).train(),
    }

    def train_step(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            torch.nn.functional.binary_cross_entropy_with_logits(model(x), labels).backward()

        return run

    def frozen_to_input() -> None:
        images = torch.randn(2 * b, 3, s, s, requires_grad=True)
        frozen(images).sum().backward()

    def explainer_step(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            model(x).float().mean().backward()

        return run

    cfg = WysiwycObjective()

    def full_step(model: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            wysiwyc_loss(frozen, x, labels, model(x), cfg).loss.backward()

        return run

    rows = [
        ("small_cnn train step (B)", timed(train_step(classifier), args.repeats)),
        ("small_resnet train step (B)", timed(train_step(resnet), args.repeats)),
        ("small_cnn frozen, 2B, backward to input", timed(frozen_to_input, args.repeats)),
    ]
    for name, model in explainers.items():
        rows.append((f"{name} fwd+bwd (B)", timed(explainer_step(model), args.repeats)))
    for name in ("explanandum_encoder", "unet_small"):
        rows.append((f"full Explainer step: {name} + wysiwyc loss", timed(full_step(explainers[name]), args.repeats)))

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"batch {b}, {s}x{s} px, {c} classes, {torch.get_num_threads()} threads, median of {args.repeats}, load average {load}"
    )
    width = max(len(n) for n, _ in rows)
    print(f"  {'':{width}s}  {'wall':>9s}  {'cpu':>9s}")
    for name, (wall, cpu) in rows:
        print(f"  {name:{width}s}  {wall * 1000:6.0f} ms  {cpu * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
