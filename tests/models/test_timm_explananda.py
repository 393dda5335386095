"""timm: and python: Explananda (issue 22): names, options, weights, normalisation, internals."""

from __future__ import annotations

import sys

import pytest
import torch

from attrsearch.attribution.methods import resolve_method
from attrsearch.attribution.methods.layers import find_layer
from attrsearch.errors import UserError
from attrsearch.models import EXPLANANDA, create_explainer, create_explanandum, load_classifier_file
from attrsearch.models.registry import check_entry

VIT = ("timm:vit_tiny_patch16_224", {"patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2})


@pytest.fixture(scope="module")
def resnet():
    return create_explanandum("timm:resnet10t", 3, image_size=32).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def vit():
    return create_explanandum(VIT[0], 3, image_size=32, **VIT[1]).eval().requires_grad_(False)


def test_unknown_timm_name_lists_the_closest():
    with pytest.raises(UserError, match=r"explanandum.arch: timm .* has no model 'resnet10x'; closest: .*resnet10t"):
        create_explanandum("timm:resnet10x", 3)
    assert "timm:resnet18" in EXPLANANDA and "timm" not in EXPLANANDA.names()


def test_options_are_checked_on_the_meta_device():
    check_entry(EXPLANANDA, "explanandum", VIT[0], {"img_size": 32, "patch_size": 8}, ())
    with pytest.raises(UserError, match=r"explanandum.options: timm model resnet10t rejects \['img_size'\]"):
        check_entry(EXPLANANDA, "explanandum", "timm:resnet10t", {"img_size": 32}, ())
    with pytest.raises(UserError, match="explanandum.options.num_classes: set by attrsearch"):
        check_entry(EXPLANANDA, "explanandum", "timm:resnet10t", {"num_classes": 3}, ())


def test_unknown_zoo_name_mentions_the_families():
    with pytest.raises(UserError, match=r"or python:<module>:<function>, timm:<model name>"):
        EXPLANANDA.get("resnet5", field="explanandum.arch")


def test_normalisation_is_mapped_from_the_data_to_the_model(vit):
    """The ViT expects mean = std = 0.5 (its pretrained config); the data is ImageNet-normalised."""
    raw = torch.rand(2, 3, 32, 32)
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    torch.testing.assert_close(vit.input_norm((raw - mean) / std), (raw - 0.5) / 0.5, atol=1e-5, rtol=0)
    card = vit.card
    assert card["input"]["mean"] == [0.5, 0.5, 0.5] and card["input"]["data_std"] == [0.229, 0.224, 0.225]
    assert card["pretrained_data_config"]["input_size"] == [3, 224, 224]


def test_pyramid_is_timms_features_only(resnet):
    """The explanandum_encoder's stage returns what timm's features_only model gives with the same weights."""
    import timm

    stages, channels = resnet.encoder_stages()
    assert channels == [64, 64, 128, 256, 512] and len(stages) == 1
    features = timm.create_model("resnet10t", features_only=True, pretrained=False).eval()
    features.load_state_dict({k: v for k, v in resnet.model.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours, theirs = stages[0](x), features(resnet.input_norm(x))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)
    # The stage holds the backbone only: freezing it (recipe.freeze_backbone) leaves the head trainable.
    head = {id(p) for p in resnet.model.fc.parameters()}
    assert not head & {id(p) for p in stages[0].parameters()}
    explainer = create_explainer(
        "explanandum_encoder", 3, explanandum=resnet, decoder_width=8, image_width=4, fuse_width=8
    )
    assert explainer(x).shape == (2, 3, 32, 32)


def test_gradcam_layers_from_feature_info(resnet, vit):
    assert find_layer(resnet, None)[0] == "model.layer4"
    assert find_layer(vit, None)[0] == "model.blocks.1.norm1"  # class-token ViT: the last attention's input
    with pytest.raises(
        UserError, match=r"valid layers: model.act1, model.layer1, model.layer2, model.layer3, model.layer4"
    ):
        find_layer(resnet, "layer9")


@pytest.mark.parametrize("reg_tokens", [0, 4])
def test_vit_token_maps_drop_the_prefix_tokens(reg_tokens):
    """With 4 register tokens + the class token, 5 prefix tokens precede the 4x4 patch grid: dropping
    only one would leave 20 tokens, no grid (an error)."""
    model = create_explanandum(VIT[0], 2, image_size=32, reg_tokens=reg_tokens, **VIT[1]).eval()
    assert model.num_prefix_tokens == 1 + reg_tokens
    fn, opts = resolve_method("gradcam", {})
    maps = fn(model.requires_grad_(False), torch.randn(2, 3, 32, 32), None, **opts.model_dump())
    assert maps.shape == (2, 2, 32, 32) and maps.sum() > 0


def test_lrp_refuses_where_zennit_has_no_rule(resnet, vit):
    fn, opts = resolve_method("lrp", {})
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(UserError, match=r"residual addition of timm's BasicBlock \(module 'model.layer1.0'\)"):
        fn(resnet, x, None, **opts.model_dump())
    with pytest.raises(UserError, match="no LRP rule for LayerNorm"):
        fn(vit, x, None, **opts.model_dump())


def test_weights_file_goes_through_timms_loader(tmp_path, resnet):
    """An ImageNet-shaped file (1000 classes): the backbone is loaded, the head stays new."""
    import timm

    source = timm.create_model("resnet10t", num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "in1k.pth")
    model = create_explanandum("timm:resnet10t", 3, image_size=32, weights=str(tmp_path / "in1k.pth"))
    torch.testing.assert_close(model.model.conv1[0].weight, source.conv1[0].weight)
    assert model.model.fc.weight.shape == (3, 512)
    with pytest.raises(UserError, match="explanandum.weights: weights file .*missing.pth not found"):
        create_explanandum("timm:resnet10t", 3, weights=str(tmp_path / "missing.pth"))


def test_trained_checkpoint_loads_exactly_or_names_the_head(tmp_path, resnet):
    path = tmp_path / "mine.pth"
    torch.save(resnet.model.state_dict(), path)
    again = create_explanandum("timm:resnet10t", 3, image_size=32)
    load_classifier_file(again, path, 3, "explanandum.checkpoint", "timm:resnet10t")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(again.eval()(x), resnet(x))
    five = create_explanandum("timm:resnet10t", 5, image_size=32)
    with pytest.raises(UserError, match=r"mine.pth has a 3-class head \(fc.weight\), the dataset has 5 classes"):
        load_classifier_file(five, path, 5, "explanandum.checkpoint", "timm:resnet10t")


MODULE = """
import timm
from torch import nn

def tiny(num_classes, width=8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, num_classes))

def not_a_model(num_classes):
    return "a string"

def a_timm_model(num_classes):
    return timm.create_model("resnet10t", num_classes=num_classes)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_models_i22.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_models_i22"
    sys.modules.pop("my_models_i22", None)


def test_python_explanandum(user_module):
    model = create_explanandum(f"python:{user_module}:tiny", 4, width=6)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4) and model[0].out_channels == 6
    wrapped = create_explanandum(f"python:{user_module}:a_timm_model", 2)
    assert find_layer(wrapped, None)[0] == "model.layer4"  # a timm model it returns gets the timm internals
    check_entry(EXPLANANDA, "explanandum", f"python:{user_module}:tiny", {"width": 4}, ())
    with pytest.raises(
        UserError, match=r"explanandum.arch: python:my_models_i22:not_a_model returned a str, not a torch.nn.Module"
    ):
        check_entry(EXPLANANDA, "explanandum", f"python:{user_module}:not_a_model", {}, ())
    with pytest.raises(UserError, match=r"explanandum.options: python:my_models_i22:tiny rejects \['depth'\]"):
        check_entry(EXPLANANDA, "explanandum", f"python:{user_module}:tiny", {"depth": 3}, ())
    with pytest.raises(UserError, match=r"explanandum.arch: cannot import 'no_such_module_i22' .*ModuleNotFoundError"):
        EXPLANANDA.get("python:no_such_module_i22:build", field="explanandum.arch")
    with pytest.raises(UserError, match=r"explanandum.arch: expected python:package.module:function"):
        EXPLANANDA.get("python:just_a_module", field="explanandum.arch")


def test_imagenet_weights_from_the_local_cache_only(tmp_path, monkeypatch):
    """``weights: imagenet`` reads the file timm would have downloaded (here the torch hub cache), never the network."""
    import timm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a, **k: None)  # no HF cache here
    with pytest.raises(UserError, match=r"pretrained weights of timm:resnet10t not in the local cache .*resnet10t_176"):
        create_explanandum("timm:resnet10t", 3, weights="imagenet")
    source = timm.create_model("resnet10t", num_classes=1000)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(source.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet10t_176_c3-f3215ab1.pth")
    model = create_explanandum("timm:resnet10t", 3, weights="imagenet")
    torch.testing.assert_close(model.model.layer4[0].conv1.weight, source.layer4[0].conv1.weight)
