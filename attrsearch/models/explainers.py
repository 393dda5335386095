"""The Explainer zoo: images (B, 3, H, W) -> mask logits (B, C, H, W) at the input resolution.

One map per class, no background channel (Stalder et al., 2022); masks are ``sigmoid(logits)``.
Every Explainer takes any input size >= 32 (odd and non-square included).

- torchvision segmentation models (Stalder et al., 2022: DeepLabV3-ResNet50), random head;
  ``weights="imagenet"`` loads the ImageNet backbone from the local torch cache (their public code),
  default random.
- ``unet_small``: a small U-Net for CPU work.
- ``explanandum_encoder``: the masker of CASM (Zolna, Geras & Cho, 2020, Sec. 3), a decoder over a
  frozen copy of the Explanandum's own encoder.

Each entry only constructs its module; ``attrsearch.models.registry.build_model`` reads, checks and
loads the weights the same way for all of them.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models import segmentation as tv_seg
from torchvision.models._utils import IntermediateLayerGetter

from attrsearch.errors import UserError
from attrsearch.models.layers import (
    bool_option,
    check_options,
    conv_bn_relu,
    double_conv,
    init_from_scratch,
    int_option,
    resize,
    to_channels_last,
)
from attrsearch.models.registry import EXPLAINERS, build_model, register

FIELD = "explainer"
RESERVED = ("num_classes", "explanandum", "weights", "freeze_encoder")


def create_explainer(
    name: str,
    num_classes: int,
    explanandum: nn.Module | None = None,
    weights: str | Path | None = None,
    freeze_encoder: bool = True,
    **options: Any,
) -> nn.Module:
    """Build Explainer ``name`` with C output maps; ``options`` are architecture arguments.

    explanandum: the frozen classifier (needed by ``explanandum_encoder``, ignored by the others).
    weights: None (random init), "imagenet" (backbone of torchvision models, local cache only) or
    a weights file (a whole Explainer, or a backbone: whichever it matches best).
    freeze_encoder: only for encoders copied from the Explanandum.
    """
    construct = EXPLAINERS.get(name, field=f"{FIELD}.arch").construct
    int_option("num_classes", num_classes, 1)
    bool_option(f"{FIELD}.freeze_encoder", freeze_encoder)
    check_options(construct, options, RESERVED, f"{FIELD}.options", name)
    return build_model(
        EXPLAINERS,
        FIELD,
        name,
        weights,
        lambda: construct(num_classes, explanandum=explanandum, freeze_encoder=freeze_encoder, **options),
    )


# --- torchvision segmentation models -------------------------------------------------------------


class SegmentationExplainer(nn.Module):
    """A torchvision segmentation model returning its "out" map as a tensor (B, C, H, W).

    torchvision already upsamples "out" bilinearly to the input size.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)["out"]


