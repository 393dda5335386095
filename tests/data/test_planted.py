"""data.planted: a translucent watermark or patch with a chosen class correlation on VOC and COCO."""

from __future__ import annotations

import pytest
import torch

from attrsearch.config import DataConfig, ExperimentConfig
from attrsearch.config.data import PlantedCueConfig
from attrsearch.data import build_dataset, denormalize
from attrsearch.data.planted import PATCH_COLOURS, cue_pattern
from attrsearch.data.voc import VOC_CLASSES
from attrsearch.errors import UserError

SIZE = 80
PERSON = VOC_CLASSES.index("person")


def _voc(root, **planted) -> DataConfig:
    extra = {"planted": planted} if planted else {}
    return DataConfig.model_validate({"dataset": "voc2007", "root": str(root), "image_size": SIZE, **extra})


def test_patterns():
    mask, colour = cue_pattern("patch", 8)
    assert mask.all() and tuple(colour[0, 0]) == PATCH_COLOURS[0] and tuple(colour[0, 2]) == PATCH_COLOURS[1]
    mask, colour = cue_pattern("watermark", 16)
    assert 0.2 < mask.mean() < 0.8 and mask[8, 8] and (colour == 1).all()  # strokes cross at the centre


def test_patch_on_voc_changes_exactly_its_pixels(voc_root):
    plain = build_dataset(_voc(voc_root), "train", "unused")
    cfg = _voc(voc_root, kind="patch", **{"class": "person"}, p=1.0, alpha=0.5, size=0.25, position="corner")
    planted = build_dataset(cfg, "train", "unused")
    assert planted.info.has_context and planted.info.context_classes == (PERSON,)
    seen = {True: 0, False: 0}
    for i in range(len(plain)):
        a, b = plain[i], planted[i]
        has_person = bool(a["labels"][PERSON])
        seen[has_person] += 1
        assert torch.equal(a["masks"], b["masks"]) and torch.equal(a["labels"], b["labels"])
        if not has_person:
            assert torch.equal(a["image"], b["image"]) and not b["context"].any()
            continue
        region = torch.zeros(SIZE, SIZE, dtype=torch.bool)
        region[60:, 60:] = True  # a 20 px square in the bottom-right corner
        assert torch.equal(b["context"].bool(), region)
        info = plain.info
        rgb_a, rgb_b = (denormalize(s["image"][None], info.mean, info.std)[0] for s in (a, b))
        assert torch.equal(rgb_a[:, ~region], rgb_b[:, ~region])
        want = 0.5 * rgb_a[:, 60, 60] + 0.5 * torch.tensor(PATCH_COLOURS[0])
        torch.testing.assert_close(rgb_b[:, 60, 60], want, atol=1e-5, rtol=0)
    assert seen[True] and seen[False]  # the fixture has images with and without a person


def test_watermark_on_coco_as_noise_control_and_reproducible(coco_root):
    data = {"dataset": "coco2014", "root": str(coco_root), "image_size": 48}
    data["planted"] = {"kind": "watermark", "class": 0, "p": 1.0, "p_other": 1.0, "size": 0.5}
    cfg = DataConfig.model_validate(data)
    ds = build_dataset(cfg, "train", "unused")
    assert all(ds[i]["context"].any() for i in range(len(ds)))  # every image: independent of the class
    assert torch.equal(ds[0]["context"], build_dataset(cfg, "train", "unused")[0]["context"])
    assert int(ds[0]["context"].sum()) == int(cue_pattern("watermark", 24)[0].sum())
    none = DataConfig.model_validate({**data, "planted": {**data["planted"], "p": 0.0, "p_other": 0.0}})
    test = build_dataset(none, "test", "unused")
    assert len(test) and not any(test[i]["context"].any() for i in range(len(test)))
    by_name = {**data["planted"], "class": "cat999"}
    with pytest.raises(UserError, match=r"data.planted.class: 'cat999' is not a class of coco2014"):
        build_dataset(DataConfig.model_validate({**data, "planted": by_name}), "train", "unused")


def test_context_metrics_run_on_planted_voc(voc_root, monkeypatch):
    from attrsearch.config.evaluation import EvaluationConfig
    from attrsearch.metrics import registry, suites
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.models import create_explanandum

    only = suites.Suite("context only", (suites.Family("context"),))
    monkeypatch.setitem(suites.SUITES, "context_only", only)
    monkeypatch.setitem(registry.SUITES, "context_only", only.description)
    ds = build_dataset(_voc(voc_root, kind="patch", **{"class": "person"}, p=1.0, size=0.25), "train", "unused")
    contexts = [ds[i]["context"].float() for i in range(len(ds))]
    maps = iter([torch.stack(contexts)[:, None].expand(-1, 20, -1, -1)])
    model = create_explanandum("small_cnn", 20, image_size=SIZE, width=4).eval()
    result = evaluate(lambda images: next(maps), model, ds, EvaluationConfig(batch_size=8), suite="context_only")
    assert result.metrics["context/reliance"] == pytest.approx(1.0)  # a map on the cue puts all its mass there
    assert result.metrics["context/cases"] >= 1


def test_cache_key_changes_only_with_a_planted_cue(voc_root):
    from attrsearch.train.explanandum import explanandum_key

    cfg = ExperimentConfig(data=_voc(voc_root))
    assert "planted" not in explanandum_key(cfg)["data"]  # keys of classifiers cached before stay valid
    planted = ExperimentConfig(data=_voc(voc_root, **{"class": "person"}))
    assert explanandum_key(planted)["data"]["planted"]["class_name"] == "person"
    assert PlantedCueConfig.model_validate({"class": 3}).class_name == 3
