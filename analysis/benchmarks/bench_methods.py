"""All-class attribution maps per second, side by side on the same images: the Explainer vs the baselines.

    PYTHONPATH=. .venv/bin/python analysis/benchmarks/bench_methods.py [--device cuda] [--threads 2]

Settings: (a) the built-in test images at 64 px, random-weight small_cnn Explanandum (C = 8);
(b) 224 px images, random-weight resnet50 (C = 20), batch 2. Per setting, rows:
- Explainer: ``explanandum_encoder`` over the Explanandum's own encoder, forward + sigmoid;
- Grad-CAM (ours): every class from one forward pass (attrsearch.attribution.methods.gradcam);
- captum LayerGradCam looped over the C classes (one target per call, the whole batch);
- pytorch-grad-cam GradCAM looped over the C classes;
- RISE (ours): shared masks, all classes per masked forward pass;
- RISE per-image loop: one image and one mask per forward pass (the textbook loop).
RISE rows run fewer masks than the 8000 of the paper; their time is scaled to 8000 masks (the
cost is linear in the mask count: one forward pass per mask and image) and marked ``*``.
Throughput = images per second with all C maps each. Per setting, the work per image of the
Explainer and of our Grad-CAM (FLOPs counted by torch) bounds their speed ratio at equal efficiency. Memory: on CUDA the peak allocated memory
of the call; on CPU the peak resident-set growth over the level before the call (sampled every
2 ms; a lower bound for short calls).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from attrsearch.attribution.methods.gradcam import gradcam
from attrsearch.attribution.methods.layers import default_layer, find_layer
from attrsearch.attribution.methods.rise import rise, rise_masks
from attrsearch.models import create_explainer, create_explanandum

PAPER_MASKS = 8000


def frozen(model: nn.Module, device: str) -> nn.Module:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def measure(fn: Callable[[], object], device: str, repeats: int) -> tuple[float, float]:
    """(median seconds over ``repeats`` after one warm-up, peak extra memory in MiB of one call)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base, peak, stop = _rss(), [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        mem = torch.cuda.max_memory_allocated() - base
    else:
        stop.set()
        sampler.join()
        mem = max(peak[0] - base, 0)
    return statistics.median(times), mem / 2**20


def captum_looped(model: nn.Module, images: Tensor, num_classes: int) -> Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    lgc = LayerGradCam(model, find_layer(model, default_layer(model))[1])
    size = tuple(images.shape[-2:])
    x = images.clone().requires_grad_(True)
    return torch.stack(
        [
            LayerAttribution.interpolate(lgc.attribute(x, target=c, relu_attributions=True), size, "bilinear")[:, 0]
            for c in range(num_classes)
        ],
        1,
    )


def gradcam_lib_looped(model: nn.Module, images: Tensor, num_classes: int):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = images.clone().requires_grad_(True)
    with GradCAM(model=model, target_layers=[find_layer(model, default_layer(model))[1]]) as cam:
        return [cam(input_tensor=x, targets=[ClassifierOutputTarget(c)] * len(x)) for c in range(num_classes)]


def rise_per_image_loop(model: nn.Module, images: Tensor, masks: int) -> Tensor:
    m_all = rise_masks(masks, 7, 0.5, tuple(images.shape[-2:]), 0, images.device)
    out = []
    with torch.no_grad():
        for x in images:
            sal = 0
            for m in m_all:
                sal = sal + torch.sigmoid(model((x * m)[None]))[0][:, None, None] * m[None]
            out.append(sal / (masks * 0.5))
    return torch.stack(out)


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call (torch's FlopCounterMode: convs, matmuls and their
    backward; elementwise ops are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def run_setting(title: str, model: nn.Module, images: Tensor, rise_masks_n: int, loop_masks_n: int, args) -> dict:
    device = args.device
    num_classes = model(images[:1]).shape[1]
    explainer = frozen(create_explainer("explanandum_encoder", num_classes, explanandum=model), device)
    b = images.shape[0]

    def explainer_call() -> Tensor:
        with torch.inference_mode():
            return torch.sigmoid(explainer(images))

    rows = [
        ("Explainer (forward + sigmoid)", explainer_call, 1.0, args.repeats),
        ("Grad-CAM (ours, all classes)", lambda: gradcam(model, images), 1.0, args.repeats),
        ("captum LayerGradCam x C", lambda: captum_looped(model, images, num_classes), 1.0, 1),
        ("pytorch-grad-cam GradCAM x C", lambda: gradcam_lib_looped(model, images, num_classes), 1.0, 1),
        (
            f"RISE (ours, {rise_masks_n} masks)*",
            lambda: rise(model, images, masks=rise_masks_n),
            PAPER_MASKS / rise_masks_n,
            1,
        ),
        (
            f"RISE per-image loop ({loop_masks_n} masks)*",
            lambda: rise_per_image_loop(model, images, loop_masks_n),
            PAPER_MASKS / loop_masks_n,
            1,
        ),
    ]
    print(f"\n{title}: {b} images {tuple(images.shape[-2:])}, C = {num_classes}, device {device}")
    print(f"{'method':40s} {'s / batch':>11s} {'maps/s (img)':>13s} {'peak MiB':>9s}")
    results = {}
    for name, fn, scale, repeats in rows:
        seconds, mem = measure(fn, device, repeats)
        seconds *= scale
        results[name.split(" (")[0].split(" x")[0]] = b / seconds
        print(f"{name:40s} {seconds:11.4f} {b / seconds:13.3f} {mem:9.1f}")
    ex, gc = results["Explainer"], results["Grad-CAM"]
    # The work ratio bounds the speed ratio at equal hardware efficiency: our Grad-CAM does one
    # forward pass of the Explanandum and a backward through its head only, the Explainer a forward
    # pass of a copy of the Explanandum's encoder plus its decoder.
    ex_f, gc_f = flops(explainer_call) / b, flops(lambda: gradcam(model, images)) / b
    print(
        f"work per image: Explainer {ex_f / 1e9:.3f} GFLOP, Grad-CAM (ours) {gc_f / 1e9:.3f} GFLOP"
        f" -> Explainer/Grad-CAM at equal efficiency <= {gc_f / ex_f:.2f}x"
    )
    print(
        f"ratios: Explainer/Grad-CAM {ex / gc:.1f}x (goal >= 20x at C=20)"
        f" | Explainer/RISE {ex / results['RISE']:.0f}x (goal >= 1000x)"
        f" | Grad-CAM ours/captum looped {gc / results['captum LayerGradCam']:.1f}x (goal >= 5x)"
        f" | ours/pytorch-grad-cam looped {gc / results['pytorch-grad-cam GradCAM']:.1f}x"
        f" | Explainer/captum looped {ex / results['captum LayerGradCam']:.1f}x"
        f" | RISE ours/per-image loop {results['RISE'] / results['RISE per-image loop']:.1f}x (per mask)"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", default=None, help="built-in data cache (default: $ATTRSEARCH_CACHE)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gpu = args.device.startswith("cuda")

    from attrsearch.config import DataConfig
    from attrsearch.config.experiment import default_cache_dir
    from attrsearch.data import build_dataset

    dataset = build_dataset(DataConfig(image_size=64), "test", args.cache or default_cache_dir())
    images = torch.stack([dataset[i]["image"] for i in range(8)]).to(args.device)
    small = frozen(create_explanandum("small_cnn", dataset.info.num_classes, image_size=64), args.device)
    run_setting("(a) built-in data, small_cnn", small, images, 2000 if gpu else 250, 200 if gpu else 25, args)

    big = frozen(create_explanandum("resnet50", 20, image_size=224), args.device)
    images = torch.randn(2, 3, 224, 224, device=args.device)
    run_setting("(b) random 224 px, resnet50", big, images, 2000 if gpu else 24, 100 if gpu else 6, args)


if __name__ == "__main__":
    main()
