"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019) through zennit's composites.

Composites (Kohlbrenner et al. 2020 for the layer-type rule sets):
- ``epsilon_plus_flat``: Flat for the first layer, ZPlus for convolutions, Epsilon for dense layers;
- ``epsilon_gamma_box``: ZBox for the first layer (bounds = the normalised images of pixel values 0
  and 1), Gamma (gamma 0.25) for convolutions, Epsilon for dense layers;
- ``alpha2_beta1``: Alpha2-Beta1 for convolutions, Epsilon for dense layers.

Canonizers (``canonizers: auto``): zennit's ``ResNetCanonizer`` for models with torchvision
residual blocks (it merges every BatchNorm into the preceding convolution and turns the residual
addition into a Sum module with its own rule), else ``SequentialMergeBatchNorm`` when the model
has BatchNorm, else none. ``describe`` states the variant used.

All classes: each image is repeated once per class and every copy gets one class's output
relevance (one-hot x its logit, so the relevance entering the network is the logit), in chunks of
``batch`` copies; relevance is summed over the colour channels (signed).

Conservation (Bach et al. 2015, eq. 2: the relevance of every layer sums to the logit) holds
exactly only for a bias-free network; ``describe`` says what absorbs the rest, and tests check both
(a bias-free model conserves to float precision; a dense bias b takes exactly its share, sum R =
logit - b). What is absorbed: every bias term the rule keeps in its denominator (the Epsilon rule
of dense layers, the positive biases of ZPlus / Gamma / AlphaBeta convolutions, BatchNorm shifts,
which the canonizers turn into such biases), and epsilon x sign(z) per Epsilon layer (significant
where |z| is small, i.e. for logits near zero). The flat rule at the input (epsilon_plus_flat) is
itself conservative: it spreads each first-layer unit's relevance uniformly over its receptive
field, ignoring the pixel values and the first layer's bias. On the trained built-in Explanandum
(BatchNorm merged into biases) the median |sum R / logit - 1| is about 0.3.

A model with a layer type the composite has no rule for (LayerNorm, attention, ...), or with timm's
residual blocks (their addition is no module and no zennit canonizer handles it), is refused before
any work: a gradient would pass through it and the maps would not be LRP.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from attrsearch.attribution.methods._common import attribution_method, check_targets, num_classes_of, validate_options
from attrsearch.attribution.methods.base import register_method
from attrsearch.config.base import StrictModel
from attrsearch.data.base import IMAGENET_MEAN, IMAGENET_STD
from attrsearch.errors import UserError

CompositeName = Literal["epsilon_plus_flat", "epsilon_gamma_box", "alpha2_beta1"]

# Leaf modules that are correct under LRP without a rule of their own: identities in eval mode, and
# max-pooling, whose gradient is the winner-take-all redistribution.
_PASS_TYPES = (nn.Dropout, nn.Flatten, nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)


