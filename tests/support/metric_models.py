"""Tiny models and a tiny in-memory dataset for the metric tests (imported by the test modules)."""

from __future__ import annotations

import torch
from torch import nn

from attrsearch.data.base import AttributionDataset, DatasetInfo


class TinyCNN(nn.Module):
    """conv-BN-ReLU + global pool + linear: a classifier with a BatchNorm to fold."""

    def __init__(self, num_classes: int = 3, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            self.bn.running_mean.copy_(torch.randn(8, generator=g) * 0.1)
            self.bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        return self.fc(h.mean(dim=(2, 3)))


class ListDataset(AttributionDataset):
    """Samples held in a list (the sample interface of attrsearch.data.base)."""

    def __init__(self, samples, info: DatasetInfo):
        self.samples = samples
        self.info = info
        self.split = "test"

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


def make_dataset(n: int = 6, size: int = 16, num_classes: int = 3, context: bool = True, seed: int = 0) -> ListDataset:
    """Images with one or two square objects per image, exact masks and boxes, a context strip
    under class 0's object, and one unannotated image (has_masks False, masks all 255)."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        labels = torch.zeros(num_classes)
        masks = torch.zeros(num_classes, size, size, dtype=torch.uint8)
        ctx = torch.zeros(size, size, dtype=torch.uint8)
        boxes, box_labels = [], []
        classes = [i % num_classes] + ([(i + 1) % num_classes] if i % 2 else [])
        for j, c in enumerate(classes):
            x0, y0 = 1 + 7 * j, 1 + (i % 3)
            masks[c, y0 : y0 + 5, x0 : x0 + 5] = 1
            labels[c] = 1
            boxes.append([x0, y0, x0 + 5, y0 + 5])
            box_labels.append(c)
            if c == 0 and context:
                ctx[y0 + 6 : y0 + 8, x0 : x0 + 5] = 1
        masks[:, 0, :] = torch.where(labels.bool()[:, None], 255, masks[:, 0, :])  # a void top row
        image = torch.randn(3, size, size, generator=g) * 0.3 + masks.float().clamp(max=1).sum(0)[None] * 0.5
        has = i != n - 1
        samples.append(
            {
                "image": image,
                "labels": labels,
                "masks": masks if has else torch.full_like(masks, 255),
                "has_masks": has,
                "boxes": torch.tensor(boxes, dtype=torch.float32),
                "box_labels": torch.tensor(box_labels, dtype=torch.int64),
                "context": ctx,
                "index": i,
            }
        )
    info = DatasetInfo(
        name="tiny",
        num_classes=num_classes,
        class_names=tuple(f"c{k}" for k in range(num_classes)),
        image_size=size,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        has_context=context,
    )
    return ListDataset(samples, info)


REQUIRED_FULL = [
    "segmentation/iou",
    "segmentation/accuracy",
    "segmentation/saliency",
    "segmentation/saliency_crop",
    "segmentation/mae",
    "class_specific/diagonal",
    "class_specific/off_diagonal",
    "class_specific/selectivity",
    "transfer/masked_in",
    "transfer/masked_out",
    "transfer/inpainted_out",
    "localization/le",
    "localization/om",
    "localization/f1",
    "faithfulness/deletion_auc",
    "faithfulness/insertion_auc",
    "pointing_game/accuracy",
    "context/reliance",
    "context/object_mass",
    "mask/area",
    "mask/entropy",
] + [
    f"sanity/{r}/{m}"
    for r in ("zero", "half", "one", "gt")
    for m in ("accuracy", "iou", "saliency", "saliency_crop", "mae")
]
