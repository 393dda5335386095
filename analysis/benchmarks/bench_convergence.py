"""Time to quality of Explainer training: the recipe of ``sweeps/shapes_single.yaml`` before issue 21 against
the one shipped now and any candidate recipes, trained side by side (one process and one torch thread each, at the same time, on
the same cached Explanandum and data).

    .venv/bin/python analysis/benchmarks/bench_convergence.py
    .venv/bin/python analysis/benchmarks/bench_convergence.py --arm fast="train.epochs=6 train.lr=0.006"

Per arm, after every epoch: the val IoU (the epoch suite's ``segmentation/iou``), the wall and process
CPU seconds of training so far; at the end the test IoU of the final suite (``evaluation.final_suite:
fast`` for every arm: the segmentation score is the same function as in the full suite, the rest is
left out to keep the benchmark short). "Time to final" is the training time until the val IoU first
came within ``--tolerance`` (0.005) of the arm's own last value; the table sets each arm's time to
final and its total time beside the first arm's (``before``) time to final.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "sweeps" / "shapes_single.yaml"
OBJECTIVE = "segmentation/iou"
ARMS = {
    # The recipe shipped before issue 21 (the reference: every ratio is to its time to final).
    "before": "train.batch_size=32 train.epochs=12 train.lr_schedule.name=constant",
    # sweeps/shapes_single.yaml as shipped now: batches of 4, warm-up + cosine over 4 epochs.
    "shipped": "",
}
# Measured before (NOTES.md): --arm bs8-cos-6="train.batch_size=8 train.epochs=6", --arm prior-cosine-6=
# "explainer.initial_mask_area=0.05 train.batch_size=32 train.epochs=6 train.lr_schedule.warmup_epochs=0.5"


def arm_config(overrides: str, threads: int, base: Path = BASE):
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.config.base import set_dotted

    data = yaml.safe_load(base.read_text())
    data = data.get("base", data)  # a sweep file: its base configuration
    for item in shlex.split(overrides):
        key, _, value = item.partition("=")
        set_dotted(data, key, yaml.safe_load(value))
    set_dotted(data, "train.num_threads", threads)
    set_dotted(data, "train.progress", False)
    set_dotted(data, "evaluation.final_suite", "fast")
    return validate(ExperimentConfig, data, source=f"bench_convergence {overrides!r}")


def run_arm(name: str, overrides: str, threads: int, workdir: str, base: Path = BASE) -> dict:
    from attrsearch.evaluate.experiment import run_experiment

    cfg = arm_config(overrides, threads, base)
    curve, start = [], (time.perf_counter(), time.process_time())

    def report(record, _checkpoint_dir, _finished) -> None:
        curve.append(
            {
                "epoch": int(record["epoch"]),
                "wall": time.perf_counter() - start[0],
                "cpu": time.process_time() - start[1],
            }
        )

    out = Path(workdir) / name
    summary = run_experiment(cfg, out, resume=False, report=report)
    # The val IoU from the run's history: the last report's record also carries the final suite's
    # (test) scores under the same names, so its value is not the val split's.
    history = next(iter(json.loads((out / "history.json").read_text()).values()))
    for point, record in zip(curve, history):
        point["val_iou"] = float(record[OBJECTIVE])
    return {"name": name, "curve": curve, "test_iou": float(summary["metrics"][OBJECTIVE])}


def time_to_final(curve: list[dict], tolerance: float) -> dict:
    final = curve[-1]["val_iou"]
    return next(point for point in curve if point["val_iou"] >= final - tolerance)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", action="append", default=[], help='NAME="key=value ..." (default: the built-in arms)')
    ap.add_argument("--threads", type=int, default=1, help="torch threads per arm")
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--workdir", default="/tmp/attrsearch-bench-convergence")
    ap.add_argument("--base", type=Path, default=BASE, help="experiment or sweep file (its `base:`) the arms override")
    ap.add_argument("--only", action="store_true", help="run only the --arm arms, not the built-in ones")
    args = ap.parse_args()
    arms = {} if args.only else dict(ARMS)
    for item in args.arm:
        name, _, overrides = item.partition("=")
        arms[name] = overrides

    # The Explanandum and data first (shared by every arm), so no arm's time includes them.
    from attrsearch.train.explanandum import get_explanandum
    from attrsearch.train.run import split_datasets

    warm = arm_config("", 2, args.base)
    split_datasets(warm)
    get_explanandum(warm, "cpu")

    with ProcessPoolExecutor(len(arms), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_arm, n, o, args.threads, args.workdir, args.base) for n, o in arms.items()]
        results = [f.result() for f in futures]

    for r in results:
        print(f"\n{r['name']}: {arms[r['name']] or f'({args.base.name} as shipped)'}")
        print("  epoch  val IoU   wall s   cpu s")
        for p in r["curve"]:
            print(f"  {p['epoch']:5d}  {p['val_iou']:.4f}  {p['wall']:7.1f}  {p['cpu']:6.1f}")
    ref = time_to_final(results[0]["curve"], args.tolerance)
    print(f"\ntime to final val IoU (within {args.tolerance}); ratios to the first arm's time to final")
    print(f"{'arm':12} {'final val':>9} {'test IoU':>8} {'to final wall':>13} {'total wall':>10} {'cpu to final':>12}")
    for r in results:
        t = time_to_final(r["curve"], args.tolerance)
        total = r["curve"][-1]
        print(
            f"{r['name']:12} {total['val_iou']:9.4f} {r['test_iou']:8.4f} "
            f"{t['wall']:7.0f} x{t['wall'] / ref['wall']:.2f} {total['wall']:5.0f} x{total['wall'] / ref['wall']:.2f} "
            f"{t['cpu']:6.0f} x{t['cpu'] / ref['cpu']:.2f}"
        )


if __name__ == "__main__":
    main()
