"""Counterfactual twins of the built-in ``shapes`` images: the same scene, from the same random
stream, drawn without something.

A twin replays its split's random stream (``SeedSequence([seed, split_id])``), so sample ``i`` is
the scene of the cached image ``i``; ``Painter.compose`` then leaves out cues or objects, and the
pixels under them (background, clutter, other cues or objects) show. The pixel noise is the same
draw, so a twin differs from its original only where something was removed; its masks, boxes,
labels and context mask are those of what is drawn. This is ground truth by intervention as in
FunnyBirds (Hesse, Schaub-Meyer & Roth, ICCV 2023), which renders part removals, and the
absent / confound / noise watermark sets of Clark, Oliveira, Wilming & Haufe (2026, arXiv 2602.09238).

Kinds (``cls`` is the class the intervention is about; None where a kind allows it: every class):
``original``; ``no_cue`` (the cue of ``cls`` removed, or every cue); ``no_object`` (the objects
of ``cls`` removed, its cue kept); ``cue_alone`` (the cue of ``cls`` and no object, not even a
hard negative, nor another cue); ``empty`` (background and clutter only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attrsearch.config import DataConfig, ShapesConfig, stable_hash
from attrsearch.data.base import DatasetInfo, normalization_stats
from attrsearch.data.cache import cached_arrays
from attrsearch.data.shapes import (
    GENERATOR_VERSION,
    SPLIT_IDS,
    ShapesDataset,
    class_names,
    empty_split_arrays,
    store_sample,
)
from attrsearch.data.shapes_render import Painter
from attrsearch.errors import UserError

TWIN_KINDS = ("original", "no_cue", "no_object", "cue_alone", "empty")


def twin_filter(kind: str, cls: int | None, num_classes: int) -> tuple[set[int] | None, set[int] | None]:
    """(cue classes, object classes) that ``Painter.compose`` draws for a twin (None: all)."""
    everyone = set(range(-1, num_classes))
    if kind == "original":
        return None, None
    if kind == "no_cue":
        return (set() if cls is None else everyone - {cls}), None
    if kind == "no_object":
        if cls is None:
            raise ValueError("no_object twins need a class")
        return None, everyone - {cls}
    if kind == "cue_alone":
        return (None if cls is None else {cls}), set()
    if kind == "empty":
        return set(), set()
    raise UserError(f"twin kind {kind!r}: choose one of {', '.join(TWIN_KINDS)}")


def cue_cases(
    cfg: ShapesConfig,
    image_size: int,
    split: str,
    limit: int | None = None,
    kinds: Sequence[str] = TWIN_KINDS,
) -> dict[str, Any]:
    """Twins of every case (image, biased class labelled in it whose own cue is visible) among the
    first ``limit`` images of ``split``. Returns ``case_index`` (M,) int64 image indices,
    ``case_class`` (M,) int64 and, per kind, the twins' arrays in ``generate_split``'s layout
    (``images`` (M,H,W,3) uint8, ``instances``, ``boxes``, ``labels``, ``context``)."""
    n = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}[split]
    n = n if limit is None else min(n, limit)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, SPLIT_IDS[split]]))
    painter = Painter(cfg, image_size, split)
    biased = set(cfg.context.biased_classes)
    scenes: list[tuple[int, int, dict[str, Any]]] = []
    for i in range(n):
        scene = painter.scene(rng)
        original = painter.compose(scene)
        labelled = {box[4] for box in original["boxes"]}
        scenes += [(i, c, scene) for c in original["cue_owners"] if c in biased and c in labelled]
    out: dict[str, Any] = {
        "case_index": np.array([i for i, _, _ in scenes], np.int64),
        "case_class": np.array([c for _, c, _ in scenes], np.int64),
    }
    for kind in kinds:
        arrays = empty_split_arrays(len(scenes), image_size, cfg.max_objects, cfg.num_classes)
        for m, (_, c, scene) in enumerate(scenes):
            cues, objects = twin_filter(kind, c, cfg.num_classes)
            store_sample(arrays, m, painter.compose(scene, cues, objects))
        out[kind] = arrays
    return out


def twin_datasets(
    cfg: DataConfig, split: str, cache_dir: Path, limit: int | None = None, kinds: Sequence[str] = TWIN_KINDS
) -> tuple[dict[str, ShapesDataset], np.ndarray, np.ndarray]:
    """The cue cases of ``cue_cases`` as one ``ShapesDataset`` per kind (row m of each is case m),
    cached beside the split, with the case image indices (M,) and classes (M,).

    Raises UserError for a dataset other than ``shapes`` or a split without a cue case."""
    if cfg.dataset != "shapes":
        raise UserError(f"data.dataset: counterfactual twins need the built-in 'shapes' data, not {cfg.dataset!r}")
    for kind in kinds:
        twin_filter(kind, 0, cfg.shapes.num_classes)
    shapes, size = cfg.shapes, cfg.image_size
    key = stable_hash({"shapes": shapes.model_dump(mode="json"), "image_size": size, "version": GENERATOR_VERSION})
    root = Path(cache_dir) / "shapes_twins" / key

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        made = cue_cases(shapes, size, split, limit, kinds)
        arrays = {"case_index": made["case_index"], "case_class": made["case_class"]}
        arrays |= {f"{kind}__{name}": a for kind in kinds for name, a in made[kind].items()}
        return arrays, {"generator_version": GENERATOR_VERSION, "split": split, "cases": len(made["case_index"])}

    arrays, meta = cached_arrays(root, stable_hash({"split": split, "limit": limit, "kinds": list(kinds)}), build)
    if not len(arrays["case_index"]):
        raise UserError(f"data.shapes.context: no image of the {split} split shows a biased class with its cue")
    mean, std = normalization_stats(cfg.normalization)
    info = DatasetInfo(
        name="shapes",
        num_classes=shapes.num_classes,
        class_names=class_names(shapes.num_classes),
        image_size=size,
        mean=mean,
        std=std,
        has_context=True,
        context_classes=tuple(shapes.context.biased_classes),
    )
    datasets = {
        kind: ShapesDataset({k.split("__")[1]: a for k, a in arrays.items() if k.startswith(f"{kind}__")}, info, split)
        for kind in kinds
    }
    return datasets, np.asarray(arrays["case_index"]), np.asarray(arrays["case_class"])
