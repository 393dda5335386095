"""Synthetic results folders in the exact layout ``attrsearch sweep`` writes (imported by the tests).

The layout was copied from a real tiny sweep (kept, trimmed of checkpoints and W&B runs, in
``data/tiny_report``): ``sweep.yaml`` is the JSON-mode dump of the sweep schema (every
distribution kind present, unused ones null, ``int`` spelled ``int_``); ``trials.csv`` has the
lead columns, the objectives, sorted ``config/<path>`` columns, then every other metric sorted;
each trial folder holds Ray's ``params.json`` / ``result.json`` (one JSON line per epoch) and the
run's ``run/metrics.json``, ``run/history.json`` (``{"seed<S>": [...]}``), ``run/tables/*.csv``
and ``run/gallery.npz``; ``best.yaml`` starts with the two header comments.

The planted truth: ``segmentation/iou`` rises with log ``loss.lambda_tv`` (the driver) and with
the architectures; ``loss.lambda_area`` does nothing (noise); ``faithfulness/deletion_auc``
(lower is better) falls as iou rises, so the two agree in rank with a negative Spearman rho.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

EXPLANANDA = ("small_cnn", "small_resnet")
EXPLAINERS = ("explanandum_encoder", "unet_small")
CLASSES = ("red_disc", "green_square", "blue_triangle")
RAY_EXTRA = {
    "checkpoint_dir_name": "checkpoint_000000",
    "should_checkpoint": True,
    "pid": 1,
    "hostname": "vm",
    "node_ip": "192.0.2.2",
}


def _dist(kind: str, value: Any, log: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"choice": None, "grid": None, "int_": None, "log": log, "loguniform": None, "uniform": None}
    out["int_" if kind == "int" else kind] = value
    return out


def sweep_yaml(
    name: str, objectives: list[str], seeds: list[int] | None, archs: bool, scheduler: str = "asha"
) -> dict[str, Any]:
    search = {
        "loss.lambda_tv": _dist("loguniform", [0.01, 1.0]),
        "loss.lambda_area": _dist("uniform", [0.1, 3.0]),
        "loss.min_area": _dist("uniform", [0.01, 0.1]),
        "loss.max_area": _dist("uniform", [0.05, 0.4]),
        "train.batch_size": _dist("int", [16, 32]),
    }
    if archs:
        search["explanandum.arch"] = _dist("choice", list(EXPLANANDA))
        search["explainer.arch"] = _dist("choice", list(EXPLAINERS))
    sched = (
        {"brackets": 1, "grace_period": 1, "max_t": 3, "name": "asha", "reduction_factor": 2.0}
        if scheduler == "asha"
        else {"name": "none"}
    )
    return {
        "base": {
            "seed": 0,
            "data": {"dataset": "shapes", "image_size": 32},
            "explanandum": {"arch": "small_cnn"},
            "explainer": {"arch": "explanandum_encoder"},
            "train": {"epochs": 3, "batch_size": 32, "lr": 0.002},
        },
        "max_failures": 0,
        "name": name,
        "num_samples": None,
        "objective": objectives,
        "resources_per_trial": {"cpu": 1.0, "gpu": 0.0},
        "scheduler": sched,
        "search": dict(sorted(search.items())),
        "search_alg": {"n_startup_trials": 4, "name": "optuna_tpe", "seed": 0, "multivariate": False},
        "seeds": seeds,
        "start_from_base": False,
        "storage": "results",
        "testing": {"fail_once_at_epoch": None},
        "time_budget_s": None,
        "wandb": {
            "entity": None,
            "gallery_images": 2,
            "group": None,
            "mode": "offline",
            "project": "attrsearch",
            "tags": [],
        },
    }


def plant_metrics(values: dict[str, Any], rng: np.random.Generator, noise: float = 0.01) -> dict[str, float]:
    """The planted metrics of one configuration (the seed mean)."""
    tv = (math.log10(values["loss.lambda_tv"]) + 2) / 2  # 0..1 over the range
    arch = 0.08 * (values.get("explanandum.arch") == "small_resnet") + 0.05 * (
        values.get("explainer.arch") == "unet_small"
    )
    iou = 0.2 + 0.4 * tv + arch + rng.normal(0, noise)
    return {
        "segmentation/iou": iou,
        "class_specific/selectivity": 5.0 + 10 * values["loss.min_area"] + rng.normal(0, 0.5),
        "faithfulness/deletion_auc": 0.6 - 0.5 * iou + rng.normal(0, noise),
        "mask/area": 0.2 + 0.5 * values["loss.max_area"] + rng.normal(0, noise),
    }


def _csv_text(rows: list[dict[str, Any]], first: list[str]) -> str:
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    config = sorted(c for c in cols if c.startswith("config/"))
    rest = sorted(c for c in cols if c not in first and c not in config)
    header = [c for c in first if c in cols] + config + rest
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in header])
    return buf.getvalue()


def write_results(
    root: Path,
    *,
    n: int = 24,
    seeds: list[int] | None = (0, 1, 2),  # type: ignore[assignment]
    objectives: tuple[str, ...] = ("segmentation/iou", "class_specific/selectivity", "faithfulness/deletion_auc"),
    archs: bool = True,
    stopped_every: int = 5,
    error_trials: int = 1,
    seed: int = 0,
    noise: float = 0.01,
    metrics_override: dict[str, dict[str, float]] | None = None,
    trial_files: bool = True,
) -> Path:
    """Write ``root/<name>/`` like a finished sweep and return that folder.

    Every ``stopped_every``-th trial is early-stopped (1 epoch, no final suite), the last
    ``error_trials`` failed. ``metrics_override``: trial id -> metrics replacing the planted ones.
    """
    rng = np.random.default_rng(seed)
    seeds = list(seeds) if seeds else None
    name = "synthetic"
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text(
        yaml.safe_dump(sweep_yaml(name, list(objectives), seeds, archs), sort_keys=False)
    )
    rows = []
    nseeds = len(seeds) if seeds else 1
    t0 = 1_796_000_000.0
    for i in range(n):
        tid = f"ab12c_{i:05d}"
        values: dict[str, Any] = {
            "loss.lambda_tv": float(10 ** rng.uniform(-2, 0)),
            "loss.lambda_area": float(rng.uniform(0.1, 3.0)),
            "loss.max_area": float(rng.uniform(0.05, 0.4)),
            "train.batch_size": int(rng.integers(16, 33)),
        }
        values["loss.min_area"] = float(rng.uniform(0.01, min(0.1, values["loss.max_area"])))
        if archs:
            values["explanandum.arch"] = EXPLANANDA[i % 2]
            values["explainer.arch"] = EXPLAINERS[(i // 2) % 2]
        status = (
            "error"
            if i >= n - error_trials
            else "stopped"
            if stopped_every and i % stopped_every == stopped_every - 1
            else "completed"
        )
        epochs = 3 if status == "completed" else 1
        per_seed = [plant_metrics(values, rng, noise) for _ in range(nseeds)]
        mean = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
        std = {f"{k}_std": float(np.std([m[k] for m in per_seed])) for k in per_seed[0]} if nseeds > 1 else {}
        metrics = {**mean, **std, "epoch": float(epochs), "train/epochs": float(epochs), "segmentation/images": 32.0}
        if metrics_override and tid in metrics_override:
            metrics.update(metrics_override[tid])
        row: dict[str, Any] = {"trial_id": tid, "status": status, "error": "", "epochs": float(epochs), "failures": 0}
        if status == "error":
            row.update(error="RuntimeError: CUDA out of memory", epochs=None)
        else:
            row.update(metrics)
        row.update({f"config/{k}": v for k, v in values.items()})
        rows.append(row)
        if not trial_files:
            continue
        tdir = folder / tid
        (tdir / "run").mkdir(parents=True)
        (tdir / "params.json").write_text(json.dumps(dict(sorted(values.items())), indent=2))
        lines, history = [], []
        start = t0 + 20 * i
        for e in range(1, epochs + 1 if status != "error" else 2):
            rec = {
                k: v - 0.05 * (epochs - e) if k == "segmentation/iou" else v
                for k, v in metrics.items()
                if not k.startswith("train/epochs")
            }
            rec["epoch"] = float(e)
            finished = status == "completed" and e == epochs
            lines.append(
                {
                    **rec,
                    "trial/finished": float(finished),
                    "trial/resumed_from_epoch": 0.0,
                    "timestamp": int(start + 10 * e),
                    **RAY_EXTRA,
                    "done": finished,
                    "training_iteration": e,
                    "trial_id": tid,
                    "date": "2026-12-01_10-11-41",
                    "time_this_iter_s": 10.0,
                    "time_total_s": 10.0 * e,
                    "config": values,
                    "time_since_restore": 10.0 * e,
                    "iterations_since_restore": e,
                }
            )
            history.append({"epoch": float(e), "segmentation/iou": rec["segmentation/iou"], "train/loss": 1.0 / e})
        (tdir / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (tdir / "run" / "history.json").write_text(json.dumps({f"seed{s}": history for s in (seeds or [0])}, indent=1))
        if status == "completed":
            (tdir / "run" / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
            tables = tdir / "run" / "tables"
            tables.mkdir()
            cs = ["target," + ",".join(CLASSES) + ",none,images"]
            for a, c in enumerate(CLASSES):
                cs.append(
                    c
                    + ","
                    + ",".join(f"{(40.0 if a == b else 10.0) + rng.normal(0, 1):.4f}" for b in range(len(CLASSES)))
                    + ",33.3,4"
                )
            (tables / "class_specific.csv").write_text("\n".join(cs) + "\n")
            images = rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
            masks = rng.random((2, len(CLASSES), 16, 16)).astype(np.float16)
            labels = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)
            np.savez_compressed(
                tdir / "run" / "gallery.npz",
                images=images,
                masks=masks,
                gt=(masks > 0.5).astype(np.uint8),
                labels=labels,
                class_names=np.array(CLASSES),
            )
    lead = ["trial_id", "status", "error", "epochs", "failures"]
    (folder / "trials.csv").write_text(_csv_text(rows, lead + list(objectives)))
    done = [r for r in rows if r["status"] == "completed"]
    if done:
        best = max(done, key=lambda r: r[objectives[0]])
        header = (
            f"# Best of sweep {name}: trial {best['trial_id']}, {objectives[0]} = {best[objectives[0]]:.6g} (max) on "
            "the val split.\n"
            f"# Production run, scored on the test split: attrsearch train best.yaml --out runs/{name}-best\n"
        )
        (folder / "best.yaml").write_text(header + yaml.safe_dump({"seed": 0, "name": f"{name}-best"}, sort_keys=False))
    return folder


# ------------------------------------------------------------------------- the dependence study

DEPENDENCE_MEMBERS = ((0.0, "confound"), (0.5, "confound"), (0.9, "confound"), (1.0, "confound"), (1.0, "noise"))
# source -> (kind, attributed share of a case from its member and true effect; segmentation/iou; deletion AUC)
DEPENDENCE_SOURCES = {
    "gradcam": ("method", "follows", 0.50, 0.20),  # share = 0.1 + 0.5 * true effect: follows the classifier
    "wysiwyc": ("explainer", "salience", 0.60, 0.25),  # share grows with the cue's frequency, noise control included
    "sobel": ("method", "flat", 0.30, 0.40),  # share independent of the member
    "center": ("method", "flat", 0.35, 0.30),
}


def dependence_share(kind: str, p_train: float, mode: str, true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The planted attributed share of one (source kind, member) on its cases."""
    noise = rng.normal(0, 0.01, true.shape)
    if kind == "follows":
        return 0.1 + 0.5 * true + noise
    if kind == "salience":  # the noise member (p_train 1) exactly as high as the strongest shortcut
        return 0.2 + 0.3 * p_train + 0.01 * np.sin(np.arange(true.size))
    return 0.3 + 0.05 * np.cos(np.arange(true.size))  # the same map whatever the classifier (a model-free reference)


