"""The Explainer zoo: shapes at any size, the CASM decoder's frozen encoder copy, options, weights."""

from __future__ import annotations

import time

import pytest
import torch
import torchvision
from torch import nn

from attrsearch.errors import UserError
from attrsearch.models import EXPLAINERS, create_explainer, create_explanandum

TORCHVISION = ["deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "fcn_resnet50"]
SIZES = [(32, 32), (64, 64), (40, 56), (33, 47)]


def test_registry_lists_every_builder_with_a_description():
    assert set(EXPLAINERS.names()) == set(TORCHVISION + ["unet_small", "explanandum_encoder"])
    assert all(doc for doc in EXPLAINERS.describe().values())


@pytest.fixture(scope="module")
def encoder_explanandum() -> nn.Module:
    torch.manual_seed(0)
    return create_explanandum("small_cnn", 4, width=8).eval().requires_grad_(False)


@pytest.mark.parametrize("size", SIZES)
def test_unet_small_gives_mask_logits_at_input_size(size):
    model = create_explainer("unet_small", 4, width=4)
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 4, *size) and out.is_contiguous() and torch.isfinite(out).all()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("image_branch", [True, False])
def test_explanandum_encoder_gives_mask_logits_at_input_size(encoder_explanandum, size, image_branch):
    model = create_explainer(
        "explanandum_encoder", 4, explanandum=encoder_explanandum, image_branch=image_branch, decoder_width=8
    )
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 4, *size) and out.is_contiguous() and torch.isfinite(out).all()


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_explainers_return_a_tensor_at_input_size(name):
    model = create_explainer(name, 3).eval()  # eval: ASPP's pooled BatchNorm needs batch > 1 in train mode
    with torch.no_grad():
        out = model(torch.randn(1, 3, 40, 56))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 40, 56)
    assert not any("aux" in n for n, _ in model.named_modules())


def test_frozen_encoder_gets_no_gradients_and_stays_in_eval(encoder_explanandum):
    model = create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, decoder_width=8).train()
    assert not any(m.training for m in model.encoder.modules())
    assert all(m.training for n, m in model.named_modules() if not n.startswith("encoder"))
    running_mean = model.encoder[0][0][1].running_mean.clone()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(not p.requires_grad and p.grad is None for p in model.encoder.parameters())
    decoder = [p for n, p in model.named_parameters() if not n.startswith("encoder")]
    assert all(p.grad is not None for p in decoder)
    assert torch.equal(model.encoder[0][0][1].running_mean, running_mean)  # BN statistics untouched
    model.eval().train()
    assert not any(m.training for m in model.encoder.modules())


def test_unfrozen_encoder_trains(encoder_explanandum):
    model = create_explainer(
        "explanandum_encoder", 4, explanandum=encoder_explanandum, freeze_encoder=False, decoder_width=8
    ).train()
    assert all(m.training for m in model.encoder.modules())
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.requires_grad and p.grad is not None for p in model.encoder.parameters())
    assert all(not p.requires_grad for p in encoder_explanandum.parameters())  # the Explanandum is untouched


def test_encoder_is_a_copy_of_the_explanandum_stages(encoder_explanandum):
    model = create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, decoder_width=8)
    stages, _ = encoder_explanandum.encoder_stages()
    original = stages[0][0][0].weight
    copied = model.encoder[0][0][0].weight
    assert torch.equal(copied, original) and copied.data_ptr() != original.data_ptr()
    before = original.clone()
    with torch.no_grad():
        copied.add_(1.0)
    assert torch.equal(original, before)
    assert len(model.encoder) == 4


def test_scales_select_stages_and_drop_unused_ones(encoder_explanandum):
    model = create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, scales=[1, 2], decoder_width=8)
    assert len(model.encoder) == 3 and len(model.project) == 2
    assert model.project[0][0].in_channels == 16 and model.project[1][0].in_channels == 32
    assert model(torch.randn(1, 3, 40, 56)).shape == (1, 4, 40, 56)
    for bad in ([4], [], [1, 1], "all", [True]):
        with pytest.raises(UserError, match=r"explainer.options.scales: expected distinct stage indices in 0..3"):
            create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, scales=bad)


