"""Pieces every metric family shares: fast chunked classification, ground-truth masks, boxes.

Metrics see attributions as tensors; the only model they run is a frozen classifier, always
through ``Classifier`` so that every image set (masked, cropped, perturbed) is classified in
chunks of a few hundred images with one code path.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn


def _fused_copy(model: nn.Module) -> nn.Module | None:
    """An inference copy with BatchNorm folded into the preceding convs (torch.fx), channels_last.

    Folding conv+BN and channels_last make small CNNs about 3x faster on CPU (measured on the
    64 px ``small_cnn``: 330 -> 1100 images/s on 2 cores). Returns None when the model cannot be
    traced (dynamic control flow); the caller then uses the model itself.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = fuse(copy.deepcopy(model).eval(), inplace=True)
        return fused.to(memory_format=torch.channels_last)
    except Exception:  # noqa: BLE001 - any tracing failure means "use the original"
        return None


def auto_chunk(device: torch.device | str, height: int, width: int) -> int:
    """Images per forward pass when the config leaves it open.

    CPU: about 32 images of 64 x 64 px (131072 pixels per chunk, at least 4 images). Small chunks
    keep the activations in cache: the 64 px ``small_cnn`` on one thread classified ~1300 images/s
    in chunks of 16-32 and ~650 in chunks of 256 (measured on the shared 2-core machine). CUDA: 256
    (large batches fill the GPU).
    """
    if torch.device(device).type == "cuda":
        return 256
    return int(min(256, max(4, 131072 // (height * width))))


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class Classifier:
    """A frozen classifier scored in chunks: images (N, 3, H, W) normalised -> logits (N, C) float32.

    On first use the outputs of a fused copy (see ``_fused_copy``) are compared with the model's own
    on the first images; the copy is used only if they agree (max abs diff <= 1e-3 x the largest
    logit, at least 1e-3), so the speed-up never changes a score beyond float rounding. The wrapped
    model is not modified. ``fast=False`` always runs the model itself (in float32).

    ``dtype="bfloat16"`` (opt-in, ``evaluation.classifier_dtype``) runs a bfloat16 copy of that
    runner on bfloat16 inputs and returns float32 logits: 1.75x faster on this machine's CPU (AMD
    EPYC with avx512_bf16; small_cnn, 64 px, one thread), on CUDA the tensor cores' format; logits
    differ by about 1e-3, deletion / insertion AUCs per image by 5e-4 on average and at most 4.5e-3
    on the built-in data (analysis/benchmarks/bench_quantus.py). A CPU without native bfloat16 may run it slower.
    """

    def __init__(self, model: nn.Module, chunk_size: int = 256, fast: bool = True, dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"Classifier dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.model = model
        self.chunk_size = int(chunk_size)
        self.dtype = DTYPES[dtype]
        self._fast = fast
        self._runner: nn.Module | None = None if fast or self.dtype != torch.float32 else model
        self.images_seen = 0  # images classified so far (cost accounting in benchmarks)

    def _pick_runner(self, probe: Tensor) -> nn.Module:
        if self._runner is None:
            runner = self.model
            fused = _fused_copy(self.model) if self._fast and not self.model.training else None
            if fused is not None:
                with torch.inference_mode():
                    ref = self.model(probe).float()
                    got = fused(probe.contiguous(memory_format=torch.channels_last)).float()
                if got.shape == ref.shape and (got - ref).abs().max().item() <= 1e-3 * max(1.0, ref.abs().max().item()):
                    runner = fused
            if self.dtype != torch.float32:
                runner = (copy.deepcopy(runner) if runner is self.model else runner).to(self.dtype)
            self._runner = runner
        return self._runner

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> Tensor:
        if images.shape[0] == 0:
            raise ValueError("Classifier called with no images")
        runner = self._pick_runner(images[: min(8, images.shape[0])])
        self.images_seen += images.shape[0]
        outs = []
        for start in range(0, images.shape[0], self.chunk_size):
            chunk = images[start : start + self.chunk_size].to(self.dtype)
            outs.append(runner(chunk.contiguous(memory_format=torch.channels_last)).float())
        return torch.cat(outs)


def class_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(image, class) index pairs of the present classes. labels: (B, C) -> two (P,) int64 tensors."""
    idx = labels.bool().nonzero()
    return idx[:, 0], idx[:, 1]


def box_masks(boxes: Tensor, height: int, width: int) -> Tensor:
    """Pixel masks of boxes: a pixel belongs to a box if its centre lies inside.

    boxes: (N, 4) ``x0, y0, x1, y1`` in pixels, x1/y1 exclusive (the sample interface's convention).
    Returns (N, H, W) bool.
    """
    ys = torch.arange(height, device=boxes.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=boxes.device, dtype=torch.float32) + 0.5
    b = boxes.float()
    in_y = (ys[None, :] >= b[:, 1:2]) & (ys[None, :] < b[:, 3:4])  # (N, H)
    in_x = (xs[None, :] >= b[:, 0:1]) & (xs[None, :] < b[:, 2:3])  # (N, W)
    return in_y[:, :, None] & in_x[:, None, :]


def class_boxes(
    boxes: list[Tensor], box_labels: list[Tensor], image_idx: Tensor, class_idx: Tensor
) -> tuple[Tensor, Tensor]:
    """The ground-truth boxes of each (image, class) pair, flattened.

    boxes / box_labels: per image (N_i, 4) float and (N_i,) int64 (the batch's lists).
    image_idx, class_idx: (P,) pairs. Returns (M, 4) boxes and (M,) the pair index of each box.
    """
    out_boxes, out_pair = [], []
    for p, (i, c) in enumerate(zip(image_idx.tolist(), class_idx.tolist())):
        sel = box_labels[i] == c
        if sel.any():
            out_boxes.append(boxes[i][sel].float())
            out_pair.append(torch.full((int(sel.sum()),), p, dtype=torch.long))
    if not out_boxes:
        return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
    return torch.cat(out_boxes), torch.cat(out_pair)
