"""Segmentation-style scores of the aggregated mask (Stalder et al. 2022, section 4.3, Tab. 2).

Per image, on the target mask m (pixel-wise max of the present classes' masks) and the union
ground truth g, over the valid (non-void) pixels only, then averaged over images:

- accuracy (soft, no thresholding): (sum m*g + sum (1-m)*(1-g)) / Z
- iou (continuous): sum min(m, g) / sum max(m, g)
- mae: sum |m - g| / Z
- saliency (Stalder et al. 2022 eq. 9, the in-place variant):
  log(max(mean(m), 0.05)) - log(sum_{c in Y} softmax(F(m*x))_c)
- saliency_crop (Dabkowski & Gal's original): crop the tightest box around the salient region
  (m > 0.5), rescale it to the input size keeping its aspect ratio (padding with the mean colour),
  classify; area = the box's share of the image. Reviewers of Stalder et al. 2022 note that
  the rescaling changes the object's scale and that the score favours small regions, which is why
  both variants are reported, under separate names, and never mixed.

The sanity rows score constant masks 0, 0.5, 1 and the ground truth itself with the same functions
(under saliency_crop the 0.5 mask has no salient pixel, m > 0.5, so it scores like the 0 mask).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import roi_align

from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, Tables, register_family

SANITY_ROWS = ("zero", "half", "one", "gt")
AREA_FLOOR = 0.05  # Dabkowski & Gal's lower bound on the area term


def soft_accuracy(m: Tensor, g: Tensor, valid: Tensor) -> Tensor:
    """m, g: (B, H, W) in [0, 1]; valid: (B, H, W) bool. Returns (B,) in [0, 1] (1 = perfect)."""
    v = valid.float()
    agree = m * g + (1.0 - m) * (1.0 - g)
    return (agree * v).sum(dim=(1, 2)) / v.sum(dim=(1, 2)).clamp_min(1.0)


def continuous_iou(m: Tensor, g: Tensor, valid: Tensor) -> Tensor:
    """sum min(m, g) / sum max(m, g) over valid pixels. (B, H, W) -> (B,) in [0, 1]; 1 when both are empty."""
    v = valid.float()
    inter = (torch.minimum(m, g) * v).sum(dim=(1, 2))
    union = (torch.maximum(m, g) * v).sum(dim=(1, 2))
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.ones_like(union))


def mean_absolute_error(m: Tensor, g: Tensor, valid: Tensor) -> Tensor:
    """mean |m - g| over valid pixels. (B, H, W) -> (B,) in [0, 1] (0 = perfect)."""
    v = valid.float()
    return ((m - g).abs() * v).sum(dim=(1, 2)) / v.sum(dim=(1, 2)).clamp_min(1.0)


def saliency_from_logits(logits: Tensor, labels: Tensor, area: Tensor) -> Tensor:
    """Seed 002 eq. 9: log(max(area, 0.05)) - log(sum_{c in Y} softmax(logits)_c). Lower is better.

    logits: (B, C) of the masked (or cropped) image; labels: (B, C) multi-hot, at least one class
    per image; area: (B,) in [0, 1]. The log of the summed softmax is computed as
    logsumexp(logits_Y) - logsumexp(logits) (exact, no clamping).
    """
    logits = logits.float()
    present = labels.bool()
    log_p = torch.logsumexp(logits.masked_fill(~present, float("-inf")), dim=1) - torch.logsumexp(logits, dim=1)
    return area.clamp_min(AREA_FLOOR).log() - log_p


def salient_boxes(binary: Tensor) -> tuple[Tensor, Tensor]:
    """Tightest box around the True pixels of each mask.

    binary: (B, H, W) bool. Returns boxes (B, 4) float ``x0, y0, x1, y1`` (x1/y1 exclusive) and
    empty (B,) bool for masks without any True pixel (their box is all zeros).
    """
    b, h, w = binary.shape
    rows, cols = binary.any(dim=2), binary.any(dim=1)  # (B, H), (B, W)
    empty = ~rows.any(dim=1)
    y0 = rows.int().argmax(dim=1)
    y1 = h - rows.flip(1).int().argmax(dim=1)
    x0 = cols.int().argmax(dim=1)
    x1 = w - cols.flip(1).int().argmax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return boxes.masked_fill(empty[:, None], 0.0), empty


def crop_salient(images: Tensor, binary: Tensor) -> tuple[Tensor, Tensor]:
    """Dabkowski & Gal's crop: the tightest box around the salient region, rescaled to the input
    size keeping its aspect ratio (the longer side fills the image, the rest is zero = mean colour).

    images: (B, 3, H, W) normalised; binary: (B, H, W) bool salient region.
    Returns crops (B, 3, H, W) and area (B,): the box's share of the image, in [0, 1].
    An empty region gives an all-zero (mean colour) image and area 0.
    Batched with torchvision's roi_align (bilinear) on a square window centred on the box.
    """
    b, _, h, w = images.shape
    boxes, empty = salient_boxes(binary)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    area = bw * bh / (h * w)
    # A window with the output's aspect ratio that contains the box, centred on it.
    scale = torch.maximum(bw / w, bh / h).clamp_min(1e-6)  # input pixels per output pixel
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    win = torch.stack([cx - scale * w / 2, cy - scale * h / 2, cx + scale * w / 2, cy + scale * h / 2], dim=1)
    rois = torch.cat([torch.arange(b, device=win.device, dtype=win.dtype)[:, None], win], dim=1)
    crops = roi_align(images.float(), rois, output_size=(h, w), spatial_scale=1.0, sampling_ratio=1, aligned=True)
    # Keep only output pixels whose centre maps inside the box: the rest is padding.
    ys = torch.arange(h, device=win.device, dtype=win.dtype) + 0.5
    xs = torch.arange(w, device=win.device, dtype=win.dtype) + 0.5
    src_y = win[:, 1:2] + ys[None, :] * scale[:, None]  # (B, H) input row of each output row centre
    src_x = win[:, 0:1] + xs[None, :] * scale[:, None]  # (B, W)
    in_y = (src_y >= boxes[:, 1:2]) & (src_y < boxes[:, 3:4])
    in_x = (src_x >= boxes[:, 0:1]) & (src_x < boxes[:, 2:3])
    keep = in_y[:, :, None] & in_x[:, None, :] & ~empty[:, None, None]
    return crops * keep[:, None].to(crops.dtype), area


def constant_mask(kind: str, g: Tensor) -> Tensor:
    """The sanity-row mask ``kind`` in SANITY_ROWS for ground truth g (B, H, W): 0, 0.5, 1 or g itself."""
    if kind == "gt":
        return g
    value = {"zero": 0.0, "half": 0.5, "one": 1.0}[kind]
    return torch.full_like(g, value)


def _logits_or_zero(classify, images: Tensor, empty: Tensor, zero_logits: Tensor) -> Tensor:
    """Classify images (N, 3, H, W), except those flagged empty (N,) bool (all mean colour), which
    take ``zero_logits`` (1, C). Returns (N, C)."""
    out = zero_logits.expand(images.shape[0], -1).clone()
    if (~empty).any():
        out[~empty] = classify(images[~empty])
    return out


@register_family("segmentation")
class SegmentationScorer(Scorer):
    """``segmentation/*`` of the target mask and the ``sanity/*`` rows, on annotated images only.

    ``iou_only``: the fast suite's ``segmentation/iou`` alone (no sanity rows, no forward passes).
    The ground truth is the dataset's (``DatasetInfo.ground_truth``), recorded as the text record
    ``segmentation/ground_truth``: ``masks``, ``boxes`` (box masks: the data has no segmentation),
    ``masks+boxes``; for ``none`` (no pixel ground truth at all) every segmentation/* and sanity/*
    metric is omitted with one note, never scored against an empty ground truth.
    """

    family = "segmentation"

    def __init__(self, setup: EvaluationSetup, iou_only: bool = False) -> None:
        super().__init__(setup)
        self.iou_only = iou_only
        self.needs = frozenset() if iou_only else frozenset({"masked_logits", "clean_logits"})
        truth = str(getattr(setup.info, "ground_truth", "masks"))
        self.skip = truth == "none"
        self.params["segmentation/ground_truth"] = truth
        if self.skip:
            self.needs = frozenset()
            if not iou_only:
                self.notes.append(
                    "segmentation: the data has no pixel ground truth (no masks; boxes skipped or absent);"
                    " segmentation/* and sanity/* omitted"
                )
        elif truth != "masks" and not iou_only:
            which = "the images" if truth == "boxes" else "some images"
            self.notes.append(
                f"segmentation: {which} of the data have no segmentation; their annotation boxes, drawn as masks,"
                f" are the ground truth of segmentation/* and sanity/* (segmentation/ground_truth = {truth})"
            )

    def update(self, ctx: BatchContext) -> None:
        if self.skip:
            return
        a = ctx.annotated
        self.values.add("segmentation/iou", continuous_iou(ctx.m[a], ctx.g[a], ctx.valid[a]))
        if self.iou_only or not a.any():
            return
        clf, zero = ctx.classifier, ctx.zero_logits
        xa, ya, ma, ga, va = ctx.images[a], ctx.labels[a], ctx.m[a], ctx.g[a], ctx.valid[a]
        self.values.add("segmentation/images", torch.ones(xa.shape[0]))
        thr = ctx.cfg.saliency_crop_threshold

        def crop_logits(mask: Tensor) -> tuple[Tensor, Tensor]:
            crops, area = crop_salient(xa, mask > thr)
            empty = ~(mask > thr).flatten(1).any(dim=1)
            return _logits_or_zero(clf, crops, empty, zero), area

        rows: dict[str, tuple[Tensor, Tensor]] = {"": (ma, ctx.masked_logits[a])}
        for row in SANITY_ROWS:
            mask = constant_mask(row, ga)
            if row == "zero":
                logits = zero.expand(xa.shape[0], -1)
            elif row == "one":
                logits = ctx.clean_logits[a]
            else:
                logits = clf(xa * mask[:, None])
            rows[row] = (mask, logits)
        for row, (mask, logits) in rows.items():
            prefix = f"sanity/{row}" if row else "segmentation"
            if row:  # the main row's IoU is collected above, with the fast metrics
                self.values.add(f"{prefix}/iou", continuous_iou(mask, ga, va))
            self.values.add(f"{prefix}/accuracy", soft_accuracy(mask, ga, va))
            self.values.add(f"{prefix}/mae", mean_absolute_error(mask, ga, va))
            self.values.add(f"{prefix}/saliency", saliency_from_logits(logits, ya, mask.mean(dim=(1, 2))))
            if row == "one":  # the crop of the whole image is the image (tests/metrics/test_segmentation.py)
                c_logits, c_area = logits, torch.ones_like(mask[:, 0, 0])
            else:
                c_logits, c_area = crop_logits(mask)
            self.values.add(f"{prefix}/saliency_crop", saliency_from_logits(c_logits, ya, c_area))

    def compute(self) -> tuple[dict[str, float], Tables]:
        if self.skip:
            return {}, {}
        metrics = self.values.means()
        if not self.iou_only:
            metrics["segmentation/images"] = float(self.values.all("segmentation/images").numel())
        return metrics, {}
