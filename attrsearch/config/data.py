"""Dataset configuration: the built-in procedural ``shapes`` benchmark, VOC-2007, COCO-format files and a
folder of images with a CSV of labels."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from attrsearch.config.base import StrictModel

# Distinct context cues the built-in generator can draw (attrsearch.data.shapes.CUES).
NUM_CONTEXT_CUES = 6


class ContextBiasConfig(StrictModel):
    """A planted context bias: some classes co-occur with a context cue (like VOC's trains on rails)."""

    biased_classes: list[int] = Field(
        default_factory=lambda: [0, 1], description="classes that co-occur with their context cue"
    )
    p_train: float = Field(0.9, ge=0.0, le=1.0, description="probability the cue accompanies a biased class in train")
    p_test: float = Field(0.5, ge=0.0, le=1.0, description="the same probability in val and test")
    p_cue_alone: float = Field(0.05, ge=0.0, le=1.0, description="probability an image shows a cue without its class")
    train_mode: Literal["confound", "noise"] = Field(
        "confound",
        description="noise: in train, each cue stands alone, as often as under confound but independent of the "
        "classes (Clark et al. 2026's salient, uninformative control); val and test are unchanged",
    )


class ShapesConfig(StrictModel):
    """Generator settings of the built-in benchmark; the cache key is a hash of these fields."""

    num_classes: int = Field(8, ge=2, le=16)
    num_train: int = Field(2000, ge=1)
    num_val: int = Field(500, ge=1)
    num_test: int = Field(500, ge=1)
    min_objects: int = Field(1, ge=1)
    max_objects: int = Field(3, ge=1, le=32)
    min_object_size: float = Field(0.15, gt=0.0, le=1.0, description="object size as a fraction of the image side")
    max_object_size: float = Field(0.3, gt=0.0, le=1.0)
    background: Literal["noise", "textures", "mixed"] = "mixed"
    clutter: int = Field(3, ge=0, description="mean number of clutter blobs per image")
    p_hard_negative: float = Field(
        0.3, ge=0.0, le=1.0, description="probability of a right-shape-wrong-colour distractor"
    )
    context: ContextBiasConfig = Field(default_factory=ContextBiasConfig)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ShapesConfig:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({self.min_objects}) must be <= max_objects ({self.max_objects})")
        if self.min_object_size > self.max_object_size:
            raise ValueError("min_object_size must be <= max_object_size")
        bad = [c for c in self.context.biased_classes if not 0 <= c < self.num_classes]
        if bad:
            raise ValueError(f"context.biased_classes {bad} outside 0..{self.num_classes - 1}")
        if len(set(self.context.biased_classes)) != len(self.context.biased_classes):
            raise ValueError(f"context.biased_classes {self.context.biased_classes} lists a class twice")
        if len(self.context.biased_classes) > NUM_CONTEXT_CUES:
            raise ValueError(f"context.biased_classes: at most {NUM_CONTEXT_CUES} classes (one distinct cue each)")
        return self


def check_class_names(names: list[str] | None) -> list[str] | None:
    """Class names of a dataset with palette masks: 1..254 of them (mask indices 1..C, 255 is void), unique."""
    if names is not None:
        if not 1 <= len(names) <= 254:
            raise ValueError("needs 1..254 class names (mask indices 1..C, 255 is void)")
        if len(set(names)) != len(names):
            raise ValueError("class names must be unique")
    return names


class VOCConfig(StrictModel):
    """VOC-2007 from a VOCdevkit folder: ``root`` is the ``VOC2007`` folder (or its parent VOCdevkit)."""

    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    use_difficult: bool = Field(True, description="count objects marked difficult in labels and boxes")
    classes: list[str] | None = Field(
        None, description="class names in mask-index order (1..C); None = the 20 VOC classes"
    )

    @field_validator("classes")
    @classmethod
    def _classes(cls, names: list[str] | None) -> list[str] | None:
        return check_class_names(names)


class COCOConfig(StrictModel):
    """COCO-format instances JSON files under ``root`` (paths relative to it).

    ``coco2014`` fills the paths left empty with COCO-2014's (``annotations/instances_train2014.json``,
    ``train2014``, ``annotations/instances_val2014.json``, ``val2014``); ``coco`` needs
    ``train_annotations``, reads images from ``root`` unless ``*_images`` says otherwise, and holds
    ``val_fraction`` / ``test_fraction`` of the train JSON out where no val / test JSON is named.
    """

    train_annotations: str | None = Field(
        None, description="instances JSON of the train split (and of a held-out val/test)"
    )
    train_images: str | None = Field(None, description="folder its file_name entries are relative to (coco: root)")
    val_annotations: str | None = Field(None, description="instances JSON of val; None: val_fraction of the train JSON")
    val_images: str | None = Field(None, description="None: train_images")
    test_annotations: str | None = Field(
        None, description="instances JSON of test (coco2014: val2014); coco, None: test_fraction of the train JSON"
    )
    test_images: str | None = Field(None, description="None: train_images (coco2014: val2014)")
    val_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the train JSON held out for validation (the paper: 10%)"
    )
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="share held out for test when no test JSON is named")
    split_seed: int = Field(0, description="seed of the permutation that holds images out (by sorted image id)")
    missing_masks: Literal["boxes", "skip"] = Field(
        "boxes",
        description="images whose annotations have no segmentation: score pixel metrics against box masks"
        " (segmentation/ground_truth says so) or skip them (no pixel metric)",
    )


