"""Train the graded Explanandum family of the dependence study and measure each member's true cue
reliance by intervention (counterfactual twins of fixed evaluation images, cues present).

    .venv/bin/python analysis/dependence_family.py --set train.num_threads=1 [--set data.shapes.min_object_size=0.1 ...]

Members: ``data.shapes.context.p_train`` in --p-train (the confound set, from never to always) and a
noise control (``train_mode=noise`` at the largest p_train: cues as often, independent of the class).
The Explananda are cached as usual; every member is scored on the same test images drawn with
``p_test=1``. Prints one line per member: cue_effect, object_effect, cue-alone response, intervals.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
import yaml

from attrsearch.attribution.methods.registry import method_attribution
from attrsearch.config import ExperimentConfig
from attrsearch.config.base import set_dotted
from attrsearch.data.shapes_twins import twin_datasets
from attrsearch.metrics.context import case_reliance
from attrsearch.metrics.dependence import confound_minus_noise, per_image_agreement, tracking
from attrsearch.metrics.intervention import intervention_reliance
from attrsearch.train.explanandum import get_explanandum
from attrsearch.train.runtime import configure_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--p-train", type=float, nargs="+", default=[0.0, 0.5, 0.9, 1.0])
    ap.add_argument("--eval-images", type=int, default=500)
    ap.add_argument("--methods", nargs="*", default=[], help="baseline methods scored for dependence (e.g. gradcam)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    tree: dict = {}
    for kv in args.set:
        key, value = kv.split("=", 1)
        set_dotted(tree, key, yaml.safe_load(value))
    base = ExperimentConfig.model_validate(tree)
    configure_threads(base.train.num_threads)
    evaluation = base.data.model_copy(deep=True)
    evaluation.shapes.context.p_test = 1.0
    top = max(args.p_train)
    members = [(f"p_train={p:g}", p, "confound") for p in sorted(args.p_train)] + [(f"noise@{top:g}", top, "noise")]
    true, attributed = [], {m: [] for m in args.methods}
    for name, p, mode in members:
        cfg = base.model_copy(deep=True)
        cfg.data.shapes.context.p_train = p
        cfg.data.shapes.context.train_mode = mode
        cfg = ExperimentConfig.model_validate(cfg.model_dump())
        start = time.perf_counter()
        model = get_explanandum(cfg, "cpu", progress=False)
        trained = time.perf_counter() - start
        r = intervention_reliance(model, evaluation, "test", cfg.cache_dir, limit=args.eval_images)
        s = r.summary
        print(
            f"{name:14s} cue_effect {s['cue_effect']:.3f} [{s['cue_effect_low']:.3f}, {s['cue_effect_high']:.3f}]  "
            f"object_effect {s['object_effect']:.3f}  cue_alone {s['cue_alone_effect']:.3f}  "
            f"p {s['p_original']:.3f}  cases {int(s['cases'])}  ({trained:.0f} s)",
            flush=True,
        )
        true.append(r.cases["cue_effect"].to_numpy())
        for method in args.methods:
            attributed[method].append(method_reliance(model, method, evaluation, cfg.cache_dir, args.eval_images))
    for method, values in attributed.items():
        report(method, np.stack(true), np.stack(values))


def method_reliance(model, method: str, data, cache_dir, limit: int) -> np.ndarray:
    """(M,) ``riw`` of ``method``'s maps of each case's class on the original images."""
    datasets, _, classes = twin_datasets(data, "test", cache_dir, limit)
    ds, attribute = datasets["original"], method_attribution(model, method)
    out = []
    for start in range(0, len(ds), 64):
        items = [ds[i] for i in range(start, min(len(ds), start + 64))]
        maps = attribute(torch.stack([it["image"] for it in items])).detach().clamp_min(0)
        cls = torch.from_numpy(np.array(classes[start : start + len(items)]))
        out.append(case_reliance(maps, cls, torch.stack([it["context"] for it in items]))["riw"])
    return torch.cat(out).numpy()


def report(method: str, true: np.ndarray, riw: np.ndarray) -> None:
    """Dependence scores of one method: confound members are all rows but the last (the noise control)."""
    t = tracking(true[:-1], riw[:-1])
    g = confound_minus_noise(riw[-2], riw[-1])
    a = per_image_agreement(true[-2], riw[-2])
    print(
        f"{method}: RIW per member {[round(float(v), 2) for v in riw.mean(axis=1)]}  tracking spearman {t['spearman']:.2f} "
        f"pearson {t['pearson']:.2f} [{t['pearson_low']:.2f}, {t['pearson_high']:.2f}] slope {t['slope']:.2f}  "
        f"confound-noise {g['gap']:.2f} [{g['gap_low']:.2f}, {g['gap_high']:.2f}]  per-image spearman "
        f"{a['spearman']:.2f} [{a['spearman_low']:.2f}, {a['spearman_high']:.2f}]",
        flush=True,
    )


if __name__ == "__main__":
    main()
