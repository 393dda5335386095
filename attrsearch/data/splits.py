"""Holding val and test images out of one annotation file by a ratio and a seed (COCO-format and
folder datasets), the same way for every dataset.

The items (records sorted by image id, or CSV rows in file order) are permuted once with
``numpy.random.default_rng(seed)``; the first ``round(test_fraction * n)`` positions of the
permutation are test, the next ``round(val_fraction * n)`` val (each at least one image when it is
held out at all and n >= 2), the rest train. Every part keeps the items' order. The partition
depends only on n, the fractions and the seed, so it never changes between runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from attrsearch.errors import UserError

T = TypeVar("T")


def held_out_count(fraction: float | None, n: int) -> int:
    """How many of ``n`` items a fraction holds out: 0 for None, else ``round(fraction * n)``, at least 1 (n >= 2)."""
    if fraction is None or n < 2:
        return 0
    return max(1, round(fraction * n))


def partition(
    items: Sequence[T], val_fraction: float | None, test_fraction: float | None, seed: int, where: str
) -> tuple[list[T], list[T], list[T]]:
    """(train, val, test) parts of ``items``; a fraction of None holds nothing out for that split.
    ``UserError`` naming ``where`` when the hold-outs would leave no training image."""
    n = len(items)
    n_test, n_val = held_out_count(test_fraction, n), held_out_count(val_fraction, n)
    if n and n_test + n_val >= n:
        raise UserError(f"{where}: {n} annotated images are too few to hold out {n_val} for val and {n_test} for test")
    order = np.random.default_rng(seed).permutation(n)
    test = set(order[:n_test].tolist())
    val = set(order[n_test : n_test + n_val].tolist())
    parts: tuple[list[T], list[T], list[T]] = ([], [], [])
    for i, item in enumerate(items):
        parts[2 if i in test else 1 if i in val else 0].append(item)
    return parts
