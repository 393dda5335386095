"""Train (or fine-tune) an Explanandum with multi-label BCE, cache it, and hand out frozen copies.

The cache key is (dataset, architecture, weights, seed, recipe): every later run and sweep trial
that needs the same classifier loads one trained copy instead of training again. The copy
handed out is frozen: eval mode and ``requires_grad=False`` on every weight.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attrsearch.cache import CacheEntry
from attrsearch.config import ExperimentConfig, stable_hash
from attrsearch.config.experiment import ExplanandumRecipe
from attrsearch.data import AttributionDataset, build_dataset, fingerprint
from attrsearch.errors import UserError
from attrsearch.metrics.classification import mean_average_precision, multilabel_f1
from attrsearch.models import create_explanandum, load_classifier_file, model_card, set_data_normalization
from attrsearch.train.augment import occlude, random_hflip
from attrsearch.train.checkpoint import read_torch_file
from attrsearch.train.runtime import keep_freed_memory, make_loader, make_optimizer, seed_everything

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def explanandum_key(
    cfg: ExperimentConfig,
    arch: str | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """What identifies a trained Explanandum: data, architecture and its options, initial weights,
    seed, recipe. ``arch``/``seed``/``options``/``epochs`` override ``cfg.explanandum`` (panel members)."""
    e = cfg.explanandum
    data = cfg.data.model_dump(mode="json", exclude={"max_val", "max_test"})
    if data.get("planted") is None:
        data.pop("planted", None)  # keys of classifiers cached before data.planted existed stay valid
    arch = arch or e.arch
    if options is None:
        options = e.options if arch == e.arch else {}
    recipe = e.recipe.model_dump(mode="json")
    if not recipe.get("shuffle_labels"):
        recipe.pop("shuffle_labels", None)  # keys of classifiers cached before the flag existed stay valid
    if epochs is not None:
        recipe["epochs"] = epochs
    return {
        "version": CACHE_VERSION,
        "data": data,
        # What the data depends on besides its config (the generator version, the annotation files):
        # a cached classifier must not survive a change of it.
        "data_version": fingerprint(cfg.data),
        "arch": arch,
        "weights": e.weights,
        "seed": e.seed if seed is None else seed,
        "options": options,
        "recipe": recipe,
    }


def explanandum_entry(
    cfg: ExperimentConfig, arch: str | None = None, seed: int | None = None, **overrides: Any
) -> CacheEntry:
    """The cache entry ``cache_dir/explananda/<arch>-s<seed>-<hash of the key>/{model.pt, meta.json}``."""
    return _entry(cfg, explanandum_key(cfg, arch, seed, **overrides))


def _entry(cfg: ExperimentConfig, key: dict[str, Any]) -> CacheEntry:
    arch = str(key["arch"]).replace(":", "_")  # timm:<name>, python:<module>:<function>: no ':' in folder names
    return CacheEntry(Path(cfg.cache_dir), "explananda", f"{arch}-s{key['seed']}-{stable_hash(key)}", CACHE_VERSION)


def explanandum_cache_path(
    cfg: ExperimentConfig, arch: str | None = None, seed: int | None = None, **overrides: Any
) -> Path:
    return explanandum_entry(cfg, arch, seed, **overrides).path


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients on any weight (the Explanandum is frozen: Stalder et al., 2022)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.no_grad()
def predict(
    model: nn.Module, ds: AttributionDataset, device: torch.device, batch_size: int = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels over a whole split: (N, C) each, on the CPU."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for batch in make_loader(ds, batch_size, False, 0):
        logits.append(model(batch["image"].to(device)).float().cpu())
        labels.append(batch["labels"])
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


def classifier_scores(model: nn.Module, ds: AttributionDataset, device: torch.device) -> dict[str, float]:
    """mAP and sample-averaged F1 (threshold 0.5 on sigmoid) of a multi-label classifier."""
    logits, labels = predict(model, ds, device)
    return {"map": mean_average_precision(logits, labels), "f1": multilabel_f1(torch.sigmoid(logits), labels)}


def train_classifier(
    model: nn.Module,
    train_ds: AttributionDataset,
    recipe: ExplanandumRecipe,
    device: torch.device,
    seed: int,
    progress: bool = True,
    desc: str = "explanandum",
) -> list[float]:
    """Multi-label BCE training with flips and occlusion (``recipe.occlusion``); cosine LR schedule.

    With ``recipe.freeze_backbone`` only the head (parameters not in ``encoder_stages()``) is trained,
    as in the public code of Stalder et al. (2022). With ``recipe.shuffle_labels`` image i is trained
    on the label vector of image perm(i) for one fixed seeded permutation (the data randomisation test
    of Adebayo et al. 2018: a classifier that can only memorise). Returns the mean training loss of
    every epoch.
    """
    from tqdm.auto import tqdm

    seed_everything(seed)
    model.to(device).train()
    if recipe.freeze_backbone:
        stages, _ = model.encoder_stages()
        for stage in stages:
            stage.requires_grad_(False)
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.weight_decay)
    steps = max(1, recipe.epochs * ((len(train_ds) + recipe.batch_size - 1) // recipe.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.15)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    shuffled = shuffled_labels(train_ds, seed) if recipe.shuffle_labels else None
    losses = []
    for epoch in range(recipe.epochs):
        total, count = 0.0, 0
        batches = make_loader(train_ds, recipe.batch_size, True, seed * 100003 + epoch)
        bar = tqdm(batches, desc=f"{desc} epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False)
        for batch in bar:
            images = batch["image"]
            if recipe.augment_flip:
                images = random_hflip(images, aug_gen)
            images = occlude(images, recipe.occlusion, aug_gen)
            labels = (batch["labels"] if shuffled is None else shuffled[batch["index"]]).to(device)
            loss = F.binary_cross_entropy_with_logits(model(images.to(device)).float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(labels)
            count += len(labels)
            bar.set_postfix(loss=f"{total / count:.4f}")
        losses.append(total / max(count, 1))
    return losses


def shuffled_labels(ds: AttributionDataset, seed: int) -> torch.Tensor:
    """(N, C) label vectors of ``ds`` permuted over images with a generator seeded by ``seed``:
    row i is the labels of image perm(i) (class frequencies and co-occurrences kept, image-label link broken)."""
    labels = torch.stack([torch.as_tensor(ds[i]["labels"]) for i in range(len(ds))])
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed + 7919))
    return labels[perm]


def _model_from_state(state: dict[str, Any], device: torch.device) -> nn.Module:
    model = create_explanandum(
        state["arch"], state["num_classes"], image_size=state["image_size"], **state.get("options", {})
    )
    model.load_state_dict(state["state_dict"])
    return freeze(model.to(device))


def load_explanandum_file(
    path: Path,
    num_classes: int,
    device: torch.device,
    field: str = "explanandum.checkpoint",
    cfg: ExperimentConfig | None = None,
    data_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> nn.Module:
    """A trained Explanandum file (a cache ``model.pt`` or a folder with one), checked against the class count.

    With ``cfg``, any other weights file is a classifier of ``cfg.explanandum.arch`` trained elsewhere
    (a state dict: a timm or ``python:`` model, or a zoo model), loaded exactly into that architecture;
    ``data_stats`` (mean, std) is the data's normalisation (for a timm model's own).
    """
    file = path / "model.pt" if path.is_dir() else path
    if cfg is not None and not _is_attrsearch_file(file):
        e = cfg.explanandum
        model = create_explanandum(e.arch, num_classes, image_size=cfg.data.image_size, **e.options)
        load_classifier_file(model, file, num_classes, field, e.arch)
        if data_stats is not None:
            set_data_normalization(model, *data_stats)
        return freeze(model.to(device))
    return _model_from_state(_read_explanandum_file(path, num_classes, field), device)


def _read_explanandum_file(path: Path, num_classes: int, field: str) -> dict[str, Any]:
    """An attrsearch Explanandum file's state, checked against the class count (one line if not)."""
    file = path / "model.pt" if path.is_dir() else path
    state = read_torch_file(file, field)
    if not isinstance(state, dict) or "state_dict" not in state or "arch" not in state:
        raise UserError(f"{field}: {file}: not an attrsearch Explanandum file")
    if state["num_classes"] != num_classes:
        raise UserError(f"{field}: {file} has {state['num_classes']} classes, the dataset has {num_classes}")
    return state


