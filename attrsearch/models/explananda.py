"""The Explanandum zoo: multi-label classifiers, images (B, 3, H, W) normalised -> logits (B, C).

Every model exposes ``encoder_stages() -> (modules, channels)``: its own submodules that, applied
in sequence to the input, give feature maps at increasing strides, for Explainers that decode the
classifier's features (CASM: Zolna, Geras & Cho, 2020). The classifiers of Stalder et al. (2022)
are VGG-16 and ResNet-50 from torchvision with a new multi-label head; the small models are for
CPU work on the built-in 64 px data.

Each entry only constructs its module; ``attrsearch.models.registry.build_model`` reads, checks and
loads the weights the same way for all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet50_Weights, VGG16_Weights, ViT_B_16_Weights
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vgg import VGG, cfgs, make_layers
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings

from attrsearch.errors import UserError
from attrsearch.models.layers import (
    ClassifierHead,
    check_options,
    conv_bn_relu,
    fraction_option,
    init_from_scratch,
    int_option,
    to_channels_last,
)
from attrsearch.models.registry import EXPLANANDA, build_model, register

FIELD = "explanandum"
RESERVED = ("num_classes", "weights", "image_size")


def create_explanandum(
    name: str, num_classes: int, weights: str | Path | None = None, image_size: int = 224, **options: Any
) -> nn.Module:
    """Build Explanandum ``name`` with a C-way multi-label head; ``options`` are architecture arguments.

    weights: None (random init), "imagenet" (torchvision's checkpoint from the local torch hub
    cache only) or a weights file (the backbone is loaded; a head of another shape is kept new).
    ``name`` may also be ``timm:<model name>`` or ``python:<module>:<function>`` (``timm_models``,
    ``python_models``).
    """
    spec = EXPLANANDA.get(name, field=f"{FIELD}.arch")
    int_option("num_classes", num_classes, 1)
    int_option("data.image_size", image_size, 1)
    if spec.check_options is None:
        check_options(spec.construct, options, RESERVED, f"{FIELD}.options", name)
    if spec.loads_weights:  # timm's own pretrained loader (checkpoint filters, head adaptation)
        return spec.construct(num_classes, image_size=image_size, weights=weights, **options)
    return build_model(
        EXPLANANDA, FIELD, name, weights, lambda: spec.construct(num_classes, image_size=image_size, **options)
    )


def set_data_normalization(model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """Tell an Explanandum with its own expected normalisation (a timm model's pretrained config) the
    statistics the data is normalised with; models without one take the data as it is."""
    setter = getattr(model, "set_data_normalization", None)
    if callable(setter):
        setter(tuple(mean), tuple(std))


def model_card(model: nn.Module) -> dict[str, Any]:
    """What an Explanandum records about itself beyond its config (a timm model: its pretrained data
    config and normalisation); empty for the zoo's own models."""
    card = getattr(model, "card", None)
    return dict(card) if isinstance(card, dict) else {}


# --- small CNN -----------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """4 stages of (conv3x3 + BN + ReLU) x blocks then 2x2 max-pool; GAP + dropout + Linear head.

    images (B, 3, H, W), H, W >= 32 (odd sizes fine: pooling floors) -> logits (B, C).
    Stage strides 2, 4, 8, 16; widths width * (1, 2, 4, 8).
    """

    def __init__(self, num_classes: int, width: int = 32, blocks_per_stage: int = 1, dropout: float = 0.1):
        super().__init__()
        self.channels = [width * m for m in (1, 2, 4, 8)]
        stages, in_ch = [], 3
        for out_ch in self.channels:
            layers: list[nn.Module] = []
            for _ in range(blocks_per_stage):
                layers.append(conv_bn_relu(in_ch, out_ch))
                in_ch = out_ch
            layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(in_ch, num_classes, dropout)
        init_from_scratch(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(x))

    def encoder_stages(self) -> tuple[list[nn.Module], list[int]]:
        return list(self.stages), list(self.channels)


@register(EXPLANANDA, "small_cnn")
def small_cnn(
    num_classes: int,
    image_size: int = 224,
    *,
    width: int = 32,
    blocks_per_stage: int = 1,
    dropout: float = 0.1,
) -> nn.Module:
    """CPU-friendly 4-stage CNN (conv-BN-ReLU + max-pool, widths 32..256), GAP head; strides 2..16."""
    model = SmallCNN(
        num_classes,
        width=int_option(f"{FIELD}.options.width", width),
        blocks_per_stage=int_option(f"{FIELD}.options.blocks_per_stage", blocks_per_stage),
        dropout=fraction_option(f"{FIELD}.options.dropout", dropout),
    )
    return to_channels_last(model)


# --- small ResNet --------------------------------------------------------------------------------


def _res_stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> list[nn.Module]:
    """torchvision BasicBlocks; the first one changes stride/width through a 1x1 conv + BN shortcut."""
    down = None
    if stride != 1 or in_ch != out_ch:
        down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
    return [BasicBlock(in_ch, out_ch, stride, down)] + [BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)]


class SmallResNet(nn.Module):
    """Stride-2 3x3 stem (no 7x7 conv / max-pool) + 4 BasicBlock stages, widths width * (1, 2, 4, 8).

    images (B, 3, H, W), H, W >= 32 -> logits (B, C). Stage strides 2, 4, 8, 16.
    """

    def __init__(self, num_classes: int, width: int = 32, blocks_per_stage: int = 2, dropout: float = 0.1):
        super().__init__()
        self.channels = [width * m for m in (1, 2, 4, 8)]
        stem = conv_bn_relu(3, width, 3, stride=2)
        stages = [nn.Sequential(stem, *_res_stage(width, width, blocks_per_stage, 1))]
        for in_ch, out_ch in zip(self.channels[:-1], self.channels[1:]):
            stages.append(nn.Sequential(*_res_stage(in_ch, out_ch, blocks_per_stage, 2)))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(self.channels[-1], num_classes, dropout)
        init_from_scratch(self)
        # Zero the last BN of each residual branch: blocks start as identities (torchvision's
        # zero_init_residual), which helps training from scratch.
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(x))

    def encoder_stages(self) -> tuple[list[nn.Module], list[int]]:
        return list(self.stages), list(self.channels)


@register(EXPLANANDA, "small_resnet")
def small_resnet(
    num_classes: int,
    image_size: int = 224,
    *,
    width: int = 32,
    blocks_per_stage: int = 2,
    dropout: float = 0.1,
) -> nn.Module:
    """Small ResNet (BasicBlocks, 4 stages, widths 32..256, stride-2 3x3 stem), GAP head; strides 2..16."""
    model = SmallResNet(
        num_classes,
        width=int_option(f"{FIELD}.options.width", width),
        blocks_per_stage=int_option(f"{FIELD}.options.blocks_per_stage", blocks_per_stage),
        dropout=fraction_option(f"{FIELD}.options.dropout", dropout),
    )
    return to_channels_last(model)


# --- torchvision VGG-16 / ResNet-50 (the paper's classifiers) -------------------------------------


class VGG16Classifier(VGG):
    """torchvision VGG-16 whose last classifier Linear is Linear(4096, C) (the public code of Stalder et al., 2022).

    Parameter names are torchvision's, so ImageNet checkpoints load as they are. The adaptive
    average pool makes any input >= 32 px work. Stage strides 2..32, channels 64..512.
    """

    def __init__(self, num_classes: int, dropout: float = 0.5):
        super().__init__(make_layers(cfgs["D"]), num_classes=num_classes, init_weights=True, dropout=dropout)

    def encoder_stages(self) -> tuple[list[nn.Module], list[int]]:
        stages, start, channels, last = [], 0, [], 3
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.Conv2d):
                last = layer.out_channels
            if isinstance(layer, nn.MaxPool2d):
                stages.append(self.features[start : i + 1])  # slicing keeps the same module objects
                channels.append(last)
                start = i + 1
        return stages, channels


@register(EXPLANANDA, "vgg16", imagenet=VGG16_Weights.IMAGENET1K_V1, head=("classifier.6.",))
def vgg16(num_classes: int, image_size: int = 224, *, dropout: float = 0.5) -> nn.Module:
    """torchvision VGG-16, last Linear -> Linear(4096, C) (Stalder et al., 2022); ImageNet weights from the local cache."""
    return VGG16Classifier(num_classes, dropout=fraction_option(f"{FIELD}.options.dropout", dropout))


class ResNet50Classifier(ResNet):
    """torchvision ResNet-50 with fc -> Linear(2048, C) (the public code of Stalder et al., 2022).

    Stage strides 2, 4, 8, 16, 32 (stem, max-pool + layer1, layer2..4), channels 64..2048.
    """

    def __init__(self, num_classes: int):
        super().__init__(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)

    def encoder_stages(self) -> tuple[list[nn.Module], list[int]]:
        stages = [
            nn.Sequential(self.conv1, self.bn1, self.relu),
            nn.Sequential(self.maxpool, self.layer1),
            self.layer2,
            self.layer3,
            self.layer4,
        ]
        return stages, [64, 256, 512, 1024, 2048]


@register(EXPLANANDA, "resnet50", imagenet=ResNet50_Weights.IMAGENET1K_V1, head=("fc.",))
def resnet50(num_classes: int, image_size: int = 224) -> nn.Module:
    """torchvision ResNet-50, fc -> Linear(2048, C) (Stalder et al., 2022); ImageNet weights from the local cache."""
    return ResNet50Classifier(num_classes)


# --- torchvision ViT-B/16 --------------------------------------------------------------------------


def _grid_position_embedding(pos: Tensor, grid: tuple[int, int], own_grid: int) -> Tensor:
    """ViT position embedding (1, 1 + g*g, D) resampled (bicubic) to a (gh, gw) patch grid."""
    if grid == (own_grid, own_grid):
        return pos
    d = pos.shape[-1]
    patch = pos[:, 1:].reshape(1, own_grid, own_grid, d).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patch.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], d)], dim=1)


def vit_tokens(
    conv_proj: nn.Module, class_token: Tensor, encoder: nn.Module, own_grid: int, x: Tensor
) -> tuple[Tensor, tuple[int, int]]:
    """torchvision ViT encoder on images of any size: (B, 1 + gh*gw, D) tokens and the grid (gh, gw).

    Same computation as ``VisionTransformer`` (patchify, class token, + position embedding,
    dropout, blocks, LayerNorm); the position embedding is resampled when the grid differs from
    the one the model was built for, so Explainers can run at other sizes.
    """
    n = x.shape[0]
    patches = conv_proj(x)  # (B, D, gh, gw)
    grid = (patches.shape[-2], patches.shape[-1])
    tokens = torch.cat([class_token.expand(n, -1, -1), patches.flatten(2).transpose(1, 2)], dim=1)
    tokens = tokens + _grid_position_embedding(encoder.pos_embedding, grid, own_grid)
    return encoder.ln(encoder.layers(encoder.dropout(tokens))), grid


class ViTPatchTokens(nn.Module):
    """The one ViT encoder stage: patch tokens of the last block as a map (B, D, H/16, W/16).

    Holds the ViT's own conv_proj, class token and encoder (shared, not copied).
    """

    def __init__(self, conv_proj: nn.Module, class_token: nn.Parameter, encoder: nn.Module, own_grid: int):
        super().__init__()
        self.conv_proj = conv_proj
        self.class_token = class_token
        self.encoder = encoder
        self.own_grid = own_grid

    def forward(self, x: Tensor) -> Tensor:
        tokens, (gh, gw) = vit_tokens(self.conv_proj, self.class_token, self.encoder, self.own_grid, x)
        return tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, gh, gw)


class ViTB16Classifier(VisionTransformer):
    """torchvision ViT-B/16 built for ``image_size`` with heads -> Linear(768, C).

    forward accepts other sizes (multiples of 16 give full patch grids) by resampling the
    position embedding; at ``image_size`` it is exactly torchvision's forward.
    """

    def __init__(self, num_classes: int, image_size: int):
        super().__init__(
            image_size=image_size,
            patch_size=16,
            num_layers=12,
            num_heads=12,
            hidden_dim=768,
            mlp_dim=3072,
            num_classes=num_classes,
        )

    def forward(self, x: Tensor) -> Tensor:
        tokens, _ = vit_tokens(self.conv_proj, self.class_token, self.encoder, self.image_size // self.patch_size, x)
        return self.heads(tokens[:, 0])

    def encoder_stages(self) -> tuple[list[nn.Module], list[int]]:
        stage = ViTPatchTokens(self.conv_proj, self.class_token, self.encoder, self.image_size // self.patch_size)
        return [stage], [self.hidden_dim]


def _vit_resample_weights(model: nn.Module, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Interpolate a checkpoint's position embedding to ``model``'s grid (torchvision's helper)."""
    key = "encoder.pos_embedding"
    own = model.state_dict().get(key)
    if own is None or key not in state_dict or state_dict[key].shape == own.shape:
        return state_dict
    resampled = interpolate_embeddings(model.image_size, model.patch_size, OrderedDict(state_dict))
    return dict(resampled)


@register(
    EXPLANANDA, "vit_b_16", imagenet=ViT_B_16_Weights.IMAGENET1K_V1, head=("heads.",), transform=_vit_resample_weights
)
def vit_b_16(num_classes: int, image_size: int = 224) -> nn.Module:
    """torchvision ViT-B/16 at the data's image size (multiple of 16), heads -> Linear(768, C)."""
    if image_size % 16:
        raise UserError(f"data.image_size: vit_b_16 needs a multiple of 16 (got {image_size})")
    return ViTB16Classifier(num_classes, image_size)