class LRPOptions(StrictModel):
    """composite: the rule set; canonizers: ``auto`` (see module docs) or ``none``; gamma: the
    Gamma rule's parameter (epsilon_gamma_box); epsilon: the Epsilon rule's; mean/std: the
    normalisation of the images (for the ZBox bounds); batch: image copies per relevance pass."""

    composite: CompositeName = "epsilon_plus_flat"
    canonizers: Literal["auto", "none"] = "auto"
    gamma: float = Field(0.25, ge=0)
    epsilon: float = Field(1e-6, gt=0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    batch: int = Field(64, ge=1)


def _canonizers(model: nn.Module | None, opts: LRPOptions) -> list:
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    if opts.canonizers == "none" or model is None:
        return []
    if any(isinstance(m, (BasicBlock, Bottleneck)) for m in model.modules()):
        return [ResNetCanonizer()]
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return [SequentialMergeBatchNorm()]
    return []


def build_composite(opts: LRPOptions, model: nn.Module | None = None, like: Tensor | None = None):
    """The zennit composite for ``opts`` (``like``: an input batch, for the ZBox bounds)."""
    from zennit.composites import EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlusFlat

    canon = _canonizers(model, opts)
    if opts.composite == "epsilon_plus_flat":
        return EpsilonPlusFlat(epsilon=opts.epsilon, canonizers=canon)
    if opts.composite == "alpha2_beta1":
        return EpsilonAlpha2Beta1(epsilon=opts.epsilon, canonizers=canon)
    device = like.device if like is not None else torch.device("cpu")
    mean = torch.tensor(opts.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(opts.std, device=device).view(1, 3, 1, 1)
    shape = like.shape if like is not None else (1, 3, 1, 1)
    low = ((0.0 - mean) / std).expand(shape)
    high = ((1.0 - mean) / std).expand(shape)
    return EpsilonGammaBox(low=low, high=high, epsilon=opts.epsilon, gamma=opts.gamma, canonizers=canon)


def describe(options: dict | LRPOptions, model: nn.Module | None = None) -> str:
    """The variant in words, e.g. ``zennit EpsilonPlusFlat (epsilon 1e-06), canonizers SequentialMergeBatchNorm``."""
    opts = options if isinstance(options, LRPOptions) else validate_options(LRPOptions, options, "lrp")
    comp = {
        "epsilon_plus_flat": "EpsilonPlusFlat",
        "epsilon_gamma_box": "EpsilonGammaBox",
        "alpha2_beta1": "EpsilonAlpha2Beta1",
    }
    params = f"epsilon {opts.epsilon:g}" + (f", gamma {opts.gamma:g}" if opts.composite == "epsilon_gamma_box" else "")
    if model is None:
        canon = (
            "auto (ResNetCanonizer / SequentialMergeBatchNorm / none by model)" if opts.canonizers == "auto" else "none"
        )
    else:
        canon = ", ".join(type(c).__name__ for c in _canonizers(model, opts)) or "none"
    return f"zennit {comp[opts.composite]} ({params}), canonizers {canon}; {conservation_note(opts)}"


def conservation_note(opts: LRPOptions) -> str:
    """What keeps sum R from equalling the logit under ``opts`` (see the module docs), in words."""
    first = {
        "epsilon_plus_flat": "the flat rule at the input is conservative but ignores pixel values",
        "epsilon_gamma_box": "the ZBox rule at the input keeps its layer's bias too",
        "alpha2_beta1": "alpha - beta = 1 keeps the convolutions conservative apart from their biases",
    }[opts.composite]
    return (
        f"relevance starts at the class logit; sum R = logit minus what biases (BatchNorm shifts included) "
        f"and epsilon ({opts.epsilon:g} x sign z per Epsilon layer) absorb; {first}"
    )


def check_supported(model: nn.Module, opts: LRPOptions) -> None:
    """A one-line UserError naming the first module the composite has no rule for."""
    composite = build_composite(opts, model)
    maps = list(getattr(composite, "layer_map", [])) + list(getattr(composite, "first_map", []))
    covered = tuple(t for types, _ in maps for t in (types if isinstance(types, tuple) else (types,)))

    def ok(m: nn.Module) -> bool:
        # lrp_pass: a module that declares itself an exact input transform (a timm Explanandum's
        # normalisation change, an affine map before the first layer's rule).
        return isinstance(m, (covered, _PASS_TYPES)) or getattr(m, "lrp_pass", False)

    named = list(model.named_modules())
    leaves = [(n, m) for n, m in named if not list(m.children())]
    holders = [(n, m) for n, m in named if list(m.children()) and list(m.parameters(recurse=False))]
    for name, m in leaves + holders:
        if not ok(m):
            raise UserError(
                f"--option composite: zennit {opts.composite} has no LRP rule for {type(m).__name__} "
                f"(module {name or '<root>'!r}); LRP supports convolutional/dense networks"
            )
    for name, m in named:
        # timm's residual blocks add the shortcut in forward(), not in a module: zennit has no rule and no
        # canonizer for that sum (its ResNetCanonizer rewrites torchvision's blocks only), so the
        # gradient would pass through it and the maps would not be LRP.
        if type(m).__module__.startswith("timm.") and hasattr(m, "drop_path") and list(m.children()):
            raise UserError(
                f"--option composite: zennit has no LRP rule for the residual addition of timm's "
                f"{type(m).__name__} (module {name!r}); LRP supports torchvision ResNets and plain convolutional networks"
            )


@register_method(
    "lrp",
    LRPOptions,
    doc="LRP through zennit composites (epsilon-plus-flat default) with BatchNorm/ResNet canonizers",
)
@attribution_method
def lrp(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """LRP relevance for every selected class.

    images (B, 3, H, W) normalised; targets None or (B, C) bool.
    Returns maps (B, C, H, W), real-valued (positive = evidence for the class, negative = against);
    each map sums to the class logit on a bias-free network, otherwise minus what the biases and the
    epsilon stabilisers absorb (module docs).
    """
    from zennit.attribution import Gradient

    opts = validate_options(LRPOptions, options, "lrp")
    check_supported(model, opts)
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images)
    pairs = check_targets(targets, b, num_classes, images.device).nonzero()  # (P, 2)
    maps = images.new_zeros(b, num_classes, h, w)
    for start in range(0, len(pairs), opts.batch):
        rows = pairs[start : start + opts.batch]
        x = images[rows[:, 0]].clone().requires_grad_(True)
        onehot = torch.nn.functional.one_hot(rows[:, 1], num_classes).to(x.dtype)
        composite = build_composite(opts, model, x)
        with Gradient(model=model, composite=composite) as attributor:
            _, relevance = attributor(x, lambda out, oh=onehot: out * oh)
        maps[rows[:, 0], rows[:, 1]] = relevance.sum(1).detach().float()
    return maps
