"""Grad-CAM (Selvaraju et al. 2017, eqs. 1-2) and Grad-CAM++ (Chattopadhay et al. 2018, eq. 19), all classes at once.

Hand-written rather than taken from captum / pytorch-grad-cam because those explain one class per
call: C classes cost C forward and backward passes through the whole network. Here one forward
pass serves every class and only the part of the network *after* the layer is differentiated:
the layer output is cut from the graph (a detached leaf), so no gradient flows through the
encoder below it. Tests check the maps against captum's ``LayerGradCam`` and pytorch-grad-cam's
Grad-CAM++ weights.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.attribution.methods._common import attribution_method, check_targets, upsample, validate_options
from attrsearch.attribution.methods.base import register_method
from attrsearch.attribution.methods.layers import find_layer, to_feature_map
from attrsearch.config.base import StrictModel

Strategy = Literal["auto", "vmap", "loop"]

# Grad-CAM++'s stabiliser in alpha's denominator. Eq. 19 of Chattopadhay et al. 2018 has none; it
# only guards the positions where 2 g^2 + sum(A) g^3 vanishes. We use pytorch-grad-cam's 1e-6
# (GradCAMPlusPlus.get_cam_weights), the implementation most published comparisons run, so that a
# difference between our maps and theirs is never this constant: with 1e-7 the min-max maps of the
# trained built-in Explanandum differed from theirs by up to 0.13, and the exact form (no eps where the
# denominator is non-zero) differs from both by up to 0.05, wherever gradients are small enough
# that g^2 is comparable to eps.
GRADCAM_PP_EPS = 1e-6


class GradCAMOptions(StrictModel):
    """layer: dotted module name (default: the last conv block, see ``layers.default_layer``);
    strategy: how the C class gradients are taken from the one graph: ``vmap`` (one batched
    ``autograd.grad``), ``loop`` (C backward passes over the retained graph) or ``auto`` (vmap,
    falling back to the loop for a model with an op vmap cannot batch). Same result; vmap measured
    1.4-1.7x faster on CPU (small_cnn 64 px C=8, resnet50 224 px C=20, vit_b_16)."""

    layer: str | None = None
    strategy: Strategy = "auto"


def layer_forward(model: nn.Module, images: Tensor, layer: str | None) -> tuple[Tensor, Tensor]:
    """One forward pass with the layer's output cut from the graph below it.

    images: (B, 3, H, W). Returns (leaf, logits (B, C)): ``leaf`` is the layer's output as a
    detached tensor that requires grad, so gradients of the logits stop there.
    """
    _, module = find_layer(model, layer)
    store: dict[str, Tensor] = {}

    def hook(_module: nn.Module, _inputs: object, output: Tensor) -> Tensor:
        leaf = output.detach().requires_grad_(True)
        store["leaf"] = leaf
        return leaf.clone()  # a non-leaf copy, so in-place ops after the layer (ResNet's +=) are allowed

    handle = module.register_forward_hook(hook)
    try:
        logits = model(images)
    finally:
        handle.remove()
    return store["leaf"], logits


def class_gradients(
    images: Tensor,
    leaf: Tensor,
    logits: Tensor,
    classes: Tensor,
    strategy: Strategy = "loop",
    model: nn.Module | None = None,
) -> tuple[Tensor, Tensor]:
    """The gradient of each class logit in ``classes`` (K,) w.r.t. ``leaf`` (see ``layer_forward``).

    Returns (activations (B, D, h, w), gradients (K, B, D, h, w)); ViT token layers are returned as
    grids of the image's aspect (the ``model``'s prefix tokens dropped: ``layers.to_feature_map``).
    """
    if len(classes) == 0:
        grads = leaf.new_zeros(0, *leaf.shape)
    else:
        grads = None
        if strategy in ("auto", "vmap"):
            eye = torch.eye(logits.shape[1], device=logits.device, dtype=logits.dtype)[classes]  # (K, C)
            grad_out = eye[:, None, :].expand(len(classes), *logits.shape)
            try:
                (grads,) = torch.autograd.grad(logits, leaf, grad_out, is_grads_batched=True, retain_graph=True)
            except RuntimeError:
                if strategy == "vmap":
                    raise
        if grads is None:
            grads = torch.stack(
                [torch.autograd.grad(logits[:, c].sum(), leaf, retain_graph=True)[0] for c in classes.tolist()]
            )
    hw = tuple(images.shape[-2:])
    acts = to_feature_map(model, leaf.detach(), hw)
    k, b = grads.shape[:2]
    grads = to_feature_map(model, grads.reshape(k * b, *grads.shape[2:]), hw)
    return acts, grads.reshape(k, b, *grads.shape[1:])


def _cam(model: nn.Module, images: Tensor, targets: Tensor | None, opts: GradCAMOptions, plus: bool) -> Tensor:
    b, _, h, w = images.shape
    leaf, logits = layer_forward(model, images, opts.layer)  # the one forward pass also gives C
    num_classes = logits.shape[1]
    selected = check_targets(targets, b, num_classes, images.device)
    classes = selected.any(0).nonzero()[:, 0]
    maps = images.new_zeros(b, num_classes, h, w)
    if len(classes) == 0:
        return maps
    acts, grads = class_gradients(images, leaf, logits, classes, opts.strategy, model)
    if plus:
        # Chattopadhay et al. 2018, eq. 19 (the closed form with the exponential of the score):
        # alpha = g^2 / (2 g^2 + sum_ab A * g^3 + eps), weights = sum_ab alpha * relu(g); eps: GRADCAM_PP_EPS.
        g2, g3 = grads.pow(2), grads.pow(3)
        denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3
        alpha = torch.where(grads != 0, g2 / (denom + GRADCAM_PP_EPS), torch.zeros_like(grads))
        weights = (alpha * grads.clamp_min(0)).sum(dim=(3, 4))
    else:
        weights = grads.mean(dim=(3, 4))  # (K, B, D): eq. 1, global-average-pooled gradients
    cams = F.relu(torch.einsum("kbd,bdhw->bkhw", weights, acts))  # eq. 2
    maps[:, classes] = upsample(cams, (h, w)).float()
    return maps * selected[:, :, None, None]


@register_method("gradcam", GradCAMOptions, doc="Grad-CAM (Selvaraju et al. 2017), all classes from one forward pass")
@attribution_method
def gradcam(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """Grad-CAM maps for every class from one forward pass.

    images (B, 3, H, W) normalised; targets None or (B, C) bool.
    Returns maps (B, C, H, W) >= 0 (ReLU of the weighted activation sum, bilinearly upsampled to the
    image size; unnormalised, on the scale of logit gradient x activation).
    """
    return _cam(model, images, targets, validate_options(GradCAMOptions, options, "gradcam"), plus=False)


@register_method("gradcam_pp", GradCAMOptions, doc="Grad-CAM++ (Chattopadhay et al. 2018), all classes at once")
@attribution_method
def gradcam_pp(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """Grad-CAM++ maps for every class from one forward pass; same shapes and range as ``gradcam``.
    alpha's denominator carries eps = ``GRADCAM_PP_EPS`` = 1e-6, pytorch-grad-cam's (the reason: there)."""
    return _cam(model, images, targets, validate_options(GradCAMOptions, options, "gradcam_pp"), plus=True)
