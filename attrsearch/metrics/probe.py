"""The encoding probe (Jethani, Sudarshan, Aphinyanaphongs & Ranganath, AISTATS 2021, EVAL-X, Sec. 3).

An Explainer trained through a classifier can encode the prediction in *where* it puts its mask
rather than in what the selected pixels show: the selection pattern alone then predicts the label.
The probe tests this directly: a small CNN sees only the binarised target masks (no image) and is
trained to predict the labels; held-out predictions come from k-fold cross-validation. Ground-truth
masks carry class information too (an object's outline names its shape), so the same probe on the
ground-truth masks is the control::

    encoding excess = accuracy(probe on the masks) - accuracy(probe on the ground truth)

Accuracy is exact-match accuracy of the thresholded (0.5) multi-label prediction (plain accuracy
for single-label data). An excess well above 0 means the masks encode the label beyond the
object's outline. The probe is seeded: the same inputs give the same accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PROBE_SIZE = 32  # masks are area-resized to at most this side before the probe


def probe_network(num_classes: int, width: int = 16) -> nn.Module:
    """Mask (N, 1, S, S) -> logits (N, C): two strided convolutions, a 4 x 4 pooled grid (keeps where the
    mask lies, which a global pool would discard) and a linear head."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * width, num_classes),
    )


def _inputs(masks: Tensor, threshold: float) -> Tensor:
    x = (masks.detach().float().cpu() > threshold).float()[:, None]
    side = max(x.shape[-2:])
    if side > PROBE_SIZE:
        h, w = (max(1, round(s * PROBE_SIZE / side)) for s in x.shape[-2:])
        x = F.adaptive_avg_pool2d(x, (h, w))
    return x


def _fit_predict(x_train: Tensor, y_train: Tensor, x_test: Tensor, steps: int, lr: float, seed: int) -> Tensor:
    torch.manual_seed(seed)
    net = probe_network(y_train.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    batch = min(64, len(x_train))
    for _ in range(steps):
        idx = torch.randperm(len(x_train), generator=gen)[:batch]
        loss = F.binary_cross_entropy_with_logits(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(x_test) > 0


def probe_accuracy(
    masks: Tensor,
    labels: Tensor,
    *,
    folds: int = 2,
    steps: int = 200,
    lr: float = 3e-3,
    threshold: float = 0.5,
    seed: int = 0,
) -> float:
    """Cross-validated exact-match accuracy of the probe predicting ``labels`` from binarised ``masks``.

    masks: (N, H, W) in [0, 1] (a target mask per image; binarised at ``threshold``); labels: (N, C)
    multi-hot; ``folds`` >= 2 disjoint folds of a seeded permutation, each predicted by a probe
    trained on the others (``steps`` Adam steps of batch 64). Returns a value in [0, 1]."""
    if masks.dim() != 3 or labels.dim() != 2 or masks.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected masks (N, H, W) and labels (N, C), got {tuple(masks.shape)} and {tuple(labels.shape)}"
        )
    n = masks.shape[0]
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be in 2..{n} (the number of images), got {folds}")
    with torch.inference_mode(False), torch.enable_grad():
        x, y = _inputs(masks, threshold), labels.detach().float().cpu()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        correct = 0
        for k, test in enumerate(order.chunk(folds)):
            train = order[~torch.isin(order, test)]
            pred = _fit_predict(x[train], y[train], x[test], steps, lr, seed + k)
            correct += int((pred == y[test].bool()).all(dim=1).sum())
    return correct / n


@dataclass(frozen=True)
class EncodingProbe:
    """Probe accuracies on the masks and on the ground truth, and their difference (the encoding excess)."""

    accuracy: float
    control_accuracy: float

    @property
    def excess(self) -> float:
        return self.accuracy - self.control_accuracy

    def metrics(self, prefix: str = "probe") -> dict[str, float]:
        return {
            f"{prefix}/accuracy": self.accuracy,
            f"{prefix}/control_accuracy": self.control_accuracy,
            f"{prefix}/encoding_excess": self.excess,
        }


def encoding_probe(masks: Tensor, gt_masks: Tensor, labels: Tensor, **options: object) -> EncodingProbe:
    """The probe on ``masks`` (N, H, W) in [0, 1] and on ``gt_masks`` (N, H, W) in {0, 1} (void as 0),
    both against ``labels`` (N, C), with the same folds and seeds (``probe_accuracy``'s options)."""
    if masks.shape != gt_masks.shape:
        raise ValueError(f"masks {tuple(masks.shape)} and ground-truth masks {tuple(gt_masks.shape)} differ in shape")
    gt = (gt_masks == 1).float()
    return EncodingProbe(probe_accuracy(masks, labels, **options), probe_accuracy(gt, labels, **options))
