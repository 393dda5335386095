"""resolve_method / parse_option_values / method_attribution, and the centre baseline."""

from __future__ import annotations

import pytest
import torch

from attrsearch.attribution.methods import METHODS, method_attribution, parse_option_values, resolve_method
from attrsearch.attribution.methods.center import center, center_map
from attrsearch.attribution.methods.rise import RISEOptions
from attrsearch.errors import UserError


def test_registry_names():
    assert METHODS.names() == ["center", "extremal", "gradcam", "gradcam_pp", "igos", "lrp", "rise", "sobel"]


def test_resolve_validates_options():
    fn, opts = resolve_method("rise", {"masks": 10, "cells": 5})
    assert isinstance(opts, RISEOptions) and opts.masks == 10 and opts.cells == 5 and opts.p == 0.5
    assert callable(fn)


@pytest.mark.parametrize(
    "name, options, pattern",
    [
        ("ridge", {}, r"--method: unknown attribution method 'ridge'; choose one of center, .*sobel or captum:<Class>"),
        (
            "rise",
            {"cell": 3},
            r"--option cell: unknown option for method rise \(options: masks, cells, p, seed, batch\)",
        ),
        ("rise", {"cells": 0}, r"--option cells: .*greater than or equal to 1 for method rise \(got 0\)"),
        ("rise", {"p": "half"}, r"--option p: .*number.* for method rise"),
        ("lrp", {"composite": "zplus"}, r"--option composite: .*epsilon_plus_flat.* for method lrp"),
    ],
)
def test_resolve_errors_are_one_line(name, options, pattern):
    with pytest.raises(UserError, match=pattern) as err:
        resolve_method(name, options)
    assert "\n" not in str(err.value)


def test_parse_option_values():
    assert parse_option_values(["cells=5", "areas=[0.1, 0.2]", "layer=stages.3", "abs=true"]) == {
        "cells": 5,
        "areas": [0.1, 0.2],
        "layer": "stages.3",
        "abs": True,
    }
    with pytest.raises(UserError, match="--option cells: expected KEY=VALUE"):
        parse_option_values(["cells"])
    with pytest.raises(UserError, match="--option cells: given twice"):
        parse_option_values(["cells=1", "cells=2"])
    with pytest.raises(UserError, match="--option areas: invalid value"):
        parse_option_values(["areas=[0.1"])


def test_method_attribution_scores_in_inference_mode_and_times(small_cnn, images):
    attribute = method_attribution(small_cnn, "gradcam", {})
    with torch.inference_mode():
        maps = attribute(images)
        attribute(images[:1])
    assert maps.shape == (2, 3, 32, 32)
    assert attribute.images == 3 and attribute.seconds > 0
    assert attribute.seconds_per_image == pytest.approx(attribute.seconds / 3)
    assert method_attribution(small_cnn, "lrp", {}).description.startswith("zennit EpsilonPlusFlat")


def test_default_layer_is_named_in_options_and_description(small_cnn, images):
    from attrsearch.attribution.methods.layers import default_layer

    layer = default_layer(small_cnn)
    for name in ("gradcam", "gradcam_pp", "gradcam_lib:GradCAM", "captum:LayerGradCam"):
        attribute = method_attribution(small_cnn, name, {})
        assert attribute.options["layer"] == layer and f"layer={layer}" in attribute.description, name
    assert method_attribution(small_cnn, "captum:IntegratedGradients", {}).options["layer"] is None
    explicit = method_attribution(small_cnn, "gradcam", {"layer": layer})
    with torch.inference_mode():
        assert torch.equal(explicit(images), method_attribution(small_cnn, "gradcam", {})(images))


def test_method_attribution_rejects_bad_options_before_work(small_cnn):
    with pytest.raises(UserError, match="--option masks"):
        method_attribution(small_cnn, "rise", {"masks": -1})


def test_center_baseline(small_cnn, images):
    maps = center(small_cnn, images, sigma=0.2)
    assert maps.shape == (2, 3, 32, 32)
    assert (maps == maps[:1, :1]).all()  # same map for every image and class
    peak = center_map((31, 31), 0.2)
    assert peak.argmax().item() == 15 * 31 + 15 and peak.max() == 1.0
    assert maps.min() > 0 and maps.max() <= 1