def _mobilenet_backbone_keys(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """MobileNetV3 classifier checkpoint -> keys of torchvision's segmentation backbone (its features)."""
    return {k.removeprefix("features."): v for k, v in state_dict.items() if k.startswith("features.")}


def _segmentation_targets(model: nn.Module, imagenet: bool) -> dict[str, nn.Module]:
    """ImageNet weights go into the backbone only (the head stays random); a weights file into the
    whole Explainer, the torchvision model or the backbone, whichever it matches best."""
    backbone = model.net.backbone
    return (
        {"backbone": backbone}
        if imagenet
        else {"explainer": model, "torchvision model": model.net, "backbone": backbone}
    )


def _mobilenet_to_backbone(module: nn.Module, sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """A MobileNetV3 classifier checkpoint matched against the segmentation backbone gets its keys."""
    is_backbone = isinstance(module, IntermediateLayerGetter)
    return _mobilenet_backbone_keys(sd) if is_backbone and any(k.startswith("features.") for k in sd) else sd


def _segmentation_explainer(build: Callable[..., nn.Module], num_classes: int) -> nn.Module:
    """A random-init torchvision segmentation model with C maps and no aux head."""
    return SegmentationExplainer(build(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False))


_RESNET_BACKBONE = {"imagenet": ResNet50_Weights.IMAGENET1K_V1, "targets": _segmentation_targets}
_MOBILENET_BACKBONE = {
    "imagenet": MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    "targets": _segmentation_targets,
    "transform": _mobilenet_to_backbone,
}


@register(EXPLAINERS, "deeplabv3_resnet50", **_RESNET_BACKBONE)
def deeplabv3_resnet50(
    num_classes: int, explanandum: nn.Module | None = None, freeze_encoder: bool = True
) -> nn.Module:
    """torchvision DeepLabV3-ResNet50, C maps, no aux head (the Explainer of Stalder et al., 2022); heavy, GPU."""
    return _segmentation_explainer(tv_seg.deeplabv3_resnet50, num_classes)


@register(EXPLAINERS, "deeplabv3_mobilenet_v3_large", **_MOBILENET_BACKBONE)
def deeplabv3_mobilenet_v3_large(
    num_classes: int, explanandum: nn.Module | None = None, freeze_encoder: bool = True
) -> nn.Module:
    """torchvision DeepLabV3-MobileNetV3-Large, C maps, no aux head."""
    return _segmentation_explainer(tv_seg.deeplabv3_mobilenet_v3_large, num_classes)


@register(EXPLAINERS, "lraspp_mobilenet_v3_large", **_MOBILENET_BACKBONE)
def lraspp_mobilenet_v3_large(
    num_classes: int, explanandum: nn.Module | None = None, freeze_encoder: bool = True
) -> nn.Module:
    """torchvision LR-ASPP-MobileNetV3-Large, C maps (light)."""
    return _segmentation_explainer(tv_seg.lraspp_mobilenet_v3_large, num_classes)


@register(EXPLAINERS, "fcn_resnet50", **_RESNET_BACKBONE)
def fcn_resnet50(num_classes: int, explanandum: nn.Module | None = None, freeze_encoder: bool = True) -> nn.Module:
    """torchvision FCN-ResNet50, C maps, no aux head."""
    return _segmentation_explainer(tv_seg.fcn_resnet50, num_classes)


# --- small U-Net ---------------------------------------------------------------------------------


class SmallUNet(nn.Module):
    """U-Net (Ronneberger 2015) sized for CPU: ``levels`` levels of two conv3x3+BN+ReLU, widths
    width * 2**i, max-pool down, bilinear upsampling up (no transposed convs: no stripe artefacts).

    images (B, 3, H, W), any H, W >= 2**(levels-1) -> logits (B, C, H, W). Each up step is a 1x1
    conv (channel reduction) then a bilinear upsample to the skip's exact size: the two commute
    (both are linear and per-pixel/convex), so reducing first is the same map at 1/4 of the cost.
    """

    def __init__(self, num_classes: int, width: int = 16, levels: int = 4):
        super().__init__()
        widths = [width * 2**i for i in range(levels)]
        self.down = nn.ModuleList(
            [double_conv(3, widths[0])] + [double_conv(a, b) for a, b in zip(widths[:-1], widths[1:])]
        )
        self.reduce = nn.ModuleList([nn.Conv2d(b, a, 1) for a, b in zip(widths[:-1], widths[1:])])
        self.up = nn.ModuleList([double_conv(2 * a, a) for a in widths[:-1]])
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self.pool = nn.MaxPool2d(2)
        init_from_scratch(self)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            skip = skips.pop()
            x = resize(self.reduce[i](x), skip.shape[-2:])
            x = self.up[i](torch.cat([x, skip], dim=1))
        return self.classifier(x).contiguous()


@register(EXPLAINERS, "unet_small")
def unet_small(
    num_classes: int,
    explanandum: nn.Module | None = None,
    freeze_encoder: bool = True,
    *,
    width: int = 16,
    levels: int = 4,
) -> nn.Module:
    """Small U-Net for CPU (4 levels, widths 16..128, BN+ReLU, bilinear upsampling)."""
    return to_channels_last(
        SmallUNet(
            num_classes, int_option(f"{FIELD}.options.width", width), int_option(f"{FIELD}.options.levels", levels, 2)
        )
    )


# --- CASM-style decoder over the Explanandum's encoder -------------------------------------------


class EncoderExplainer(nn.Module):
    """CASM's masker (Zolna, Geras & Cho, 2020): a decoder over a copy of the classifier's encoder stages.

    Per used stage i: 1x1 conv + BN + ReLU to ``decoder_width`` -> bilinear upsample to the finest
    used stage -> concatenate -> 3x3 conv + BN + ReLU. Without the image branch: 1x1 conv to C and
    bilinear upsample to the input size. With it: 1x1 conv to ``fuse_width`` (before upsampling;
    the two commute), upsample to the input size, concatenate a full-resolution branch on the raw
    image (two 3x3 conv + BN + ReLU of ``image_width``), 3x3 conv + BN + ReLU, 1x1 conv to C, so
    masks can follow object boundaries at pixel level.

    images (B, 3, H, W) -> mask logits (B, C, H, W). The encoder is a deep copy of the
    Explanandum's stages (training never touches the Explanandum); when frozen it has
    ``requires_grad=False``, stays in eval mode under ``.train()`` and runs under ``no_grad``.
    A stage may return a list of maps, a feature pyramid (a timm Explanandum's ``forward_intermediates``
    over ``feature_info``): it is the last stage, and ``channels`` / ``scales`` index its maps.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        channels: Sequence[int],
        num_classes: int,
        freeze_encoder: bool = True,
        scales: Sequence[int] | None = None,
        decoder_width: int = 64,
        image_branch: bool = True,
        image_width: int = 16,
        fuse_width: int = 16,
    ):
        super().__init__()
        self.scales = sorted(set(range(len(channels)) if scales is None else scales))
        last = self.scales[-1]
        # Copy the stages together, so modules shared between stages stay shared in the copy;
        # stages after the last used one are not needed.
        self.encoder = copy.deepcopy(nn.ModuleList(list(stages)[: last + 1]))
        self.freeze_encoder = freeze_encoder
        for p in self.encoder.parameters():
            p.requires_grad_(not freeze_encoder)
        d = decoder_width
        self.project = nn.ModuleList([conv_bn_relu(channels[i], d, kernel_size=1) for i in self.scales])
        self.fuse = conv_bn_relu(d * len(self.scales), d, kernel_size=3)
        if image_branch:
            self.image_branch = nn.Sequential(conv_bn_relu(3, image_width), conv_bn_relu(image_width, image_width))
            self.reduce = nn.Conv2d(d, fuse_width, 1)
            self.refine = conv_bn_relu(fuse_width + image_width, fuse_width, kernel_size=3)
            self.classifier = nn.Conv2d(fuse_width, num_classes, 1)
        else:
            self.image_branch = None
            self.classifier = nn.Conv2d(d, num_classes, 1)
        decoder = [self.project, self.fuse, self.classifier]
        if image_branch:
            decoder += [self.image_branch, self.reduce, self.refine]
        for module in decoder:
            init_from_scratch(module)
            to_channels_last(module)
        self.train()

    def train(self, mode: bool = True) -> EncoderExplainer:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def encode(self, x: Tensor) -> list[Tensor]:
        """Feature maps of the copied stages up to the last used one, finest first."""
        feats = []
        context = torch.no_grad() if self.freeze_encoder else contextlib.nullcontext()
        with context:
            for stage in self.encoder:
                x = stage(x)
                if isinstance(x, (list, tuple)):  # a pyramid stage (a timm model's feature maps) ends the encoder
                    feats.extend(x)
                    break
                feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        feats = self.encode(x)
        size = feats[self.scales[0]].shape[-2:]
        y = torch.cat([resize(proj(feats[i]), size) for proj, i in zip(self.project, self.scales)], dim=1)
        y = self.fuse(y)
        if self.image_branch is None:
            return resize(self.classifier(y), x.shape[-2:]).contiguous()
        y = resize(self.reduce(y), x.shape[-2:])
        y = self.refine(torch.cat([y, self.image_branch(x)], dim=1))
        return self.classifier(y).contiguous()


@register(EXPLAINERS, "explanandum_encoder", label="explanandum_encoder (its encoder is copied from the Explanandum)")
def explanandum_encoder(
    num_classes: int,
    explanandum: nn.Module | None = None,
    freeze_encoder: bool = True,
    *,
    scales: Sequence[int] | None = None,
    decoder_width: int = 64,
    image_branch: bool = True,
    image_width: int = 16,
    fuse_width: int = 16,
) -> nn.Module:
    """CASM-style decoder over a frozen copy of the Explanandum's encoder, plus a full-res image branch."""
    if explanandum is None:
        raise UserError(f"{FIELD}.arch: explanandum_encoder needs the Explanandum")
    if not callable(getattr(explanandum, "encoder_stages", None)):
        raise UserError(
            f"{FIELD}.arch: explanandum_encoder needs an Explanandum with encoder_stages(); {type(explanandum).__name__} has none"
        )
    stages, channels = explanandum.encoder_stages()
    if scales is not None:
        ok = (
            isinstance(scales, (list, tuple))
            and scales
            and all(isinstance(s, int) and not isinstance(s, bool) for s in scales)
        )
        bad = [s for s in scales if not 0 <= s < len(channels)] if ok else []
        if not ok or bad or len(set(scales)) != len(scales):
            raise UserError(
                f"{FIELD}.options.scales: expected distinct stage indices in 0..{len(channels) - 1} of {type(explanandum).__name__} (got {scales!r})"
            )
    return EncoderExplainer(
        stages,
        channels,
        num_classes,
        freeze_encoder=freeze_encoder,
        scales=scales,
        decoder_width=int_option(f"{FIELD}.options.decoder_width", decoder_width),
        image_branch=bool_option(f"{FIELD}.options.image_branch", image_branch),
        image_width=int_option(f"{FIELD}.options.image_width", image_width),
        fuse_width=int_option(f"{FIELD}.options.fuse_width", fuse_width),
    )
