"""Grad-CAM / Grad-CAM++ against captum and pytorch-grad-cam (independent per-class computations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from pytorch_grad_cam import GradCAMPlusPlus

from attrsearch.attribution.methods.gradcam import gradcam, gradcam_pp
from attrsearch.attribution.methods.layers import default_layer, find_layer
from attrsearch.errors import UserError


def captum_gradcam(model, images, layer_name):
    _, layer = find_layer(model, layer_name)
    lgc = LayerGradCam(model, layer)
    size = tuple(images.shape[-2:])
    num_classes = model(images[:1]).shape[1]
    per_class = [
        LayerAttribution.interpolate(lgc.attribute(images, target=c, relu_attributions=True), size, "bilinear")[:, 0]
        for c in range(num_classes)
    ]
    return torch.stack(per_class, 1).detach()


@pytest.mark.parametrize("fixture", ["small_cnn", "small_resnet"])
def test_gradcam_matches_captum(request, fixture, images):
    model = request.getfixturevalue(fixture)
    ours = gradcam(model, images)
    ref = captum_gradcam(model, images, default_layer(model))
    assert ours.shape == (2, 3, 32, 32)
    assert ref.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=1e-5 * ref.abs().max().item(), rtol=1e-5)


def test_gradcam_other_layer_and_strategies_agree(small_cnn, images):
    ref = captum_gradcam(small_cnn, images, "stages.2")
    for strategy in ("auto", "vmap", "loop"):
        ours = gradcam(small_cnn, images, layer="stages.2", strategy=strategy)
        torch.testing.assert_close(ours, ref, atol=1e-5 * ref.abs().max().item(), rtol=1e-5)


@pytest.mark.parametrize("head_scale", [1.0, 1e-3])
def test_gradcam_pp_matches_pytorch_grad_cam_weights(small_cnn, images, head_scale):
    """Activations and per-class gradients from plain autograd, weights from pytorch-grad-cam's formula
    (eps 1e-6, ours too). head_scale 1e-3 makes g^2 comparable to eps, where a different eps shows."""
    with torch.no_grad():
        small_cnn.head[-1].weight.mul_(head_scale)
    _, layer = find_layer(small_cnn, default_layer(small_cnn))
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    x = images.clone().requires_grad_(True)
    logits = small_cnn(x)
    handle.remove()
    acts = store["a"]
    expected = []
    for c in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, c].sum(), acts, retain_graph=True)
        w = GradCAMPlusPlus.get_cam_weights(None, None, None, None, acts.detach().numpy(), g.numpy())
        cam = np.maximum((w[:, :, None, None] * acts.detach().numpy()).sum(1), 0)
        expected.append(torch.from_numpy(cam))
    ref = torch.nn.functional.interpolate(torch.stack(expected, 1).float(), size=(32, 32), mode="bilinear")
    ours = gradcam_pp(small_cnn, images)
    assert ref.abs().max() > 0
    # float32 sums in a different order (numpy vs torch): ~2e-4 relative
    torch.testing.assert_close(ours, ref, atol=1e-4 * ref.abs().max().item(), rtol=1e-3)


def test_targets_zero_unselected_and_inference_mode(small_cnn, images):
    targets = torch.tensor([[True, False, False], [False, False, True]])
    full = gradcam(small_cnn, images)
    with torch.inference_mode():
        part = gradcam(small_cnn, images, targets)
    assert (part[~targets] == 0).all()
    torch.testing.assert_close(part[targets], full[targets])


def test_bad_layer_lists_valid_layers(small_cnn, images):
    with pytest.raises(UserError, match=r"--option layer: .*no layer 'stages\.9'.*valid layers: .*stages\.3\.0"):
        gradcam(small_cnn, images, layer="stages.9")


def test_bad_option_is_user_error(small_cnn, images):
    with pytest.raises(UserError, match="--option strategy"):
        gradcam(small_cnn, images, strategy="fast")
