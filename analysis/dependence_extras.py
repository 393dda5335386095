"""The dependence study's costly extras for a finished ``sweeps/dependence.yaml`` results folder:
the randomised-retrain test (``attrsearch.evaluate.retrain``) and the encoding probe
(``attrsearch.metrics.probe``), written where ``attrsearch report`` shows them.

    .venv/bin/python analysis/dependence_extras.py results/dependence [--objective wysiwyc] [--images 200] [--skip methods]
    .venv/bin/attrsearch report results/dependence

All use the sweep's strongest shortcut member (the confound member with the largest p_train):

- ``<folder>/randomisation.json``: the ``--objective`` Explainer of that member retrained against a
  never-trained and a shuffled-label Explanandum and with seed + 1 (the reseed floor), maps compared
  on ``--images`` test images (three more Explainer trainings plus two Explananda: about 3x one trial);
- ``<folder>/randomisation_methods.json``: each baseline method of that member (it trains nothing) run
  on the never-trained and the shuffled-label Explanandum, its maps compared with its maps on the real
  one; the floor is the method with its seed moved (RISE), or itself for a method without a seed;
- ``<folder>/probe.json``: every source of that member (its Explainer trials' best checkpoints, its
  methods) on ``--images`` labelled test images; the probe reads the target masks (the max over the
  labelled classes) binarised at 0.5, the control reads the ground truth.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import torch
import yaml

from attrsearch.analysis.follows import METHOD_RANDOMISATION_FILE, PROBE_FILE, RANDOMISATION_FILE, read_cases
from attrsearch.analysis.results import read_results
from attrsearch.attribution import normalize_maps, output_kind_of
from attrsearch.evaluate.checks import check_method
from attrsearch.evaluate.compare import labelled_batch
from attrsearch.evaluate.retrain import method_randomisation, retrain_study
from attrsearch.evaluate.sources import ExplainerSource, MethodSource
from attrsearch.masks import aggregate_masks, ground_truth
from attrsearch.metrics.probe import encoding_probe
from attrsearch.sweep.experiment import trial_experiment
from attrsearch.train.explanandum import get_explanandum
from attrsearch.train.runtime import configure_threads


def strongest_member(cases: pd.DataFrame) -> str:
    confound = cases[cases["train_mode"] == "confound"]
    return str(confound.sort_values("p_train")["member"].iloc[-1])


def trial_config(folder: Path, base: dict, trial_id: str):
    values = json.loads((folder / trial_id / "params.json").read_text())
    cfg = trial_experiment(base, values, source=f"{folder / trial_id}")
    evaluation = cfg.evaluation.model_copy(update={"split": "test"})
    evaluation.dependence.enabled = False
    return cfg.model_copy(update={"evaluation": evaluation})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--objective", default="wysiwyc", help="the Explainer objective retrained (randomisation)")
    ap.add_argument("--images", type=int, default=200, help="labelled test images (the probe needs a few hundred)")
    ap.add_argument("--skip", choices=("randomisation", "methods", "probe"), action="append", default=[])
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    results = read_results(args.folder)
    base = yaml.safe_load((args.folder / "sweep.yaml").read_text())["base"]
    cases = read_cases(results)
    if cases.empty:
        raise SystemExit(f"{args.folder}: no trial wrote tables/dependence.csv")
    member = strongest_member(cases)
    trials = cases[cases["member"] == member].groupby("trial_id")[["source_kind", "source"]].first()
    print(f"member {member}: {len(trials)} trials")

    if "randomisation" not in args.skip:
        pick = trials[(trials["source_kind"] == "explainer") & (trials["source"] == args.objective)]
        if pick.empty:
            raise SystemExit(f"no {args.objective} Explainer trial of {member}")
        cfg = trial_config(args.folder, base, pick.index[0])
        configure_threads(cfg.train.num_threads)
        out = args.folder / "randomisation"
        retrain_study(cfg, out, images=args.images)
        record = json.loads((out / RANDOMISATION_FILE).read_text())
        record["source"] = f"{args.objective} Explainer of {member} (trial {pick.index[0]})"
        (args.folder / RANDOMISATION_FILE).write_text(json.dumps(record, indent=2, allow_nan=True))
        shutil.rmtree(out / "real" / "checkpoints", ignore_errors=True)

    if "methods" not in args.skip:  # the baselines' model-randomisation test (no training: maps on the variants)
        sources = {}
        for trial_id, row in trials[trials["source_kind"] == "method"].iterrows():
            cfg = trial_config(args.folder, base, str(trial_id))
            configure_threads(cfg.train.num_threads)
            sources[str(row["source"])] = method_randomisation(cfg, images=args.images)
            print(f"{row['source']}: randomisation {sources[str(row['source'])]['metrics']}")
        record = {"member": member, "sources": sources}
        (args.folder / METHOD_RANDOMISATION_FILE).write_text(json.dumps(record, indent=2, allow_nan=True))

    if "probe" not in args.skip:
        sources = {}
        # Every trial of the member reads the same data: its labelled test images are built once.
        batch = labelled_batch(trial_config(args.folder, base, str(trials.index[0])), "test", args.images)
        gt, _ = ground_truth(batch["masks"], batch["labels"])
        for trial_id, row in trials.iterrows():
            cfg = trial_config(args.folder, base, str(trial_id))
            configure_threads(cfg.train.num_threads)
            model = get_explanandum(cfg, "cpu", progress=False)
            if row["source_kind"] == "explainer":
                source = ExplainerSource(args.folder / str(trial_id) / "run")
            else:
                source = MethodSource(cfg.method.name, check_method(cfg, cfg.method.name, cfg.method.options))
            attribute = source.attribution(model, cfg, torch.device("cpu"))
            raw = attribute(batch["image"]).detach()
            maps, _ = normalize_maps(raw, cfg.evaluation.attribution_normalization, output_kind_of(attribute))
            target, _ = aggregate_masks(maps, batch["labels"])
            probe = encoding_probe(target, gt, batch["labels"])
            sources[str(row["source"])] = probe.metrics()
            print(f"{row['source']}: {probe.metrics()}")
        used = len(batch["labels"])  # at most --images: the labelled images the test split has
        record = {"member": member, "split": "test", "images": used, "sources": sources}
        (args.folder / PROBE_FILE).write_text(json.dumps(record, indent=2, allow_nan=True))


if __name__ == "__main__":
    main()