class FolderConfig(StrictModel):
    """A folder of images and a CSV of multi-label annotations (``dataset: folder``).

    ``labels_file`` has the columns ``image`` (path relative to ``images``) and ``labels`` (class names
    separated by ``|``; empty: no class), and optionally ``mask``: a palette PNG of class indices
    (0 background, k+1 class k, 255 void) or, with ``{class}`` in the path, one greyscale PNG per
    present class (non-zero inside). Splits: files listing the ``image`` values, one per line, or a
    seeded ratio of the rows not listed in a split file.
    """

    labels_file: str = Field("labels.csv", description="CSV under root with columns image,labels[,mask]")
    images: str = Field(".", description="folder (under root) the image and mask paths are relative to")
    classes: list[str] | None = Field(None, description="class names in index order; None: the sorted CSV labels")
    train_split: str | None = Field(None, description="file of the train images; None: the rows no other split lists")
    val_split: str | None = Field(None, description="file of the val images; None: val_fraction of the train rows")
    test_split: str | None = Field(None, description="file of the test images; None: test_fraction of the train rows")
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    split_seed: int = 0

    @field_validator("classes")
    @classmethod
    def _classes(cls, names: list[str] | None) -> list[str] | None:
        names = check_class_names(names)
        if names is not None and any("|" in n or not n.strip() for n in names):
            raise ValueError("class names must be non-empty and hold no '|'")
        return names


class PlantedCueConfig(StrictModel):
    """A translucent cue pasted into any dataset's images with a chosen class correlation; its pixels are
    recorded as the sample's ``context`` mask (attrsearch.data.planted). ``p == p_other``: a cue as
    frequent as the confound but independent of the class (the noise control)."""

    kind: Literal["watermark", "patch"] = Field(
        "watermark", description="a ringed cross of strokes, or a checkered square"
    )
    class_name: str | int = Field(
        validation_alias=AliasChoices("class", "class_name"),
        description="the class the cue correlates with (name or index)",
    )
    p: float = Field(0.9, ge=0.0, le=1.0, description="probability an image of the class carries the cue (train)")
    p_test: float | None = Field(None, ge=0.0, le=1.0, description="the same in val and test (None: p)")
    p_other: float = Field(0.0, ge=0.0, le=1.0, description="probability an image without the class carries the cue")
    alpha: float = Field(0.5, gt=0.0, le=1.0, description="opacity of the cue (1: pasted opaque)")
    size: float = Field(0.25, gt=0.0, le=1.0, description="the cue's side as a fraction of the image side")
    position: Literal["random", "corner"] = Field("random", description="anywhere, or the bottom-right corner")
    seed: int = 0


class DataConfig(StrictModel):
    """Which dataset and how its images are sized and normalised. The name is checked against the
    dataset registry, and ``root`` against what that dataset needs, by ``attrsearch.resolve``."""

    dataset: str = Field("shapes", description="shapes | voc2007 | coco2014 | coco | folder")
    root: Path | None = Field(None, description="dataset folder for real datasets")
    image_size: int = Field(64, ge=32, description="images are resized to image_size x image_size (the paper: 224)")
    normalization: Literal["imagenet", "none"] = "imagenet"
    max_train: int | None = Field(None, ge=1, description="use only the first N training images")
    max_val: int | None = Field(None, ge=1)
    max_test: int | None = Field(None, ge=1)
    shapes: ShapesConfig = Field(default_factory=ShapesConfig)
    voc: VOCConfig = Field(default_factory=VOCConfig)
    coco: COCOConfig = Field(default_factory=COCOConfig)
    folder: FolderConfig = Field(default_factory=FolderConfig)
    planted: PlantedCueConfig | None = Field(None, description="a planted cue for any dataset (data/planted.py)")
