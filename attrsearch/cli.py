"""The ``attrsearch`` command: thin wrappers over the package (imports happen inside each command).

User errors (``UserError``) print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attrsearch import log
from attrsearch.errors import DiskFull, UserError


def _cmd_train(args: argparse.Namespace) -> int:
    from attrsearch.config import load_experiment
    from attrsearch.evaluate.experiment import run_experiment
    from attrsearch.resolve import resolve_experiment

    cfg = resolve_experiment(load_experiment(args.config, overrides=dict(args.set or [])), args.config)
    summary = run_experiment(cfg, Path(args.out), resume=not args.restart)
    m = summary["metrics"]
    shown = ("segmentation/iou", "class_specific/selectivity", "context/reliance", "mask/area", "explanandum/test_map")
    print(
        f"{cfg.evaluation.split} split: " + ", ".join(f"{k} {m[k]:.3f}" for k in shown if isinstance(m.get(k), float))
    )
    print(f"metrics: {summary['metrics_path']}")
    print(f"checkpoint: {summary['checkpoint_path']}")
    return 0


def _cmd_production(args: argparse.Namespace) -> int:
    from attrsearch.sweep.production import run_production

    folders = run_production(args.results, seeds=args.seeds, restart=args.restart)
    for kind, folder in folders.items():
        print(f"{kind}: {folder}")
    print(f"compare them: attrsearch report {args.results}  (section 'Production: recommendation vs base')")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from attrsearch.explain import explain_images

    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    model = Path(args.model) if args.model else None
    _check_refine_lr(args)
    written = explain_images(
        checkpoint,
        [Path(p) for p in args.images],
        Path(args.out),
        top_k=args.top_k,
        model_dir=model,
        refine=args.refine,
        refine_lr=args.refine_lr,
    )
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from attrsearch.export import export_explainer

    card = export_explainer(Path(args.checkpoint), Path(args.out))
    print(f"exported the Explainer to {card.parent} (explainer.pt2, {card.name})")
    print(f"run it: attrsearch explain --model {card.parent} IMAGE... --out DIR")
    return 0


def _check_refine_lr(args: argparse.Namespace) -> None:
    if args.refine_lr is not None and not args.refine:
        raise UserError("--refine-lr needs --refine T (the number of refinement steps)")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from attrsearch.evaluate.checks import method_from_options
    from attrsearch.evaluate.pipeline import evaluate_checkpoint, evaluate_method

    _check_refine_lr(args)
    if args.method is not None and args.refine:
        raise UserError("--refine refines an Explainer's maps (--checkpoint without --method), not a baseline method's")
    if args.method is None:
        if args.config or args.option or args.max_images:
            raise UserError(
                "--config, --option and --max-images need --method (an Explainer is scored from --checkpoint)"
            )
        if not args.checkpoint:
            raise UserError("give --checkpoint (an Explainer) or --method NAME with --config or --checkpoint")
        metrics = evaluate_checkpoint(
            Path(args.checkpoint),
            Path(args.out),
            suite=args.suite,
            split=args.split or "test",
            refine=args.refine,
            refine_lr=args.refine_lr,
        )
    else:
        if bool(args.config) == bool(args.checkpoint):
            raise UserError("--method: give exactly one of --config CONFIG or --checkpoint CKPT (for its Explanandum)")
        options = method_from_options(args.method, args.option)
        if args.config:
            from attrsearch.config import load_experiment
            from attrsearch.resolve import resolve_experiment

            cfg = resolve_experiment(load_experiment(args.config), args.config)
        else:
            from attrsearch.train.checkpoint import checkpoint_config, load_checkpoint

            cfg = checkpoint_config(load_checkpoint(Path(args.checkpoint)))
        result = evaluate_method(cfg, args.method, options, Path(args.out), args.suite, args.split, args.max_images)
        metrics = result.metrics
        spi = metrics["attribution/seconds_per_image"]
        print(
            f"{result.params['attribution/description']}: {spi:.4f} s/image on {int(metrics['attribution/images'])} images"
        )
    print(f"wrote {len(metrics)} metrics to {Path(args.out) / 'metrics.json'}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from attrsearch.config import load_experiment
    from attrsearch.evaluate.compare import compare, parse_caps, parse_method_options, parse_methods
    from attrsearch.evaluate.comparison import comparison_summary
    from attrsearch.resolve import resolve_experiment

    methods = parse_methods(args.methods)
    caps = parse_caps(args.max_images, methods)
    options = parse_method_options(args.option, methods)
    cfg = resolve_experiment(load_experiment(args.config), args.config)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    summary = compare(
        cfg,
        methods,
        Path(args.out),
        checkpoint=checkpoint,
        max_images=caps,
        options=options,
        suite=args.suite,
        split=args.split,
        sanity_images=args.sanity_images,
        sanity_data=args.sanity_data,
    )
    print(comparison_summary(summary["results"]))
    for name, n in caps.items():
        print(f"note: {name} was scored on the first {n} images only (--max-images)")
    print(f"comparison: {summary['markdown']} and {summary['csv']}")
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    from attrsearch.metrics.registry import format_registry

    print(format_registry())
    return 0


def _cmd_data_export(args: argparse.Namespace) -> int:
    from attrsearch.config import DataConfig, ExperimentConfig, load_experiment, validate
    from attrsearch.data.export import export_dataset
    from attrsearch.resolve import resolve_data, resolve_experiment

    if args.config:
        cfg = resolve_experiment(load_experiment(args.config), args.config)
        data_cfg, cache_dir = cfg.data, cfg.cache_dir
    else:
        data_cfg = resolve_data(
            validate(DataConfig, {"dataset": args.dataset, "image_size": args.image_size}, source="data"), "data", ""
        )
        cache_dir = ExperimentConfig().cache_dir
    out = export_dataset(data_cfg, args.format, Path(args.out), cache_dir, masks=not args.no_masks)
    print(f"exported {data_cfg.dataset} as {args.format} to {out}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from attrsearch.models import EXPLAINERS, EXPLANANDA

    for title, registry in (("explananda", EXPLANANDA), ("explainers", EXPLAINERS)):
        print(f"{title}:")
        for name, doc in registry.describe().items():
            print(f"  {name:32s} {doc}")
        for usage, doc in registry.families().items():
            print(f"  {usage:32s} {doc}")
    from attrsearch.models.timm_models import offline_families

    families = offline_families()
    print(f"timm families available offline ({sum(n for _, n in families)} models, random init or a weights file):")
    print("  " + ", ".join(f"{name} ({n})" for name, n in families))
    print('name one as explanandum.arch: "timm:<model name>" (e.g. timm:resnet18, timm:convnext_tiny,')
    print("timm:vit_small_patch16_224); python -c 'import timm; print(timm.list_models(\"convnext*\"))' lists names")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from attrsearch.sweep.run import run_sweep_command

    return run_sweep_command(args)


def _cmd_status(args: argparse.Namespace) -> int:
    from attrsearch.sweep.storage import Storage  # imports no Ray

    if not Storage.at(args.results).is_local:  # remote storage: read through Ray's experiment state
        from attrsearch.sweep.results import print_status as print_remote_status

        return print_remote_status(args.results)
    from attrsearch.analysis.status import print_status

    return print_status(Path(args.results))


def _cmd_report(args: argparse.Namespace) -> int:
    from attrsearch.analysis.report import build_report

    out = Path(args.out) if args.out else Path(args.results) / "report.html"
    print(build_report(Path(args.results), out))
    return 0


def _key_value(text: str) -> tuple[str, object]:
    from attrsearch.config.base import parse_yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), parse_yaml(value, f"--set {key.strip()}")
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_refine_arguments(p: argparse.ArgumentParser, prefix: str) -> None:
    p.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="T",
        help=prefix + "refine each image's maps by T gradient steps of the ranking objective (Schinagl et al. 2025)",
    )
    p.add_argument("--refine-lr", type=float, default=None, metavar="LR", help="Adam's step for --refine (default 0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attrsearch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one Explainer (and its Explanandum if not cached), then evaluate it")
    p.add_argument("config", help="experiment YAML file (e.g. sweeps/shapes_single.yaml)")
    p.add_argument("--out", required=True, help="output folder: checkpoints, metrics.json, tables/")
    p.add_argument(
        "--set", action="append", type=_key_value, metavar="FIELD=VALUE", help="override a config field (dotted path)"
    )
    p.add_argument("--restart", action="store_true", help="ignore checkpoints in --out and start over")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "production", help="train best.yaml and the sweep's base with the same seeds on the test split, to compare"
    )
    p.add_argument("results", help="a sweep's results folder (results/NAME)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (best.yaml's seed and the next)")
    p.add_argument("--restart", action="store_true", help="ignore earlier production runs and start over")
    p.set_defaults(func=_cmd_production)

    p = sub.add_parser("explain", help="apply a trained Explainer to images: overlays and .npz masks")
    p.add_argument("images", nargs="+", help="image files (any size)")
    p.add_argument("--checkpoint", help="a training checkpoint (or run folder)")
    p.add_argument("--model", help="an exported Explainer folder (attrsearch export): no config or cache needed")
    p.add_argument("--out", required=True)
    p.add_argument("--top-k", type=int, default=3, help="overlays for the k highest-scoring classes")
    _add_refine_arguments(p, "with --checkpoint: ")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("export", help="write the trained Explainer alone (torch.export program + model card)")
    p.add_argument("--checkpoint", required=True, help="a training checkpoint (or run folder)")
    p.add_argument("--out", required=True, help="folder for explainer.pt2 and model_card.json")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "evaluate", help="score a trained Explainer, or a baseline method (--method), with a metric suite"
    )
    p.add_argument(
        "--checkpoint", help="an Explainer checkpoint (or run folder); with --method: its config's Explanandum"
    )
    p.add_argument(
        "--method", help="a baseline attribution method (gradcam, rise, lrp, captum:IntegratedGradients, ...)"
    )
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="an option of --method (repeatable)")
    p.add_argument(
        "--config", help="with --method: the experiment whose Explanandum is explained (trained if not cached)"
    )
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="with --method: the first N images only")
    p.add_argument("--suite", default="full", help="full | fast")
    p.add_argument("--split", default=None, choices=["val", "test"], help="default: test (--method: the config's)")
    _add_refine_arguments(p, "without --method: ")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "compare", help="the Explainer and baseline methods side by side (Stalder et al. 2022, Tabs. 1-3)"
    )
    p.add_argument("config", help="experiment YAML file: its Explanandum, data and evaluation settings")
    p.add_argument("--methods", required=True, help="comma-separated: explainer,gradcam,rise,extremal_perturbation,...")
    p.add_argument("--checkpoint", help="the explainer entry's checkpoint (default: train it into OUT/explainer)")
    p.add_argument("--out", required=True, help="folder for comparison.md/.csv, tables/ and methods/<name>/")
    p.add_argument(
        "--max-images", action="append", metavar="METHOD=N", help="score a slow method on the first N images"
    )
    p.add_argument("--option", action="append", metavar="METHOD.KEY=VALUE", help="an option of one method (repeatable)")
    p.add_argument("--suite", default="full", help="full | fast")
    p.add_argument("--split", default=None, choices=["val", "test"], help="default: the config's evaluation.split")
    p.add_argument("--sanity-images", type=int, default=4, metavar="N", help="images of the sanity checks (default 4)")
    p.add_argument(
        "--sanity-data",
        action="store_true",
        help="also the data randomisation check (trains a shuffled-label Explanandum)",
    )
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("metrics", help="list the metric registry (names, direction, meaning)")
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("models", help="list the Explanandum and Explainer zoos")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("data", help="dataset utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("export", help="write a dataset in the VOC-2007 or COCO layout")
    q.add_argument("--dataset", default="shapes")
    q.add_argument("--config", help="take the data section from this experiment file instead")
    q.add_argument("--image-size", type=int, default=64)
    q.add_argument("--format", required=True, choices=["voc", "coco", "folder"])
    q.add_argument("--no-masks", action="store_true", help="coco / folder: labels and boxes only, no segmentation")
    q.add_argument("--out", required=True)
    q.set_defaults(func=_cmd_data_export)

    p = sub.add_parser("sweep", help="run a hyperparameter sweep with Ray Tune")
    p.add_argument("file", help="sweep YAML file")
    p.add_argument("--dry-run", action="store_true", help="validate, print the space and trial count, start nothing")
    p.add_argument(
        "--sample", type=int, default=0, metavar="N", help="with --dry-run: print N trials drawn from the space"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    p.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help="Ray Tune's own progress tables instead of the compact lines (-vv: more)",
    )
    p.add_argument("--address", default=None, help="join an existing Ray cluster (default: embedded local Ray)")
    p.add_argument("--results", default=None, help="results root (default: the sweep file's storage)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("status", help="summarise a sweep's results folder")
    p.add_argument("results", help="results/<sweep name>")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("report", help="write one self-contained HTML report of a sweep's results folder")
    p.add_argument("results", help="results/<sweep name>")
    p.add_argument("--out", default=None, help="HTML file to write (default: RESULTS/report.html)")
    p.set_defaults(func=_cmd_report)
    return parser


# Commands whose --out is a folder (``report --out`` is the HTML file itself).
OUT_FOLDERS = ("train", "explain", "export", "evaluate", "compare", "data")


def check_out_folder(out: str | Path) -> None:
    """``--out`` must be a folder or not exist yet, below a folder: an existing file there (or above it)
    would otherwise fail with a traceback after the work, or halfway through writing."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --out is an existing file, not a folder")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{out}: --out is inside {parent}, which is a file, not a folder")
            break


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log.console()
    try:
        if args.command in OUT_FOLDERS and getattr(args, "out", None) is not None:
            check_out_folder(args.out)  # before any work
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"attrsearch: error: {err}", file=sys.stderr)
        return 2
    except DiskFull as err:  # raised where the file is written, the partial file removed
        print(f"attrsearch: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        import errno

        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"attrsearch: error: {err.filename or 'a file'}: no space left on device", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("attrsearch: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
