"""The Explanandum zoo: shapes, encoder stages, options, weights."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from attrsearch.errors import UserError
from attrsearch.models import EXPLANANDA, create_explanandum

SMALL = ["small_cnn", "small_resnet"]
HEAVY = ["vgg16", "resnet50", "vit_b_16"]


def test_registry_lists_every_builder_with_a_description():
    assert set(EXPLANANDA.names()) == set(SMALL + HEAVY)
    assert all(doc for doc in EXPLANANDA.describe().values())


@pytest.fixture(scope="module")
def heavy() -> dict[str, nn.Module]:
    """The torchvision models, built once at 32 px (ViT's image_size), eval mode."""
    torch.manual_seed(0)
    return {name: create_explanandum(name, 3, image_size=32).eval() for name in HEAVY}


def _chain(stages, x):
    feats = []
    for stage in stages:
        x = stage(x)
        feats.append(x)
    return feats


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("size", [(32, 32), (64, 64), (40, 56)])
def test_small_models_give_logits(name, size):
    model = create_explanandum(name, 5)
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", SMALL)
def test_small_encoder_stages_reproduce_the_forward(name):
    model = create_explanandum(name, 4).eval()
    x = torch.randn(2, 3, 64, 64)
    stages, channels = model.encoder_stages()
    feats = _chain(stages, x)
    assert [f.shape[1] for f in feats] == channels == [32, 64, 128, 256]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]  # strides 2, 4, 8, 16
    own = {id(m) for m in model.modules()}
    assert all(id(s) in own for s in stages)
    assert torch.allclose(model.head(feats[-1]), model(x), atol=1e-5)


def test_small_cnn_options_change_the_architecture():
    model = create_explanandum("small_cnn", 2, width=8, blocks_per_stage=2, dropout=0.0)
    _, channels = model.encoder_stages()
    assert channels == [8, 16, 32, 64]
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 8
    assert model.head[2].p == 0.0


def test_heavy_models_give_logits(heavy):
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for name, model in heavy.items():
            assert model(x).shape == (1, 3), name


def test_heavy_encoder_stages_reproduce_the_forward(heavy):
    x = torch.randn(1, 3, 64, 64)  # 64 px: the last of 5 stride-2 stages is still 2x2
    with torch.no_grad():
        vgg = heavy["vgg16"]
        stages, channels = vgg.encoder_stages()
        feats = _chain(stages, x)
        assert [f.shape[1] for f in feats] == channels == [64, 128, 256, 512, 512]
        assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
        assert torch.allclose(vgg.classifier(torch.flatten(vgg.avgpool(feats[-1]), 1)), vgg(x), atol=1e-5)

        resnet = heavy["resnet50"]
        stages, channels = resnet.encoder_stages()
        feats = _chain(stages, x)
        assert [f.shape[1] for f in feats] == channels == [64, 256, 512, 1024, 2048]
        assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
        assert torch.allclose(resnet.fc(torch.flatten(resnet.avgpool(feats[-1]), 1)), resnet(x), atol=1e-5)


def test_vit_stage_is_the_last_block_patch_tokens(heavy):
    vit = heavy["vit_b_16"]
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    hook = vit.encoder.ln.register_forward_hook(lambda m, i, o: seen.setdefault("tokens", o))
    with torch.no_grad():
        logits = vit(x)
        torchvision_logits = VisionTransformer.forward(vit, x)
        stages, channels = vit.encoder_stages()
        (feat,) = _chain(stages, x)
    hook.remove()
    assert torch.allclose(logits, torchvision_logits, atol=1e-5)
    assert channels == [768] and feat.shape == (2, 768, 2, 2)
    tokens = seen["tokens"][:, 1:]  # (B, 4, 768), row-major over the 2x2 patch grid
    assert torch.allclose(feat.flatten(2).transpose(1, 2), tokens, atol=1e-5)
    with torch.no_grad():  # other sizes work by resampling the position embedding
        assert stages[0](torch.randn(1, 3, 48, 64)).shape == (1, 768, 3, 4)


