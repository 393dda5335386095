"""The Sobel edge-magnitude reference method, checked against OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from attrsearch.attribution.methods import resolve_method
from attrsearch.attribution.methods.sobel import sobel, sobel_magnitude


def test_magnitude_matches_opencv():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 16, 12)
    ours = sobel_magnitude(images).numpy()
    for b in range(2):
        sq = np.zeros((16, 12))
        for c in range(3):
            plane = images[b, c].double().numpy()
            gx = cv2.Sobel(plane, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
            gy = cv2.Sobel(plane, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
            sq += gx**2 + gy**2
        want = np.sqrt(sq) / np.sqrt(sq).max()
        np.testing.assert_allclose(ours[b], want, atol=1e-6)


def test_step_edge_and_flat_image(small_cnn):
    images = torch.zeros(2, 3, 32, 32)
    images[0, :, :, 16:] = 1.0  # a vertical step between columns 15 and 16
    maps = sobel(small_cnn, images)
    assert maps.shape == (2, 3, 32, 32)
    assert (maps[0, 0, :, 15:17] == 1).all() and (maps[0, 0, :, :14] == 0).all() and (maps[0, 0, :, 18:] == 0).all()
    assert (maps[0] == maps[0, :1]).all()  # the same map for every class
    assert (maps[1] == 0).all()  # no edges, no mass
    targets = torch.tensor([[True, False, True], [False, False, False]])
    assert (sobel(small_cnn, images, targets)[0, 1] == 0).all()


def test_smoothing_spreads_the_edge(small_cnn):
    images = torch.zeros(1, 3, 32, 32)
    images[0, :, :, 16:] = 1.0
    fn, opts = resolve_method("sobel", {"smooth": 2.0})
    maps = fn(small_cnn, images, None, **opts.model_dump())
    assert maps[0, 0, :, 12].min() > 0 and maps.max() <= 1 + 1e-6