def check_explanandum_inputs(cfg: ExperimentConfig) -> None:
    """What ``get_explanandum`` will read, checked before any data is built or cached: a given Explanandum
    file and its class count (when the data config fixes it), or, when the Explanandum is not cached yet,
    its ``weights`` (the ImageNet file in the torch hub cache, or a readable weights file)."""
    from attrsearch.data import config_class_count
    from attrsearch.models import EXPLANANDA
    from attrsearch.models.registry import check_model_weights

    e = cfg.explanandum
    if e.checkpoint is not None:
        expected = config_class_count(cfg.data)
        if expected is not None:
            check_explanandum_checkpoint(cfg, expected)
    elif not _entry(cfg, explanandum_key(cfg)).exists():  # a cached one needs no initial weights
        check_model_weights(EXPLANANDA, "explanandum", e.arch, e.weights)


def check_explanandum_checkpoint(cfg: ExperimentConfig, num_classes: int) -> None:
    """Load ``explanandum.checkpoint`` once on the CPU (if set) so a file for another class count or
    architecture is one line before any output is written."""
    if cfg.explanandum.checkpoint is not None:
        load_explanandum_file(Path(cfg.explanandum.checkpoint), num_classes, torch.device("cpu"), cfg=cfg)


def _is_attrsearch_file(file: Path) -> bool:
    """Whether ``file`` is a ``model.pt`` attrsearch wrote (else a user's state dict)."""
    if file.suffix == ".safetensors" or not file.is_file():
        return False
    state = read_torch_file(file, "explanandum.checkpoint")
    return isinstance(state, dict) and "state_dict" in state and "arch" in state


