"""Library adapters: captum / pytorch-grad-cam / zennit through the common interface."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

from attrsearch.attribution.methods import method_attribution, resolve_method
from attrsearch.attribution.methods.gradcam import gradcam
from attrsearch.errors import UserError


def run(name, model, images, **options):
    fn, opts = resolve_method(name, options)
    return fn(model, images, None, **opts.model_dump())


def test_captum_layer_gradcam_equals_ours(small_cnn, images):
    theirs = run("captum:LayerGradCam", small_cnn, images, batch=4, attribute={"relu_attributions": True})
    torch.testing.assert_close(theirs, gradcam(small_cnn, images), atol=1e-6, rtol=1e-5)


def test_captum_saliency_is_the_channel_summed_abs_gradient(small_cnn, images):
    maps = run("captum:Saliency", small_cnn, images)  # captum's Saliency returns |grad| by default
    x = images.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(small_cnn(x)[:, 1].sum(), x)
    torch.testing.assert_close(maps[:, 1], g.abs().sum(1), atol=1e-6, rtol=1e-5)


def test_gradcam_lib_agrees_with_ours_up_to_normalisation(small_cnn, images):
    theirs = run("gradcam_lib:GradCAM", small_cnn, images)
    ours = gradcam(small_cnn, images)
    assert theirs.shape == ours.shape and theirs.min() >= 0 and theirs.max() <= 1
    for b in range(2):
        for c in range(3):
            corr = torch.corrcoef(torch.stack([theirs[b, c].flatten(), ours[b, c].flatten()]))[0, 1]
            assert corr > 0.98  # OpenCV resize vs torch bilinear, min-max scaling


def test_zennit_gradient_without_composite_is_the_input_gradient(small_cnn, images):
    maps = run("zennit:Gradient", small_cnn, images)
    x = images.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(small_cnn(x)[:, 2].sum(), x)
    torch.testing.assert_close(maps[:, 2], g.sum(1), atol=1e-6, rtol=1e-4)  # seeded with the one-hot, not the logit


@pytest.fixture
def mixed_sign_cnn(small_cnn):
    """small_cnn with class 0's logits shifted below zero (the logit seed would flip its maps)."""
    with torch.no_grad():
        small_cnn.head[-1].bias[0] -= 4.0
    return small_cnn


def _spearman_per_map(a, b):
    """Spearman rho of every (image, class) pair of two (B, C, H, W) stacks."""
    return [spearmanr(x.flatten(), y.flatten())[0] for x, y in zip(a.flatten(0, 1), b.flatten(0, 1))]


@pytest.mark.parametrize(
    "zennit_name, zennit_opts, captum_name, captum_opts",
    [
        ("zennit:Gradient", {}, "captum:Saliency", {"attribute": {"abs": False}}),
        ("zennit:SmoothGrad", {"init": {"n_iter": 1}}, "captum:Saliency", {"attribute": {"abs": False}}),
        (
            "zennit:IntegratedGradients",
            {"init": {"n_iter": 32}},
            "captum:IntegratedGradients",
            {"attribute": {"n_steps": 32, "method": "riemann_right"}},
        ),
    ],
)
def test_zennit_attributors_rank_like_captum(
    mixed_sign_cnn, images, zennit_name, zennit_opts, captum_name, captum_opts
):
    """zennit's gradient attributors and captum's counterparts on the same inputs (zennit has no
    InputXGradient; its SmoothGrad with n_iter=1 is the plain gradient, noise-free by construction)."""
    with torch.no_grad():
        logits = mixed_sign_cnn(images)
    assert (logits < 0).any() and (logits > 0).any()
    ours = run(zennit_name, mixed_sign_cnn, images, **zennit_opts)
    assert min(_spearman_per_map(ours, run(captum_name, mixed_sign_cnn, images, **captum_opts))) > 0.99


def test_zennit_integrated_gradients_is_complete(mixed_sign_cnn, images):
    maps = run("zennit:IntegratedGradients", mixed_sign_cnn, images, init={"n_iter": 256})
    with torch.no_grad():
        delta = mixed_sign_cnn(images) - mixed_sign_cnn(torch.zeros_like(images))
    assert (maps.sum((2, 3)) - delta).abs().max() <= 0.01 * delta.abs().min()


def test_zennit_descriptions_name_the_seed(small_cnn):
    assert "one-hot class vector" in method_attribution(small_cnn, "zennit:IntegratedGradients").description
    lrp_like = method_attribution(small_cnn, "zennit:Gradient", {"composite": "epsilon_plus_flat"})
    assert "seeded with the class logit" in lrp_like.description


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("captum:NoSuchThing", "--method captum:NoSuchThing: unknown class; choose one of .*LayerGradCam"),
        ("gradcam_lib:Nope", "--method gradcam_lib:Nope: unknown class; choose one of .*ScoreCAM"),
        ("zennit:Nope", "--method zennit:Nope: unknown class; choose one of .*SmoothGrad"),
        ("torchray:EP", "--method torchray:EP: unknown library prefix"),
        ("captum:NeuronGradient", "neuron attributions"),
    ],
)
def test_unknown_library_classes(name, pattern):
    with pytest.raises(UserError, match=pattern):
        resolve_method(name, {})


def test_library_option_errors(small_cnn, images):
    with pytest.raises(UserError, match="--option layers: unknown option for method captum:Saliency"):
        resolve_method("captum:Saliency", {"layers": "x"})
    with pytest.raises(UserError, match="--option attribute: captum:Saliency.attribute rejects"):
        run("captum:Saliency", small_cnn, images, attribute={"nonsense": 1})
