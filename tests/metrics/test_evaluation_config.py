import pytest

from attrsearch.config import EvaluationConfig, validate
from attrsearch.errors import UserError
from attrsearch.resolve import resolve_evaluation


def test_defaults_are_valid_and_thresholds_sorted():
    cfg = EvaluationConfig()
    assert cfg.class_specific_thresholds == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert validate(EvaluationConfig, {"class_specific_thresholds": [0.9, 0.1]}).class_specific_thresholds == [0.1, 0.9]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"epoch_suite": "quick"}, "epoch_suite"),
        ({"final_suite": "slow"}, "final_suite"),
        ({"class_specific_thresholds": [0.5, 1.0]}, "class_specific_thresholds"),
        ({"class_specific_thresholds": []}, "class_specific_thresholds"),
        ({"class_specific_thresholds": [0.5, 0.5]}, "class_specific_thresholds"),
        ({"faithfulness": {"scored_class": "top5"}}, "faithfulness.scored_class"),
        ({"faithfulness": {"pixels_per_step": 0}}, "faithfulness.pixels_per_step"),
        ({"attribution_normalization": "never"}, "attribution_normalization"),
        ({"saliency_crop_threshold": 1.0}, "saliency_crop_threshold"),
    ],
)
def test_bad_values_name_the_field(data, field):
    with pytest.raises(UserError, match=f"evaluation: {field}"):
        resolve_evaluation(validate(EvaluationConfig, data, source="evaluation"), "evaluation", "")
