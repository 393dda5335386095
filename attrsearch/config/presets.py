"""The four published presets of the wysiwyc objective (Stalder et al. 2022, the authors' public code).

Each preset fills the loss weights and the learning rate that the user did not set
explicitly; explicit fields always win.
"""

from __future__ import annotations

# preset: (lr, lambda_entropy, lambda_tv, lambda_bound, lambda_area, lambda_nontarget_area)
_TABLE = {
    "vgg16_voc": (1e-5, 1.0, 1.0, 1.0, 0.1, 0.3),
    "resnet50_voc": (1e-4, 3.0, 1.0, 0.8, 0.01, 0.3),
    "vgg16_coco": (1e-5, 1.0, 0.3, 0.3, 0.03, 0.1),
    "resnet50_coco": (1e-5, 3.0, 0.05, 0.1, 0.01, 0.03),
}

LOSS_PRESETS: dict[str, dict[str, float]] = {
    name: {
        "lambda_entropy": le,
        "lambda_tv": ltv,
        "lambda_bound": lb,
        "lambda_area": la,
        "lambda_nontarget_area": lnt,
        # Public defaults shared by every preset.
        "min_area": 0.05,
        "max_area": 0.3,
    }
    for name, (_, le, ltv, lb, la, lnt) in _TABLE.items()
}

PRESET_LR: dict[str, float] = {name: row[0] for name, row in _TABLE.items()}
