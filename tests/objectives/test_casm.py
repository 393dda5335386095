"""CASM (Zolna et al. 2020): loss terms by hand, the snapshot pool of each thinning strategy, the
draw of the current classifier, and the separation of the two optimisers."""

import math

import pytest
import torch
from torch import nn

from attrsearch.config import ExperimentConfig, validate
from attrsearch.config.objectives import CasmObjective
from attrsearch.errors import UserError
from attrsearch.models import create_explainer, create_explanandum
from attrsearch.objectives.base import LossOutput
from attrsearch.objectives.casm import (
    CasmHook,
    ClassAgnosticExplainer,
    casm_loss,
    classifier_loss,
    masker_negative_entropy,
)


class Linear(nn.Module):
    """A tiny classifier: mean colour per channel -> C logits."""

    def __init__(self, c: int = 3):
        super().__init__()
        self.fc = nn.Linear(3, c)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def test_masker_negative_entropy_only_on_correct_images():
    logits_out = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # p = (.5, .5) and (.75, .25)
    clean = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # top-1 = class 0 for both
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # only image 0 is correct
    assert masker_negative_entropy(logits_out, clean, labels).item() == pytest.approx(math.log(0.5), rel=1e-6)
    labels_all = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    expected = (math.log(0.5) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / 2
    assert masker_negative_entropy(logits_out, clean, labels_all).item() == pytest.approx(expected, rel=1e-6)
    none = masker_negative_entropy(logits_out, clean, torch.zeros(2, 2))
    assert none.item() == 0.0


def test_classifier_loss_is_mean_of_clean_and_masked_bce():
    clean, out = torch.tensor([[0.0]]), torch.tensor([[2.0]])
    labels = torch.tensor([[1.0]])
    expected = 0.5 * (math.log(2.0) + math.log(1.0 + math.exp(-2.0)))
    assert classifier_loss(clean, out, labels).item() == pytest.approx(expected, rel=1e-6)


def test_casm_loss_hand_computed():
    clf = Linear(2)
    with torch.no_grad():
        clf.fc.weight.zero_()
        clf.fc.bias.copy_(torch.tensor([1.0, 0.0]))  # constant logits: p = softmax(1, 0)
    images = torch.ones(1, 3, 2, 2)
    mask_logits = torch.zeros(1, 2, 2, 2)  # m = 0.5 everywhere
    cfg = CasmObjective(thinning="L", lambda_r=2.0)
    out = casm_loss(clf, images, torch.tensor([[1.0, 0.0]]), mask_logits, cfg)
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    neg_h = float((p * p.log()).sum())
    assert out.terms["entropy"].item() == pytest.approx(neg_h, rel=1e-6)
    assert out.terms["area"].item() == pytest.approx(0.5)
    assert out.loss.item() == pytest.approx(neg_h + 2.0 * 0.5, rel=1e-6)


def test_lambda_r_defaults_to_the_tuned_value_of_each_thinning():
    assert {t: CasmObjective(thinning=t).lambda_r for t in ("F", "L", "FL", "L100", "L1000")} == {
        "F": 2.5,
        "L": 14.0,
        "FL": 7.5,
        "L100": 10.0,
        "L1000": 10.0,
    }
    assert CasmObjective(thinning="L", lambda_r=3.0).lambda_r == 3.0


@pytest.mark.parametrize(
    "bad, field",
    [({"thinning": "L10"}, "objective.thinning"), ({"lambda_entropy": 1.0}, "objective.lambda_entropy")],
)
def test_bad_casm_options_are_one_line_errors(bad, field):
    with pytest.raises(UserError) as err:
        validate(ExperimentConfig, {"objective": {"name": "casm", **bad}}, source="x.yaml")
    assert str(err.value).startswith(f"x.yaml: {field}:") and "\n" not in str(err.value)


def _run_steps(hook: CasmHook, n: int, b: int = 2, c: int = 3) -> None:
    images, labels = torch.randn(b, 3, 4, 4), torch.ones(b, c)
    masks = torch.rand(b, c, 4, 4)
    for step in range(n):
        hook.classifier(step)
        hook.after_step(images, labels, LossOutput(torch.tensor(0.0), {}, masks, torch.zeros(b, c)))


@pytest.mark.parametrize(
    "thinning, steps, pool_steps",
    [
        ("F", 5, [0]),
        ("L", 5, [5]),
        ("FL", 5, [0, 5]),
        ("L100", 250, [0, 100, 200]),
    ],
)
def test_pool_keeps_what_the_thinning_says(thinning, steps, pool_steps):
    hook = CasmHook(CasmObjective(thinning=thinning), Linear(), "cpu")
    _run_steps(hook, steps)
    assert hook.pool_steps == pool_steps
    assert hook.steps == (0 if thinning == "F" else steps)


def test_pool_snapshots_hold_the_classifier_of_their_step():
    hook = CasmHook(CasmObjective(thinning="FL"), Linear(), "cpu")
    first = hook.model.fc.weight.detach().clone()
    _run_steps(hook, 3)
    assert torch.equal(hook.pool[0][1].fc.weight, first)
    assert torch.equal(hook.pool[1][1].fc.weight, hook.model.fc.weight)
    assert not torch.equal(first, hook.model.fc.weight)  # the classifier trained


def test_l1000_keeps_at_most_max_snapshots_dropping_random_ones():
    cfg = CasmObjective(thinning="L1000", max_snapshots=3)
    hook = CasmHook(cfg, Linear(), "cpu")
    hook.cfg = cfg.model_copy(update={"thinning": "L100"})  # same rule, every 100 steps: a quicker test
    _run_steps(hook, 600)
    assert len(hook.pool) == 3
    assert hook.pool_steps == sorted(hook.pool_steps) and hook.pool_steps[-1] == 600
    assert set(hook.pool_steps) <= {0, 100, 200, 300, 400, 500, 600}


def test_current_classifier_drawn_about_half_the_time_seeded():
    draws = []
    for seed in (0, 0, 1):
        hook = CasmHook(CasmObjective(thinning="L100"), Linear(), "cpu", seed=seed)
        picks = [hook.classifier(s) is hook.current for s in range(2000)]
        draws.append(picks)
    assert draws[0] == draws[1] and draws[0] != draws[2]
    assert 0.45 < sum(draws[0]) / 2000 < 0.55
    assert hook.classifier(None) is hook.current  # validation scores the current classifier


def test_masker_gradient_never_reaches_the_classifier_and_optimisers_are_separate():
    torch.manual_seed(0)
    explanandum = create_explanandum("small_cnn", 3, image_size=32, width=4).eval()
    cfg = CasmObjective(thinning="L")
    explainer = ClassAgnosticExplainer(
        create_explainer("explanandum_encoder", 1, explanandum=explanandum, scales=[1, 2]), 3
    )
    hook = CasmHook(cfg, explanandum, "cpu", explainer=explainer, seed=0)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    masker_opt = torch.optim.Adam([p for p in explainer.parameters() if p.requires_grad], lr=1e-2)
    decoder_before = {k: v.clone() for k, v in explainer.state_dict().items() if not k.startswith("inner.encoder")}
    for _ in range(3):
        for draw in (hook.current, hook.pool[0][1]):  # the current classifier and a snapshot
            out = casm_loss(draw, images, labels, explainer(images), cfg)
            masker_opt.zero_grad()
            out.loss.backward()
            assert all(p.grad is None for p in hook.model.parameters())
            assert all(p.grad is None for p in hook.pool[0][1].parameters())
        masker_opt.step()
        masked = explainer(images)
        assert masked.shape == (4, 3, 32, 32) and torch.equal(masked[:, 0], masked[:, 2])  # broadcast
        decoder_now = {k: v.clone() for k, v in explainer.state_dict().items() if not k.startswith("inner.encoder")}
        hook.after_step(images, labels, out)
        # The classifier's optimiser holds only the classifier and leaves the masker's decoder alone.
        owned = {id(p) for g in hook.optimizer.param_groups for p in g["params"]}
        assert owned == {id(p) for p in hook.model.parameters()}
        assert not owned & {id(p) for p in explainer.parameters()}
        after = {k: v for k, v in explainer.state_dict().items() if not k.startswith("inner.encoder")}
        assert all(torch.equal(after[k], decoder_now[k]) for k in after)
    assert any(not torch.equal(decoder_before[k], decoder_now[k]) for k in decoder_now)  # the masker trained
    # The masker reads the current classifier's encoder (weights copied after its step).
    stages, _ = hook.model.encoder_stages()
    assert torch.equal(explainer.inner.encoder[0][0][0].weight, stages[0][0][0].weight)
    assert not torch.equal(stages[0][0][0].weight, explanandum.stages[0][0][0].weight)


def test_hook_state_round_trip():
    hook = CasmHook(CasmObjective(thinning="FL"), Linear(), "cpu", seed=3)
    _run_steps(hook, 4)
    state = hook.state_dict()
    other = CasmHook(CasmObjective(thinning="FL"), Linear(), "cpu", seed=9)
    other.load_state_dict(state)
    assert other.pool_steps == hook.pool_steps and other.steps == 4
    assert torch.equal(other.model.fc.weight, hook.model.fc.weight)
    assert [other.classifier(s) is other.current for s in range(20)] == [
        hook.classifier(s) is hook.current for s in range(20)
    ]