def test_vit_needs_a_multiple_of_16():
    with pytest.raises(UserError, match=r"data.image_size: vit_b_16 needs a multiple of 16 \(got 40\)"):
        create_explanandum("vit_b_16", 3, image_size=40)


def test_unknown_names_and_options_are_user_errors():
    start = time.perf_counter()
    with pytest.raises(UserError, match="explanandum.arch: unknown explanandum 'resnet5'"):
        create_explanandum("resnet5", 3)
    with pytest.raises(UserError, match="explanandum.options: unknown option 'depth' for small_cnn"):
        create_explanandum("small_cnn", 3, depth=3)
    with pytest.raises(UserError, match="explanandum.options: unknown option 'width' for resnet50"):
        create_explanandum("resnet50", 3, width=3)
    with pytest.raises(UserError, match="explanandum.options.width: expected an integer"):
        create_explanandum("small_cnn", 3, width="wide")
    with pytest.raises(UserError, match="^num_classes: expected an integer >= 1"):
        create_explanandum("small_cnn", 0)
    assert time.perf_counter() - start < 5.0


def test_missing_imagenet_weights_fail_fast(torch_home):
    start = time.perf_counter()
    with pytest.raises(
        UserError, match=rf"explanandum.weights: ImageNet weights for vgg16 not found: {torch_home}/vgg16-397923af.pth"
    ):
        create_explanandum("vgg16", 3, weights="imagenet")
    with pytest.raises(UserError, match="explanandum.weights: small_cnn has no ImageNet weights"):
        create_explanandum("small_cnn", 3, weights="imagenet")
    with pytest.raises(UserError, match=r"explanandum.weights: weights file .*missing.pt not found"):
        create_explanandum("small_cnn", 3, weights=str(torch_home / "missing.pt"))
    assert time.perf_counter() - start < 10.0  # building VGG-16 is most of it


@pytest.mark.parametrize("name", SMALL)
def test_weights_file_loads_the_backbone_and_keeps_a_new_head(tmp_path, name):
    torch.manual_seed(0)
    trained = create_explanandum(name, 5)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    torch.save({"state_dict": trained.state_dict(), "epoch": 1}, tmp_path / "trained.pt")

    same = create_explanandum(name, 5, weights=tmp_path / "trained.pt").eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(same(x), trained.eval()(x), atol=1e-5)

    other = create_explanandum(name, 3, weights=str(tmp_path / "trained.pt"))
    stages, _ = other.encoder_stages()
    trained_stages, _ = trained.encoder_stages()
    for a, b in zip(stages, trained_stages):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert other.head[-1].weight.shape == (3, 256)


def test_resnet50_imagenet_from_the_local_cache(torch_home):
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    torch_home.mkdir(parents=True)
    torch.save(reference.state_dict(), torch_home / "resnet50-0676ba61.pth")
    model = create_explanandum("resnet50", 3, weights="imagenet")
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.layer4[2].bn3.running_var, reference.layer4[2].bn3.running_var)
    assert model.fc.weight.shape == (3, 2048)


def test_vit_imagenet_position_embedding_is_interpolated(torch_home):
    torch.manual_seed(0)
    # A partial ImageNet-shaped checkpoint (the real one is 330 MB): 224 px grid, 1000-way head.
    fake = {
        "conv_proj.weight": torch.randn(768, 3, 16, 16),
        "encoder.pos_embedding": torch.randn(1, 1 + 14 * 14, 768),
        "heads.head.weight": torch.randn(1000, 768),
    }
    torch_home.mkdir(parents=True)
    torch.save(fake, torch_home / "vit_b_16-c867db91.pth")
    model = create_explanandum("vit_b_16", 3, weights="imagenet", image_size=32)
    assert torch.equal(model.conv_proj.weight, fake["conv_proj.weight"])
    pos = model.encoder.pos_embedding
    assert pos.shape == (1, 1 + 2 * 2, 768)
    assert torch.equal(pos[:, 0], fake["encoder.pos_embedding"][:, 0])  # class token position kept
    assert model.heads.head.weight.shape == (3, 768)
