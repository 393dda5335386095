from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from attrsearch.config import DataConfig
from attrsearch.data import VOID, build_dataset
from attrsearch.data.voc import VOC_CLASSES, find_voc_root
from attrsearch.errors import UserError
from tests.support.data_files import VOC_IMAGES, H, W, voc_segmentation

SIZE = 80  # 40 x 30 -> 80 x 80: x scale 2, y scale 8/3


def _cfg(root, **kw) -> DataConfig:
    return DataConfig(dataset="voc2007", root=root, image_size=SIZE, **kw)


def _nearest(seg: np.ndarray) -> np.ndarray:
    """Pixel-centre nearest neighbour to SIZE x SIZE, written out by hand."""
    src_y = np.floor((np.arange(SIZE) + 0.5) * H / SIZE).astype(int)
    src_x = np.floor((np.arange(SIZE) + 0.5) * W / SIZE).astype(int)
    return seg[src_y][:, src_x]


def test_root_variants(voc_root):
    voc = voc_root / "VOCdevkit" / "VOC2007"
    assert find_voc_root(voc_root) == voc
    assert find_voc_root(voc_root / "VOCdevkit") == voc
    assert find_voc_root(voc) == voc


def test_splits_labels_and_class_order(voc_root):
    train = build_dataset(_cfg(voc_root), "train", "unused")
    assert len(train) == 2 and train.info.num_classes == 20 and train.info.class_names == VOC_CLASSES
    assert not train.info.has_context
    lab_b = train[1]["labels"]
    assert torch.equal(
        torch.nonzero(lab_b).flatten(), torch.tensor([VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")])
    )
    assert VOC_CLASSES.index("person") == 14 and VOC_CLASSES.index("tvmonitor") == 19
    assert len(build_dataset(_cfg(voc_root), "val", "unused")) == 1
    assert len(build_dataset(_cfg(voc_root, max_train=1), "train", "unused")) == 1
    renamed = build_dataset(_cfg(voc_root, voc={"test_split": "train"}), "test", "unused")
    assert len(renamed) == 2


def test_difficult_objects(voc_root):
    bird = VOC_CLASSES.index("bird")
    with_difficult = build_dataset(_cfg(voc_root), "val", "unused")[0]
    without = build_dataset(_cfg(voc_root, voc={"use_difficult": False}), "val", "unused")[0]
    assert with_difficult["labels"][bird] == 1 and without["labels"][bird] == 0
    assert len(with_difficult["boxes"]) == 2 and len(without["boxes"]) == 1


def test_masks_with_void_and_resizing(voc_root):
    ds = build_dataset(_cfg(voc_root), "train", "unused")
    for i, image_id in enumerate(["a", "b"]):
        s = ds[i]
        assert s["has_masks"] is True
        seg = _nearest(voc_segmentation(VOC_IMAGES[image_id][0]))
        masks = s["masks"].numpy()
        assert masks.shape == (20, SIZE, SIZE)
        for k in range(20):
            expected = np.where(seg == VOID, VOID, (seg == k + 1).astype(np.uint8))
            np.testing.assert_array_equal(masks[k], expected)
        assert (masks[:, seg == VOID] == VOID).all() and (seg == VOID).any()
    cat = ds[0]["masks"][VOC_CLASSES.index("cat")]
    assert cat[40, 10] == 1 and cat[40, 60] == 0 and cat[0, 10] == VOID and cat[40, 40] == VOID


def test_unsegmented_images_are_all_void(voc_root):
    s = build_dataset(_cfg(voc_root), "val", "unused")[0]
    assert s["has_masks"] is False
    assert (s["masks"] == VOID).all()
    assert s["context"].shape == (SIZE, SIZE) and not s["context"].any()


def test_boxes_and_image_are_resized(voc_root):
    s = build_dataset(_cfg(voc_root), "train", "unused")[1]  # image b
    # dog (21, 11, 40, 20) 1-based inclusive -> [20, 10, 40, 20) -> x * 2, y * 8/3
    np.testing.assert_allclose(s["boxes"][0].numpy(), [40, 10 * SIZE / H, 80, 20 * SIZE / H], rtol=1e-6)
    assert s["box_labels"].tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]
    img = s["image"]
    assert img.shape == (3, SIZE, SIZE) and img.dtype == torch.float32
    mean = torch.tensor(build_dataset(_cfg(voc_root), "train", "unused").info.mean).view(3, 1, 1)
    std = torch.tensor(build_dataset(_cfg(voc_root), "train", "unused").info.std).view(3, 1, 1)
    rgb = (img * std + mean) * 255
    assert abs(rgb[0, 40, 70].item() - 200) < 12 and abs(rgb[1, 40, 70].item() - 30) < 12  # right half red


def test_custom_classes(voc_root):
    with pytest.raises(UserError, match="unknown class 'cat'"):
        build_dataset(_cfg(voc_root, voc={"classes": ["dog", "person"]}), "train", "unused")


def test_missing_paths_name_the_path(voc_root, tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        build_dataset(_cfg(tmp_path / "nowhere"), "train", "unused")
    with pytest.raises(UserError, match="no VOC2007 folder"):
        build_dataset(_cfg(tmp_path), "train", "unused")
    copy = tmp_path / "copy"
    shutil.copytree(voc_root, copy)
    voc = copy / "VOCdevkit" / "VOC2007"
    (voc / "ImageSets" / "Main" / "test.txt").unlink()
    with pytest.raises(UserError, match=r"ImageSets/Main/test\.txt"):
        build_dataset(_cfg(copy), "test", "unused")
    shutil.rmtree(voc / "Annotations")
    with pytest.raises(UserError, match="Annotations: no such folder"):
        build_dataset(_cfg(copy), "train", "unused")


def test_unreadable_image_names_the_file(voc_root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(voc_root, copy)
    bad = copy / "VOCdevkit" / "VOC2007" / "JPEGImages" / "a.jpg"
    bad.write_bytes(b"not a jpeg at all")
    ds = build_dataset(_cfg(copy), "train", "unused")
    with pytest.raises(UserError, match=r"a\.jpg: unreadable image"):
        ds[0]
    bad.unlink()
    with pytest.raises(UserError, match=r"a\.jpg: no such image file"):
        build_dataset(_cfg(copy), "train", "unused")
