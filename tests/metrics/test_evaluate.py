import json
import math

import pytest
import torch

from attrsearch.config import EvaluationConfig
from attrsearch.errors import UserError
from attrsearch.metrics.common import box_masks
from attrsearch.metrics.evaluate import EvaluationResult, evaluate, write_results
from attrsearch.metrics.registry import metric_names
from tests.support.metric_models import REQUIRED_FULL, TinyCNN, make_dataset


def lookup_attribution(dataset, kind="gt"):
    """Maps looked up by image content: ground truth (boxes for the unannotated image), its
    inverse, or the ground truth scaled out of [0, 1]."""
    table = {}
    for s in dataset.samples:
        c, h, w = s["masks"].shape
        gt = (s["masks"] == 1).float()
        if not s["has_masks"]:
            gt = torch.zeros(c, h, w)
            for box, label in zip(s["boxes"], s["box_labels"]):
                gt[label] = torch.maximum(gt[label], box_masks(box[None], h, w)[0].float())
        maps = {"gt": gt, "inverse": 1.0 - gt, "scaled": 5.0 * gt - 1.0}[kind]
        table[s["image"].numpy().tobytes()] = maps

    def attribute(images):
        return torch.stack([table[x.numpy().tobytes()] for x in images])

    return attribute


def small_cfg(**kw):
    base = {"batch_size": 4, "classify_chunk": 16, "fast_subsample": 3, "class_specific_thresholds": [0.25, 0.5, 0.75]}
    base["faithfulness"] = {"pixels_per_step": 32, "max_images": 4}
    base.update(kw)
    return EvaluationConfig(**base)


@pytest.fixture(scope="module")
def data():
    return make_dataset(n=6, size=16)


@pytest.fixture(scope="module")
def gt_result(data):
    panel = [("cnn-s1", TinyCNN(seed=1)), TinyCNN(seed=2)]
    return evaluate(lookup_attribution(data), TinyCNN(), data, small_cfg(), "full", panel=panel, context_classes=[0])


def test_full_suite_writes_every_required_key(gt_result):
    missing = [k for k in REQUIRED_FULL if k not in gt_result.metrics]
    assert not missing
    registered = set(metric_names("full"))
    assert set(gt_result.metrics) <= registered


def test_ground_truth_attribution_scores_perfectly(gt_result):
    m = gt_result.metrics
    assert m["segmentation/iou"] == pytest.approx(1.0)
    assert m["segmentation/accuracy"] == pytest.approx(1.0)
    assert m["segmentation/mae"] == pytest.approx(0.0)
    assert m["sanity/gt/iou"] == pytest.approx(1.0) and m["sanity/gt/mae"] == pytest.approx(0.0)
    assert m["sanity/gt/accuracy"] == pytest.approx(1.0)
    assert m["sanity/zero/iou"] == 0.0 and m["sanity/half/accuracy"] == pytest.approx(0.5)
    assert m["segmentation/saliency"] == pytest.approx(m["sanity/gt/saliency"])
    assert m["segmentation/images"] == 5  # the unannotated image is left out
    assert m["localization/le"] == 0.0 and m["localization/f1"] == pytest.approx(1.0)
    assert m["pointing_game/accuracy"] == 1.0
    assert m["context/reliance"] == 0.0 and m["context/object_mass"] == pytest.approx(1.0)
    assert m["context/riw"] == 0.0  # no mass on the cue: relative importance 0
    assert m["mask/entropy"] == pytest.approx(0.0)
    assert m["attribution/minmax_normalized"] == 0.0
    assert m["faithfulness/images"] == 4 and m["faithfulness/pixels_per_step"] == 32
    assert gt_result.params["faithfulness/scored_class"] == "label"


def test_tables(gt_result):
    cs = gt_result.tables["class_specific"]
    assert list(cs.columns) == ["c0", "c1", "c2", "none", "images"]
    assert cs["images"].sum() == 9  # 6 images, every second one has two classes
    tr = gt_result.tables["transfer"]
    assert list(tr.index) == ["explanandum", "cnn-s1", "panel1"]
    assert gt_result.metrics["transfer/masked_in"] == pytest.approx(tr.loc[["cnn-s1", "panel1"], "masked_in_f1"].mean())
    assert gt_result.metrics["transfer/panel_size"] == 2
    assert list(gt_result.tables["per_class"].index) == ["c0", "c1", "c2"]


