"""How well the rank objective's relaxed deletion / insertion AUCs track the exact ones, and what a
rank step costs next to a wysiwyc step.

    ATTRSEARCH_CACHE=/tmp/obj-cache .venv/bin/python analysis/benchmarks/bench_soft_rank.py --threads 2

Relaxation (Schinagl et al. 2025; Gumbel-Sinkhorn, Mena et al. 2018): on ``--images`` test images
of the built-in data, with the trained Explanandum of ``sweeps/shapes_single.yaml`` (trained and
cached if missing), the Pearson correlation between the soft AUC (the loss's, no Gumbel noise, and
with training noise) and the hard AUC of the same protocol (the same G x G grid, S steps, reference
and scored class: the first label) for

- random maps: i.i.d. uniform cell importances;
- trained-like maps: the scored object's ground-truth mask, blurred, plus uniform noise of
  amplitude 0.3 (smooth maps peaked on the object, the shape an Explainer learns);

at the default temperature (``--more``: also at tau 0.3 / 0.03 and with the training noise). Cost: median wall / process CPU seconds of one
training step (Explainer forward + loss + backward + Adam) for the rank and wysiwyc objectives at
the shapes_single batch size.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from attrsearch.config import load_experiment
from attrsearch.config.objectives import RankObjective
from attrsearch.data import build_dataset
from attrsearch.objectives import OBJECTIVES
from attrsearch.objectives.rank import hard_auc, soft_auc
from attrsearch.objectives.rtis import gaussian_blur
from attrsearch.train.checkpoint import build_explainer
from attrsearch.train.explanandum import get_explanandum

ROOT = Path(__file__).resolve().parents[2]


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-12))


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def correlations(clf, images, maps, classes, cfg, noise: bool) -> tuple[float, float, float, float]:
    hard_d, hard_i, soft_d, soft_i = [], [], [], []
    for sl in batches(len(images), 50):
        hd, hi = hard_auc(clf, images[sl], maps[sl], classes[sl], cfg.grid[0], cfg.steps, cfg.reference)
        with torch.no_grad():
            sd, si = soft_auc(clf, images[sl], maps[sl], classes[sl], cfg, noise=noise)
        hard_d.append(hd), hard_i.append(hi), soft_d.append(sd), soft_i.append(si)
    hd, hi, sd, si = (torch.cat(v) for v in (hard_d, hard_i, soft_d, soft_i))
    return pearson(sd, hd), pearson(si, hi), float((sd - hd).abs().mean()), float((si - hi).abs().mean())


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "sweeps" / "shapes_single.yaml"))
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--more", action="store_true", help="also tau 0.3 / 0.03 and the training noise (slow on a busy CPU)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    exp = load_experiment(args.config)
    clf = get_explanandum(exp, "cpu")
    ds = build_dataset(exp.data, "test", exp.cache_dir)
    samples = [ds[i] for i in range(len(ds)) if ds[i]["labels"].any()][: args.images]
    images = torch.stack([s["image"] for s in samples])
    labels = torch.stack([s["labels"] for s in samples])
    gt = torch.stack([s["masks"] for s in samples])
    classes = labels.argmax(dim=1)  # the first present class
    n, (h, w) = len(samples), images.shape[-2:]

    default = RankObjective()
    g = default.grid[0]
    random_maps = F.interpolate(torch.rand(n, 1, g, g), size=(h, w), mode="nearest")[:, 0]
    obj = (gt[torch.arange(n), classes] == 1).float()[:, None]
    smooth = gaussian_blur(obj.expand(-1, 3, -1, -1), 0.05 * h)[:, :1]
    smooth = smooth / smooth.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    trained_like = (0.7 * smooth + 0.3 * torch.rand_like(smooth)).clamp(0, 1)[:, 0]

    print(
        f"soft vs hard AUC (G={g}, S={default.steps}, reference={default.reference}, {n} test images, "
        f"Explanandum {exp.explanandum.arch}); Pearson r (mean |soft - hard|)"
    )
    print(f"{'maps':13s} {'tau':>6s} {'noise':>5s}  {'deletion r':>10s} {'insertion r':>11s}  {'|d|':>6s} {'|i|':>6s}")
    for name, maps in (("random", random_maps), ("trained-like", trained_like)):
        for tau in (default.temperature, 0.3, 0.03) if args.more else (default.temperature,):
            for noise in (False, True) if tau == default.temperature and args.more else (False,):
                cfg = default.model_copy(update={"temperature": tau})
                rd, ri, ed, ei = correlations(clf, images, maps, classes, cfg, noise)
                mark = " (default)" if tau == default.temperature and not noise else ""
                print(f"{name:13s} {tau:6.2f} {str(noise):>5s}  {rd:10.3f} {ri:11.3f}  {ed:6.3f} {ei:6.3f}{mark}")

    # Cost of one training step, rank vs wysiwyc, at the shapes_single batch size.
    b = exp.train.batch_size
    x, y = images[:b], labels[:b]
    print(
        f"\none training step (batch {b}, {h} px, Explainer {exp.explainer.arch}, {args.threads} threads; "
        f"median of {args.repeats}): wall s, process CPU s"
    )
    base = None
    for name, objective in (("wysiwyc", exp.objective), ("rank", default)):
        cfg = exp.model_copy(update={"objective": objective})
        explainer = build_explainer(cfg, ds.info.num_classes, ds.info.image_size, explanandum=clf)
        opt = torch.optim.Adam([p for p in explainer.parameters() if p.requires_grad], lr=1e-3)
        loss_fn = OBJECTIVES.get(name).loss

        def step():
            out = loss_fn(clf, x, y, explainer(x), objective)
            opt.zero_grad()
            out.loss.backward()
            opt.step()

        wall, cpu = timed(step, args.repeats)
        base = base or wall
        print(f"  {name:8s} {wall:7.3f} {cpu:7.3f}   x{wall / base:.2f} wall")


if __name__ == "__main__":
    main()
