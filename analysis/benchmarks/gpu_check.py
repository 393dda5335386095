"""One-command GPU check: the numbers that show attrsearch uses a GPU well, as one table.

    bash analysis/benchmarks/gpu_check.sh          # CUDA, ResNet-50 at 224 px, C = 20; at most ~8 minutes
    bash analysis/benchmarks/gpu_check.sh --cpu    # reduced sizes on CPU (what the test suite runs)

Rows:
- Explainer training step (the wysiwyc objective, DeepLabV3-ResNet50 Explainer on a frozen ResNet-50
  Explanandum, 224 px) with bf16 autocast and channels_last, as ``attrsearch train`` runs on CUDA: images/s;
- maps/s for C classes: the Explainer (one forward pass), all-class Grad-CAM (one forward pass, C
  gradients), captum's LayerGradCam per class (C passes) and RISE;
- deletion / insertion: (image, class) curves per second with the evaluation's bfloat16 classifier,
  beside that classifier's forward throughput measured in the same call; "of limit" is the share of
  the forward throughput the curves use (each image-class costs 2 x (steps + 1) forward images);
- two fractional-GPU trials (``resources_per_trial`` gpu 0.5) of a tiny Ray Tune sweep running at once,
  each capping its memory with ``torch.cuda.set_per_process_memory_fraction(0.5)`` (the sweep's
  ``cap_gpu_memory``): their overlap in time, their peak memory and whether an allocation beyond the cap
  is refused. On CPU they run only with ``--ray`` (logical GPUs, no memory cap), else the row says why.

Random weights throughout (throughput does not depend on them); nothing is downloaded or written.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from attrsearch.attribution import explainer_attribution
from attrsearch.attribution.methods import method_attribution
from attrsearch.config.objectives import WysiwycObjective
from attrsearch.metrics.common import Classifier
from attrsearch.metrics.faithfulness import causal_curves, num_steps, substrate
from attrsearch.models import create_explainer, create_explanandum
from attrsearch.objectives import OBJECTIVES


@dataclass(frozen=True)
class Sizes:
    image: int
    classes: int
    train_batch: int
    maps_batch: int
    captum_images: int
    rise_images: int
    rise_masks: int
    curve_images: int
    explainer: str
    repeats: int
    explanandum: str = "resnet50"
    explanandum_options: tuple[tuple[str, int], ...] = ()


CUDA_SIZES = Sizes(224, 20, 32, 32, 4, 2, 4000, 16, "deeplabv3_resnet50", 5)
# CPU: the same code paths on a tiny Explanandum, so the check runs in seconds and cannot rot.
CPU_SIZES = Sizes(32, 4, 2, 2, 1, 1, 50, 2, "unet_small", 1, "small_resnet", (("width", 8), ("blocks_per_stage", 1)))


def frozen(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn`` after one warm-up call (synchronised on CUDA)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def train_step_rate(explanandum, s: Sizes, device: torch.device) -> float:
    """Images/s of one Explainer training step under bf16 autocast (CUDA) and channels_last."""
    explainer = create_explainer(s.explainer, s.classes, explanandum=explanandum).to(device)
    explainer = explainer.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam([p for p in explainer.parameters() if p.requires_grad], lr=1e-4)
    loss_fn = OBJECTIVES.get("wysiwyc").loss
    cfg = WysiwycObjective()
    x = torch.randn(s.train_batch, 3, s.image, s.image, device=device).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(s.train_batch, s.classes, device=device) < 0.2).float()
    y[:, 0] = 1.0
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step() -> None:
        with amp:
            out = loss_fn(explanandum, x, y, explainer(x), cfg)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    return s.train_batch / timed(step, device, s.repeats)


def map_rates(explanandum, s: Sizes, device: torch.device) -> list[tuple[str, float, str]]:
    """maps/s (one map = one image and class) of the Explainer and three baselines."""
    explainer = frozen(create_explainer(s.explainer, s.classes, explanandum=explanandum), device)
    rows = []
    runs = {
        "Explainer": (explainer_attribution(explainer), s.maps_batch, "one forward pass"),
        "Grad-CAM, all classes": (method_attribution(explanandum, "gradcam"), s.maps_batch, "one forward pass"),
        "captum LayerGradCam per class": (
            method_attribution(explanandum, "captum:LayerGradCam", {"batch": 64}),
            s.captum_images,
            "C passes",
        ),
        "RISE": (
            method_attribution(explanandum, "rise", {"masks": s.rise_masks}),
            s.rise_images,
            f"{s.rise_masks} masks",
        ),
    }
    for name, (attribute, count, note) in runs.items():
        x = torch.randn(count, 3, s.image, s.image, device=device)
        seconds = timed(lambda a=attribute, x=x: a(x), device, 1 if name == "RISE" else s.repeats)
        rows.append((f"maps/s: {name}", count * s.classes / seconds, f"{note}, {count} images, C = {s.classes}"))
    return rows


def curve_rates(explanandum, s: Sizes, device: torch.device) -> list[tuple[str, float, str]]:
    """Deletion + insertion image-classes/s beside the classifier's forward images/s, same classifier."""
    dtype = "bfloat16"
    chunk = 256 if device.type == "cuda" else 16
    clf = Classifier(explanandum, chunk, dtype=dtype)
    batch = torch.randn(chunk, 3, s.image, s.image, device=device)
    forward = chunk / timed(lambda: clf(batch), device, s.repeats)
    x = torch.randn(s.curve_images, 3, s.image, s.image, device=device)
    sal = torch.rand(s.curve_images, s.image, s.image, device=device)
    c = torch.zeros(s.curve_images, dtype=torch.long, device=device)
    pixels = s.image  # the default pixels per step: the image side

    def curves() -> None:
        for mode, kind in (("deletion", "mean"), ("insertion", "blur")):
            causal_curves(clf, x, sal, c, mode, substrate(x, kind), pixels, chunk)

    rate = s.curve_images / timed(curves, device, 1)
    cost = 2 * (num_steps(s.image * s.image, pixels) + 1)
    return [
        (f"classifier forward ({dtype})", forward, f"images/s, chunks of {chunk}"),
        (
            "deletion + insertion",
            rate,
            f"image-classes/s; {cost} forward images each: {rate * cost / forward:.0%} of limit",
        ),
    ]


