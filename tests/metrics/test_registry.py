import pytest

from attrsearch.errors import UserError
from attrsearch.metrics.registry import check_suite, format_registry, get_spec, metric_mode, metric_names
from tests.support.metric_models import REQUIRED_FULL


def test_every_required_metric_is_registered_with_a_direction():
    names = metric_names("full")
    for name in REQUIRED_FULL:
        assert name in names
        assert metric_mode(name) in ("max", "min")


def test_directions():
    assert metric_mode("segmentation/iou") == "max"
    assert metric_mode("segmentation/mae") == "min"
    assert metric_mode("segmentation/saliency") == "min"
    assert metric_mode("faithfulness/deletion_auc") == "min"
    assert metric_mode("faithfulness/insertion_auc") == "max"
    assert metric_mode("transfer/masked_out") == "min"
    assert metric_mode("localization/le") == "min"
    assert metric_mode("class_specific/selectivity") == "max"
    assert get_spec("segmentation/iou").family == "segmentation"


def test_unknown_names_and_records_are_user_errors():
    with pytest.raises(UserError, match="unknown metric 'segmentation/iuo'"):
        metric_mode("segmentation/iuo")
    with pytest.raises(UserError, match="record"):
        metric_mode("faithfulness/pixels_per_step")
    with pytest.raises(UserError, match="unknown metric suite 'quick'"):
        check_suite("quick")
    with pytest.raises(UserError):
        metric_names("quick")


def test_fast_suite_is_the_cheap_subset():
    fast = set(metric_names("fast"))
    assert {"segmentation/iou", "mask/area", "classification/masked_f1", "class_specific/selectivity"} <= fast
    assert fast < set(metric_names("full"))
    assert "faithfulness/deletion_auc" not in fast


def test_format_lists_every_metric_on_one_line():
    text = format_registry()
    for name in metric_names("full"):
        assert sum(line.split()[0] == name for line in text.splitlines() if line.strip()) == 1
    assert "faithfulness/deletion_substrate" in text