def write_dependence_results(root: Path, cases: int = 40, seed: int = 0) -> Path:
    """A finished sweep of the dependence study (5 members x 4 sources, one trial each, no seeds):
    ``run/tables/dependence.csv`` with planted true effects (0.8 x p_train on the confound members,
    about 0 on the noise control) and attributed shares per ``DEPENDENCE_SOURCES``; the trials'
    ``segmentation/iou`` and ``faithfulness/deletion_auc`` are the sources' constants."""
    rng = np.random.default_rng(seed)
    n = len(DEPENDENCE_MEMBERS) * len(DEPENDENCE_SOURCES)
    sources = list(DEPENDENCE_SOURCES)
    override = {}
    for i in range(n):
        _, _, iou, deletion = DEPENDENCE_SOURCES[sources[i // len(DEPENDENCE_MEMBERS)]]
        override[f"ab12c_{i:05d}"] = {"segmentation/iou": iou, "faithfulness/deletion_auc": deletion}
    folder = write_results(
        root, n=n, seeds=None, archs=False, stopped_every=0, error_trials=0, metrics_override=override
    )
    image = np.arange(cases) // 2
    klass = np.arange(cases) % 2
    base_effect = rng.uniform(0.5, 1.0, cases)  # a case's sensitivity, shared by the members
    for i in range(n):
        p_train, mode = DEPENDENCE_MEMBERS[i % len(DEPENDENCE_MEMBERS)]
        source = sources[i // len(DEPENDENCE_MEMBERS)]
        kind, planted, _, _ = DEPENDENCE_SOURCES[source]
        true = (0.8 * p_train * base_effect if mode == "confound" else np.zeros(cases)) + rng.normal(0, 0.01, cases)
        share = dependence_share(planted, p_train, mode, true, rng)
        frame = {
            "member": f"{mode} p_train={p_train:g}",
            "p_train": p_train,
            "train_mode": mode,
            "source_kind": kind,
            "source": source,
            "image": image,
            "class": klass,
            "p_original": 0.9,
            "p_no_cue": 0.9 - true,
            "cue_effect": true,
            "attributed_share": share,
            "attributed_riw": share * 10,
        }
        pd.DataFrame(frame).to_csv(folder / f"ab12c_{i:05d}" / "run" / "tables" / "dependence.csv")
    return folder
