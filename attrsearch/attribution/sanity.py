"""Sanity checks for saliency maps (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

Cascading model randomisation (Sec. 3.1): the parametrised layers of the classifier are
re-initialised one at a time from the top (the logits) down, cumulatively, and after each step the
maps of the randomised model are compared with the original maps: Spearman rank correlation and
SSIM, per (image, class) map, averaged. A method whose maps barely change once every layer is
random is not explaining the model: it fails when the Spearman correlation after the last
(bottom-most) layer is above ``SPEARMAN_THRESHOLD`` (0.5). The data randomisation test (Sec. 3.2)
compares the maps of a classifier with those of one trained on shuffled labels (``compare_maps``
on the two models' maps; the training side lives in ``attrsearch.train``).

Pure: a model, images and a method callable ``method(model, images, targets) -> maps`` in; numbers
out. Maps are compared as they come (Adebayo et al. also report absolute values; the methods here
are non-negative except LRP, whose signed relevance is ranked as it is).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

SPEARMAN_THRESHOLD = 0.5

Method = Callable[[nn.Module, Tensor, Tensor | None], Tensor]


def parametrized_layers(model: nn.Module) -> list[str]:
    """Names of the modules that hold parameters themselves, bottom (input) to top (output), in
    registration order (the forward order of the zoo Explananda)."""
    return [name for name, m in model.named_modules() if name and list(m.parameters(recurse=False))]


@torch.no_grad()
def randomize_layer(module: nn.Module, seed: int) -> None:
    """Re-initialise one module in place as at construction (``reset_parameters``, seeded); a module
    without it gets N(0, 0.01) weights and zero biases. BatchNorm also forgets its running statistics."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            return
        for name, p in module.named_parameters(recurse=False):
            p.normal_(0, 0.01) if "weight" in name else p.zero_()


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=1)  # average ranks for ties


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of each pair of maps. a, b: (N, H, W) -> (N,) in [-1, 1];
    NaN where a map is constant (no ranking to compare)."""
    ra = _ranks(a.flatten(1).double().cpu().numpy())
    rb = _ranks(b.flatten(1).double().cpu().numpy())
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(1) / denom
    rho[denom == 0] = np.nan
    return torch.from_numpy(rho)


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """SSIM (skimage, data range 1) of each pair of maps, each min-max normalised to [0, 1] first
    (a constant map becomes zeros). a, b: (N, H, W) -> (N,)."""
    from skimage.metrics import structural_similarity

    def unit(x: Tensor) -> np.ndarray:
        x = x.flatten(1).double()
        lo, hi = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
        return ((x - lo) / (hi - lo).clamp_min(1e-12)).reshape(a.shape).cpu().numpy()

    ua, ub = unit(a), unit(b)
    side = min(a.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    return torch.tensor([structural_similarity(x, y, data_range=1.0, win_size=win) for x, y in zip(ua, ub)])


def _selected(maps: Tensor, targets: Tensor | None) -> Tensor:
    """(B, C, H, W) -> (N, H, W): the maps of the selected (image, class) pairs (all when None)."""
    if targets is None:
        return maps.flatten(0, 1)
    return maps[targets.to(maps.device).bool()]


def compare_maps(original: Tensor, other: Tensor, targets: Tensor | None = None) -> dict[str, float]:
    """Mean Spearman and SSIM between two sets of maps (B, C, H, W) over the selected pairs (NaN skipped)."""
    a, b = _selected(original.float(), targets), _selected(other.float(), targets)
    rho, sim = spearman(a, b), ssim(a, b)
    return {"spearman": _nanmean(rho), "ssim": _nanmean(sim)}


def _nanmean(x: Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else math.nan


@dataclass
class SanityResult:
    """Per-layer scores of the cascade, top layer first: ``layers[i]`` was randomised (with every
    layer above it) when ``spearman[i]`` / ``ssim[i]`` were measured."""

    layers: list[str]
    spearman: list[float]
    ssim: list[float]
    threshold: float = SPEARMAN_THRESHOLD

    @property
    def final_spearman(self) -> float:
        return self.spearman[-1] if self.spearman else math.nan

    @property
    def passed(self) -> bool:
        """True when the maps of the fully randomised model no longer rank pixels like the original
        (Spearman <= threshold); a NaN (constant maps everywhere) passes: nothing was kept."""
        return not (self.final_spearman > self.threshold)

    def metrics(self, prefix: str = "sanity/randomization") -> dict[str, float]:
        out: dict[str, float] = {}
        for layer, rho, sim in zip(self.layers, self.spearman, self.ssim):
            out[f"{prefix}/{layer}/spearman"] = rho
            out[f"{prefix}/{layer}/ssim"] = sim
        out[f"{prefix}/final_spearman"] = self.final_spearman
        out[f"{prefix}/passed"] = float(self.passed)
        return out


def cascade(model: nn.Module, layers: list[str] | None = None, seed: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """A deep copy of ``model`` randomised cumulatively from the top: yields (layer, copy) after each
    re-initialisation (the same copy, mutated). ``layers``: bottom-to-top names (default: all
    parametrised layers). The original model is left untouched."""
    names = parametrized_layers(model) if layers is None else list(layers)
    work = copy.deepcopy(model).eval()
    modules = dict(work.named_modules())
    for i, name in enumerate(reversed(names)):
        randomize_layer(modules[name], seed + i)
        yield name, work


def cascading_randomization(
    model: nn.Module,
    method: Method,
    images: Tensor,
    targets: Tensor | None = None,
    layers: list[str] | None = None,
    seed: int = 0,
) -> SanityResult:
    """Adebayo et al.'s cascading randomisation of ``model`` for one method.

    images (B, 3, H, W) normalised; targets (B, C) bool, the (image, class) maps compared (and the
    ones the method is asked for; None: all); ``method(model, images, targets) -> maps (B, C, H, W)``.
    Returns the per-layer Spearman / SSIM (top layer first) and the pass/fail verdict.
    """
    original = method(model, images, targets).detach()
    names, rhos, sims = [], [], []
    for name, randomized in cascade(model, layers, seed):
        scores = compare_maps(original, method(randomized, images, targets).detach(), targets)
        names.append(name)
        rhos.append(scores["spearman"])
        sims.append(scores["ssim"])
    return SanityResult(names, rhos, sims)