def _trial(config: dict) -> None:
    """One fractional-GPU trial: cap the memory share, train a tiny model, report time and memory."""
    from ray import tune

    from attrsearch.sweep.trainable import cap_gpu_memory

    start = time.time()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    cap_gpu_memory(config["gpu"])
    model = create_explanandum("small_cnn", 4, image_size=64).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(config["steps"]):
        loss = model(torch.randn(32, 3, 64, 64, device=device)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    refused = peak = -1.0
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
        total = torch.cuda.get_device_properties(0).total_memory
        try:  # 60% of the card in one tensor: beyond a 0.5 cap
            torch.empty(int(0.6 * total), dtype=torch.uint8, device=device)
            refused = 0.0
        except torch.cuda.OutOfMemoryError:
            refused = 1.0
    tune.report({"start": start, "end": time.time(), "peak_gib": peak, "refused": refused})


def fractional_trials(device: torch.device, use_ray: bool) -> list[tuple[str, float, str]]:
    if device.type != "cuda" and not use_ray:
        return [
            ("fractional-GPU trials", float("nan"), "skipped on CPU (no GPU to share; --ray runs them on logical GPUs)")
        ]
    import ray
    from ray import tune

    storage = tempfile.mkdtemp(prefix="gpu_check_")  # Tune's results folder, removed below
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2, num_gpus=None if device.type == "cuda" else 1, include_dashboard=False, log_to_driver=False
        )
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trial, {"cpu": 1, "gpu": 0.5}),
            param_space={"gpu": 0.5, "steps": tune.grid_search([200 if device.type == "cuda" else 5] * 2)},
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(name="gpu_check", storage_path=storage, verbose=0),
        )
        frame = tuner.fit().get_dataframe()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        if started:
            ray.shutdown()
    overlap = frame["end"].min() - frame["start"].max()
    note = f"2 trials x gpu 0.5, overlapping {max(overlap, 0.0):.1f} s"
    if device.type == "cuda":
        refused = "refused" if (frame["refused"] == 1.0).all() else "NOT refused"
        note += f"; peak {frame['peak_gib'].max():.2f} GiB each; 0.6 of the card beyond the 0.5 cap: {refused}"
    else:
        note += "; logical GPUs on CPU, no memory cap to check"
    return [("fractional-GPU trials running at once", float(len(frame)), note)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="reduced sizes on CPU")
    parser.add_argument("--ray", action="store_true", help="on CPU: also run the fractional trials (logical GPUs)")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run with --cpu for the reduced CPU check")
        return 2
    device = torch.device("cpu" if args.cpu else "cuda")
    s = CPU_SIZES if args.cpu else CUDA_SIZES
    torch.backends.cudnn.benchmark = device.type == "cuda"
    model = create_explanandum(s.explanandum, s.classes, image_size=s.image, **dict(s.explanandum_options))
    explanandum = frozen(model, device)
    explanandum = explanandum.to(memory_format=torch.channels_last)
    started = time.perf_counter()
    rows = [
        ("Explainer train step, bf16 autocast + channels_last", train_step_rate(explanandum, s, device), "images/s")
    ]
    if device.type != "cuda":
        rows[0] = (rows[0][0].replace("bf16 autocast + ", "float32 (autocast is CUDA-only) + "), rows[0][1], "images/s")
    rows += map_rates(explanandum, s, device)
    rows += curve_rates(explanandum, s, device)
    rows += fractional_trials(device, args.ray)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(
        f"gpu_check on {name}: {s.explanandum} Explanandum at {s.image} px, C = {s.classes}, torch {torch.__version__}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':{width}s} | {'value':>10s} | notes |")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|-------|")
    for label, value, note in rows:
        print(f"| {label:{width}s} | {value:10.1f} | {note} |")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
