"""Layer choice for the CAM methods: default layers of the zoo Explananda, dotted-name lookup, token grids."""

from __future__ import annotations

import math

from torch import Tensor, nn
from torchvision.models.resnet import ResNet
from torchvision.models.vgg import VGG
from torchvision.models.vision_transformer import VisionTransformer

from attrsearch.errors import UserError

_MAX_LISTED = 24


def default_layer(model: nn.Module) -> str:
    """The last convolutional block of a zoo Explanandum, as a dotted module name.

    - small_cnn: the last conv-BN-ReLU of the last stage, before its max-pool (as ``features.29``
      of VGG-16);
    - small_resnet: the last BasicBlock stage (``stages.3``); torchvision ResNets: ``layer4``;
    - VGG-16: the ReLU after the last convolution (``features.29``), before the last max-pool;
    - ViT-B/16: ``encoder.layers.encoder_layer_11.ln_1``, the normalised tokens entering the
      last block. Its *output* patch tokens never reach the class token that the head reads, so
      their gradient is zero; the input of the last self-attention is the last token map the
      logits depend on (the choice of pytorch-grad-cam's ViT example).
    - a timm Explanandum (``timm:`` names): its ``default_cam_layer()``, the deepest ``feature_info``
      level (a class-token ViT: the last block's ``norm1``, for the reason above);
    - anything else: the last ``nn.Conv2d``.
    """
    from attrsearch.models.explananda import SmallCNN, SmallResNet

    own = getattr(model, "default_cam_layer", None)
    if callable(own) and own():
        return own()

    if isinstance(model, SmallCNN):
        last = model.stages[-1]
        idx = max(i for i, m in enumerate(last) if not isinstance(m, nn.MaxPool2d))
        return f"stages.{len(model.stages) - 1}.{idx}"
    if isinstance(model, SmallResNet):
        return f"stages.{len(model.stages) - 1}"
    if isinstance(model, ResNet):
        return "layer4"
    if isinstance(model, VGG):
        idx = max(i for i, m in enumerate(model.features) if isinstance(m, nn.ReLU))
        return f"features.{idx}"
    if isinstance(model, VisionTransformer):
        return f"encoder.layers.encoder_layer_{len(model.encoder.layers) - 1}.ln_1"
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise UserError("layer: the model has no Conv2d layer; name one with --option layer=NAME")
    return convs[-1]


def layer_candidates(model: nn.Module) -> list[str]:
    """Module names that make sense as CAM layers: the model's own list first (a timm model's
    ``feature_info`` levels), then convolutions, blocks that contain them, ViT blocks."""
    own = getattr(model, "cam_layers", None)
    names = list(own()) if callable(own) else []
    for name, m in model.named_modules():
        if not name:
            continue
        has_conv = isinstance(m, nn.Conv2d) or any(isinstance(c, nn.Conv2d) for c in m.modules())
        tokens = isinstance(m, nn.LayerNorm) or type(m).__name__ == "EncoderBlock"
        if (has_conv or tokens) and name not in names:
            names.append(name)
    return names


def find_layer(model: nn.Module, name: str | None, field: str = "layer") -> tuple[str, nn.Module]:
    """(name, module) for dotted ``name`` (None: ``default_layer``); a one-line UserError listing valid names."""
    name = default_layer(model) if name is None else name
    modules = dict(model.named_modules())
    if name not in modules or not name:
        valid = layer_candidates(model)
        shown = ", ".join(valid[:_MAX_LISTED]) + (f", ... ({len(valid)} in all)" if len(valid) > _MAX_LISTED else "")
        raise UserError(f"--option {field}: the model has no layer {name!r}; valid layers: {shown}")
    return name, modules[name]


def prefix_tokens_of(model: nn.Module | None) -> int:
    """Tokens before the patch tokens of a ViT's token layers: timm's ``num_prefix_tokens`` (class,
    distillation and register tokens), else 1 (torchvision's class token)."""
    return int(getattr(model, "num_prefix_tokens", 1)) if model is not None else 1


def to_feature_map(model: nn.Module | None, act: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """``as_feature_map`` for ``model``'s layers: its own ``feature_map`` first (a timm model's NHWC
    stages), then the prefix tokens it declares."""
    own = getattr(model, "feature_map", None)
    mapped = own(act, image_hw) if callable(own) else None
    return mapped if mapped is not None else as_feature_map(act, image_hw, prefix_tokens_of(model))


def as_feature_map(act: Tensor, image_hw: tuple[int, int], prefix_tokens: int = 1) -> Tensor:
    """A layer output as (B, K, h, w): 4-D maps as they are; ViT tokens (B, P + h*w, D) without the
    ``prefix_tokens`` P (the class token; timm: ``num_prefix_tokens``, class + register tokens).

    The token grid keeps the image's aspect ratio: h * w = number of patch tokens, h / w = H / W.
    """
    if act.dim() == 4:
        return act
    if act.dim() != 3:
        raise UserError(f"layer: expected a (B, K, h, w) map or (B, tokens, D) tokens, got shape {tuple(act.shape)}")
    tokens = act[:, prefix_tokens:]
    n = tokens.shape[1]
    hh, ww = image_hw
    gh = max(1, round(math.sqrt(n * hh / ww)))
    gw = n // gh
    if gh * gw != n:
        raise UserError(f"layer: {n} patch tokens do not form a grid for a {hh}x{ww} image")
    return tokens.transpose(1, 2).reshape(act.shape[0], act.shape[2], gh, gw)
