"""Every method on every Explanandum of the zoo: shapes, finiteness, ranges (tiny settings)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrsearch.attribution.methods import resolve_method
from attrsearch.errors import UserError
from attrsearch.models import create_explanandum

TINY = {
    "gradcam": {},
    "gradcam_pp": {},
    "rise": {"masks": 4, "batch": 8},
    "extremal": {"iterations": 1, "areas": [0.1]},
    "igos": {"iterations": 1, "ig_steps": 1, "mask_size": 4},
    "lrp": {},
    "center": {},
    "sobel": {},
}
IN_UNIT_RANGE = {"extremal", "igos", "center", "sobel"}
SMALL = [("small_cnn", {"width": 8}), ("small_resnet", {"width": 8, "blocks_per_stage": 1})]
LARGE = ["vgg16", "resnet50", "vit_b_16"]

_cache: dict[tuple[str, int], nn.Module] = {}


def zoo_model(arch: str, size: int, **options) -> nn.Module:
    key = (arch, size)
    if key not in _cache:
        torch.manual_seed(0)
        model = create_explanandum(arch, 2, image_size=size, **options).eval()
        for name, p in model.named_parameters():
            p.requires_grad_(False)
            if name.startswith("heads."):  # torchvision zero-initialises the ViT head
                nn.init.normal_(p, 0.0, 0.1)
        _cache[key] = model
    return _cache[key]


def check(model: nn.Module, name: str, size: int) -> None:
    fn, opts = resolve_method(name, TINY[name])
    images = torch.randn(1, 3, size, size)
    maps = fn(model, images, None, **opts.model_dump())
    assert maps.shape == (1, 2, size, size) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all()
    if name in IN_UNIT_RANGE:
        assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
    if name == "rise":  # [0, 1 / p] for few masks
        assert maps.min() >= 0 and maps.max() <= 2 + 1e-6
    if name in ("gradcam", "gradcam_pp"):
        assert maps.min() >= 0 and maps.max() > 0


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("arch, options", SMALL, ids=[a for a, _ in SMALL])
def test_small_zoo(arch, options, size, name):
    check(zoo_model(arch, size, **options), name, size)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("arch", LARGE)
def test_large_zoo(arch, name):
    model = zoo_model(arch, 32)
    if arch == "vit_b_16" and name == "lrp":
        with pytest.raises(UserError, match="no LRP rule"):
            check(model, name, 32)
        return
    check(model, name, 32)
