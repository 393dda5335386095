import torch
from torch import nn

from attrsearch.data.base import VOID
from attrsearch.masks import ground_truth
from attrsearch.metrics.common import Classifier, box_masks, class_boxes, class_pairs


def test_ground_truth_union_and_void():
    masks = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    masks[0, 0, 0, 0] = 1
    masks[0, 1, 1, 1] = 1
    masks[0, 2, 0, 1] = 1  # class 2 is absent: ignored
    masks[0, :, 1, 0] = VOID
    labels = torch.tensor([[1.0, 1.0, 0.0]])
    g, valid = ground_truth(masks, labels)
    assert g.tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert valid.tolist() == [[[True, True], [False, True]]]


def test_box_masks_use_pixel_centres():
    m = box_masks(torch.tensor([[1.0, 0.0, 3.0, 2.0], [0.6, 0.6, 1.4, 1.4]]), 3, 4)
    assert m[0].int().tolist() == [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert not m[1].any()  # the box holds no pixel centre


def test_class_pairs_and_boxes():
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    pi, pc = class_pairs(labels)
    assert list(zip(pi.tolist(), pc.tolist())) == [(0, 0), (0, 2), (1, 1)]
    boxes = [torch.tensor([[0.0, 0, 1, 1], [1.0, 1, 2, 2], [2.0, 2, 3, 3]]), torch.zeros(0, 4)]
    box_labels = [torch.tensor([2, 0, 2]), torch.zeros(0, dtype=torch.long)]
    got, case = class_boxes(boxes, box_labels, pi, pc)
    assert case.tolist() == [0, 1, 1]  # pair (1, 1) has no box
    assert got.tolist() == [[1.0, 1, 2, 2], [0.0, 0, 1, 1], [2.0, 2, 3, 3]]


def test_classifier_matches_the_model_in_chunks(tiny_cnn):
    x = torch.randn(7, 3, 8, 8)
    clf = Classifier(tiny_cnn, chunk_size=3)
    got = clf(x)
    assert clf._runner is not tiny_cnn  # BatchNorm folded into the conv
    assert torch.allclose(got, tiny_cnn(x), atol=1e-5)
    assert tiny_cnn.bn.running_var is not None  # the wrapped model is untouched


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        pooled = x.mean(dim=(2, 3))
        if pooled.sum() > 0:
            return self.lin(pooled)
        return -self.lin(pooled)


def test_classifier_falls_back_to_the_model_when_it_cannot_be_traced():
    model = Branchy().eval()
    x = torch.randn(4, 3, 5, 5)
    clf = Classifier(model)
    assert torch.allclose(clf(x), model(x))
    assert clf._runner is model


def test_bfloat16_classifier_is_close_and_leaves_the_model_alone(tiny_cnn):
    x = torch.randn(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = tiny_cnn(x)
    for fast in (True, False):
        clf = Classifier(tiny_cnn, chunk_size=4, fast=fast, dtype="bfloat16")
        got = clf(x)
        assert got.dtype == torch.float32 and clf.images_seen == 10
        torch.testing.assert_close(got, ref, atol=2e-2 * ref.abs().max().item(), rtol=0)
        assert not torch.equal(got, ref)  # it did run in bfloat16
    assert all(p.dtype == torch.float32 for p in tiny_cnn.parameters())