def test_result_does_not_depend_on_the_batch_size(data, gt_result):
    panel = [("cnn-s1", TinyCNN(seed=1)), TinyCNN(seed=2)]
    cfg = small_cfg(batch_size=6, classify_chunk=5)
    other = evaluate(lookup_attribution(data), TinyCNN(), data, cfg, "full", panel=panel, context_classes=[0])
    assert other.metrics.keys() == gt_result.metrics.keys()
    for k, v in gt_result.metrics.items():
        assert other.metrics[k] == pytest.approx(v, abs=1e-5), k


def test_inverted_attribution_is_worse(data, gt_result):
    cfg = small_cfg(pointing_tolerance=1)  # the inverse peaks at (0, 0), 1.4+ px from every object
    inv = evaluate(lookup_attribution(data, "inverse"), TinyCNN(), data, cfg, "full", context_classes=[0])
    assert inv.metrics["segmentation/iou"] < 0.3 < gt_result.metrics["segmentation/iou"]
    assert inv.metrics["pointing_game/accuracy"] < 1.0
    assert inv.metrics["context/reliance"] > 0.0
    assert inv.metrics["transfer/panel_size"] == 0  # no panel: the Explanandum itself


def test_fast_suite(data):
    res = evaluate(lookup_attribution(data), TinyCNN(), data, small_cfg(), "fast")
    assert set(res.metrics) <= set(metric_names("fast"))
    for key in ("segmentation/iou", "mask/area", "classification/masked_f1", "class_specific/selectivity"):
        assert key in res.metrics
    assert res.metrics["class_specific/images"] == 3


def test_out_of_range_maps_are_normalised_and_flagged(data, caplog):
    res = evaluate(lookup_attribution(data, "scaled"), TinyCNN(), data, small_cfg(), "fast")
    assert res.metrics["attribution/minmax_normalized"] == 1.0
    assert res.metrics["segmentation/iou"] == pytest.approx(1.0)  # min-max brings 5g-1 back to g
    assert "min-max normalised" in caplog.text


def test_context_metrics_are_omitted_without_planted_cues():
    data = make_dataset(n=4, size=16, context=False)
    res = evaluate(lookup_attribution(data), TinyCNN(), data, small_cfg(), "full")
    assert not any(k.startswith("context/") for k in res.metrics)
    assert any("no planted context" in n for n in res.notes)


def test_unknown_suite_is_a_user_error(data):
    with pytest.raises(UserError, match="suite"):
        evaluate(lookup_attribution(data), TinyCNN(), data, small_cfg(), "quick")


def test_write_results_merges_and_writes_tables(tmp_path, gt_result):
    (tmp_path / "metrics.json").write_text(json.dumps({"train/epochs": 3.0, "segmentation/iou": -1.0}))
    result = EvaluationResult({**gt_result.metrics, "extra/nan": math.nan}, gt_result.tables, gt_result.params)
    write_results(result, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["train/epochs"] == 3.0
    assert saved["segmentation/iou"] == pytest.approx(1.0)
    assert saved["extra/nan"] is None
    assert saved["faithfulness/deletion_substrate"] == "mean"
    for name in ("class_specific", "transfer", "per_class"):
        assert (tmp_path / "tables" / f"{name}.csv").is_file()
    (tmp_path / "metrics.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="metrics.json"):
        write_results(result, tmp_path)


def test_unlabelled_images_cost_no_attribution_and_bfloat16_stays_close():
    data = make_dataset(n=6, size=16)
    for i in (1, 4):  # no class present: skipped everywhere, so never attributed
        data.samples[i]["labels"] = torch.zeros_like(data.samples[i]["labels"])
    inner = lookup_attribution(data)
    shown = []

    def attribute(images):
        shown.append(images.shape[0])
        return inner(images)

    ref = evaluate(attribute, TinyCNN(), data, small_cfg(), "full", context_classes=[0])
    assert sum(shown) == 4 and ref.metrics["faithfulness/images"] == 3  # positions 0, 2, 3 of the first 4
    half = evaluate(inner, TinyCNN(), data, small_cfg(classifier_dtype="bfloat16"), "full", context_classes=[0])
    for key in ("faithfulness/deletion_auc", "faithfulness/insertion_auc"):
        assert half.metrics[key] == pytest.approx(ref.metrics[key], abs=1e-2)