def get_explanandum(
    cfg: ExperimentConfig,
    device: torch.device | str = "cpu",
    *,
    arch: str | None = None,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    epochs: int | None = None,
    progress: bool | None = None,
) -> nn.Module:
    """A frozen Explanandum for ``cfg``, trained and cached first if needed.

    ``arch``/``seed``/``options``/``epochs`` override ``cfg.explanandum`` (members of a transfer
    panel are trained with the same recipe). Returns a model in eval mode with
    ``requires_grad=False`` on its weights.
    """
    device = torch.device(device)
    progress = cfg.train.progress if progress is None else progress
    overrides = {"options": options, "epochs": epochs}
    is_main = (
        arch in (None, cfg.explanandum.arch)
        and seed in (None, cfg.explanandum.seed)
        and options is None
        and epochs is None
    )
    if cfg.explanandum.checkpoint is not None and is_main:
        train_ds = build_dataset(cfg.data, "train", cfg.cache_dir)
        info = train_ds.info
        return load_explanandum_file(
            Path(cfg.explanandum.checkpoint), info.num_classes, device, cfg=cfg, data_stats=(info.mean, info.std)
        )
    key = explanandum_key(cfg, arch, seed, **overrides)
    entry = _entry(cfg, key)  # concurrent processes train one copy: the others wait for its lock, then load it

    def train(folder: Path) -> dict[str, Any]:
        meta = train_explanandum(cfg, folder, key=key, device=device, progress=progress)
        log.info(
            f"explanandum {meta['arch']} (seed {meta['seed']}): test mAP {meta['test_map']:.3f}, F1 {meta['test_f1']:.3f}, "
            f"{meta['train_seconds']:.0f} s -> {entry.path}"
        )
        return meta

    entry.build(train)
    return _model_from_state(read_torch_file(entry.path / "model.pt"), device)


def panel_specs(cfg: ExperimentConfig) -> list[tuple[str, dict[str, Any]]]:
    """(name, ``get_explanandum`` overrides) of each transfer panel member (CASM: Zolna, Geras & Cho, 2020)."""
    return [
        (f"{m.arch}-s{m.seed}", {"arch": m.arch, "seed": m.seed, "options": m.options or None, "epochs": m.epochs})
        for m in cfg.evaluation.transfer.panel
    ]


def get_panel(cfg: ExperimentConfig, device: torch.device | str = "cpu") -> list[tuple[str, nn.Module]]:
    """The classifier-agnostic transfer panel as (name, frozen classifier) pairs, trained if needed."""
    return [(name, get_explanandum(cfg, device, **overrides)) for name, overrides in panel_specs(cfg)]


def train_explanandum(
    cfg: ExperimentConfig,
    path: Path,
    *,
    key: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Train one Explanandum, write ``path/model.pt`` and return its meta dict (the cache entry
    writes ``meta.json`` and publishes the folder)."""
    device = torch.device(device)
    keep_freed_memory()
    key = key or explanandum_key(cfg)
    arch, seed = key["arch"], key["seed"]
    recipe = ExplanandumRecipe.model_validate(key["recipe"])
    train_ds = build_dataset(cfg.data, "train", cfg.cache_dir)
    test_ds = build_dataset(cfg.data, "test", cfg.cache_dir)
    info = train_ds.info
    seed_everything(seed)
    model = create_explanandum(
        arch, info.num_classes, weights=cfg.explanandum.weights, image_size=info.image_size, **key["options"]
    )
    set_data_normalization(model, info.mean, info.std)
    start = time.perf_counter()
    losses = train_classifier(model, train_ds, recipe, device, seed, progress=progress, desc=f"{arch} (seed {seed})")
    seconds = time.perf_counter() - start
    scores = classifier_scores(model, test_ds, device)
    meta = {
        "arch": arch,
        "seed": seed,
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "test_map": scores["map"],
        "test_f1": scores["f1"],
        "train_loss": losses,
        "train_seconds": seconds,
        "key": key,
    }
    if model_card(model):
        meta["model_card"] = model_card(model)  # a timm model's pretrained config and normalisation
    state = {
        "arch": arch,
        "num_classes": info.num_classes,
        "image_size": info.image_size,
        "options": key["options"],
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    path.mkdir(parents=True, exist_ok=True)
    torch.save(state, path / "model.pt")
    return meta


def explanandum_meta(cfg: ExperimentConfig, arch: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """The stored scores of a cached Explanandum (empty if it is not cached or given as a file)."""
    meta = explanandum_cache_path(cfg, arch, seed) / "meta.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}