def test_explanandum_encoder_over_a_vit():
    vit = create_explanandum("vit_b_16", 3, image_size=32).eval().requires_grad_(False)
    model = create_explainer("explanandum_encoder", 3, explanandum=vit, decoder_width=8)
    assert model.project[0][0].in_channels == 768
    out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32)
    out.sum().backward()
    assert vit.conv_proj.weight.grad is None and model.encoder[0].conv_proj.weight.grad is None


def test_explainer_input_errors(encoder_explanandum, torch_home):
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"^explainer.arch: explanandum_encoder needs the Explanandum$"):
        create_explainer("explanandum_encoder", 4)
    with pytest.raises(UserError, match="needs an Explanandum with encoder_stages"):
        create_explainer("explanandum_encoder", 4, explanandum=nn.Linear(2, 2))
    with pytest.raises(UserError, match="explainer.arch: unknown explainer 'unet'"):
        create_explainer("unet", 4)
    with pytest.raises(UserError, match="explainer.options: unknown option 'depth' for unet_small"):
        create_explainer("unet_small", 4, depth=3)
    with pytest.raises(
        UserError, match="explainer.options: unknown option 'width' for deeplabv3_resnet50 \\(options: none\\)"
    ):
        create_explainer("deeplabv3_resnet50", 4, width=3)
    with pytest.raises(UserError, match="explainer.options.decoder_width: expected an integer >= 1"):
        create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, decoder_width=0)
    with pytest.raises(UserError, match="explainer.options.image_branch: expected true or false"):
        create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, image_branch="yes")
    with pytest.raises(UserError, match="explainer.weights: unet_small has no ImageNet weights"):
        create_explainer("unet_small", 4, weights="imagenet")
    with pytest.raises(UserError, match="explainer.weights: explanandum_encoder .* has no ImageNet weights"):
        create_explainer("explanandum_encoder", 4, explanandum=encoder_explanandum, weights="imagenet")
    for name, file in [
        ("deeplabv3_resnet50", "resnet50-0676ba61.pth"),
        ("lraspp_mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth"),
    ]:
        with pytest.raises(
            UserError, match=rf"^explainer.weights: ImageNet weights for {name} not found: {torch_home / file} "
        ):
            create_explainer(name, 4, weights="imagenet")
    assert time.perf_counter() - start < 2.0  # every check runs before any model is built


def test_imagenet_backbone_from_the_local_cache(torch_home):
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v3_large()
    torch_home.mkdir(parents=True)
    torch.save(reference.state_dict(), torch_home / "mobilenet_v3_large-8738ca79.pth")
    model = create_explainer("lraspp_mobilenet_v3_large", 3, weights="imagenet")
    backbone = model.net.backbone
    assert torch.equal(backbone["0"][0].weight, reference.features[0][0].weight)
    assert torch.equal(backbone["16"][1].running_var, reference.features[16][1].running_var)
    assert model.net.classifier.low_classifier.out_channels == 3


def test_weights_file_roundtrip_and_other_class_count(tmp_path, encoder_explanandum):
    torch.manual_seed(0)
    trained = create_explainer("explanandum_encoder", 5, explanandum=encoder_explanandum, decoder_width=8)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    torch.save({"model": trained.state_dict()}, tmp_path / "explainer.pt")
    same = create_explainer(
        "explanandum_encoder", 5, explanandum=encoder_explanandum, decoder_width=8, weights=tmp_path / "explainer.pt"
    ).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(same(x), trained.eval()(x), atol=1e-5)
    other = create_explainer(
        "explanandum_encoder",
        3,
        explanandum=encoder_explanandum,
        decoder_width=8,
        weights=str(tmp_path / "explainer.pt"),
    )
    assert torch.equal(other.fuse[0].weight, trained.fuse[0].weight)
    assert other.classifier.weight.shape[0] == 3


def test_segmentation_weights_file_can_be_a_backbone(tmp_path):
    torch.manual_seed(0)
    classifier = torchvision.models.mobilenet_v3_large()
    torch.save(classifier.state_dict(), tmp_path / "mobilenet.pt")
    model = create_explainer("lraspp_mobilenet_v3_large", 3, weights=tmp_path / "mobilenet.pt")
    assert torch.equal(model.net.backbone["5"].block[0][0].weight, classifier.features[5].block[0][0].weight)
    explainer_file = tmp_path / "explainer.pt"
    torch.save(model.state_dict(), explainer_file)
    again = create_explainer("lraspp_mobilenet_v3_large", 3, weights=explainer_file)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
