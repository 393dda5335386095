"""``dataset: folder``: images and a CSV of ``|``-separated labels, palette or per-class PNG masks, split
files or a seeded ratio; bad rows and bad files are one line each, before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from attrsearch.cli import main
from attrsearch.config import DataConfig
from attrsearch.data import build_dataset
from attrsearch.data.scan import scan_dataset
from attrsearch.errors import UserError

S = 20  # images are 20 x 20 px, read at 40 px (scale 2)


def write_folder(base: Path, masks: str = "palette") -> Path:
    """6 images ``img/<i>.png``; ``labels.csv`` with labels cat / dog / both / none; ``masks``:
    palette (``seg/<i>.png``: cat = 1 on the left half, dog = 2 on the bottom rows), per_class
    (``seg/<i>_{class}.png``, 0/255), or none (no mask column)."""
    (base / "img").mkdir(parents=True)
    (base / "seg").mkdir()
    labels = ["cat", "dog", "cat|dog", "", "cat", "dog"]
    rows = ["image,labels" + (",mask" if masks != "none" else "")]
    for i, lab in enumerate(labels):
        Image.fromarray(np.full((S, S, 3), 30 * i, np.uint8)).save(base / "img" / f"{i}.png")
        seg = np.zeros((S, S), np.uint8)
        if "cat" in lab:
            seg[:, :10] = 1
        if "dog" in lab:
            seg[15:, :] = 2
        row = f"{i}.png,{lab}"
        if masks == "palette":
            Image.fromarray(seg, mode="L").convert("P").save(base / "seg" / f"{i}.png")
            row += f",../seg/{i}.png"
        elif masks == "per_class":
            for k, name in ((1, "cat"), (2, "dog")):
                Image.fromarray(((seg == k) * 255).astype(np.uint8), mode="L").save(base / "seg" / f"{i}_{name}.png")
            row += ",../seg/" + str(i) + "_{class}.png"
        rows.append(row)
    (base / "labels.csv").write_text("\n".join(rows) + "\n")
    return base


def _cfg(root: Path, **folder) -> DataConfig:
    return DataConfig(dataset="folder", root=root, image_size=2 * S, folder={"images": "img", **folder})


def _splits(root: Path) -> dict:
    for name, items in (("tr.txt", "0.png\n1.png\n2.png\n3.png\n"), ("va.txt", "4.png\n"), ("te.txt", "5.png\n")):
        (root / name).write_text(items)
    return {"train_split": "tr.txt", "val_split": "va.txt", "test_split": "te.txt"}


@pytest.mark.parametrize("kind", ["palette", "per_class"])
def test_labels_masks_and_split_files(tmp_path, kind):
    root = write_folder(tmp_path, kind)
    cfg = _cfg(root, classes=["cat", "dog"], **_splits(root))
    train = build_dataset(cfg, "train", "unused")
    assert [r.name for r in train.records] == ["0.png", "1.png", "2.png", "3.png"]
    assert [r.name for r in build_dataset(cfg, "test", "unused").records] == ["5.png"]
    assert train.info.class_names == ("cat", "dog") and train.info.ground_truth == "masks"
    both = train[2]
    assert both["labels"].tolist() == [1.0, 1.0] and both["has_masks"] is True
    cat, dog = both["masks"].numpy()
    assert cat[:30, :20].all() and not cat[:, 20:].any() and not cat[30:].any()  # left half above the dog
    assert dog[30:].all() and not dog[:30].any()  # rows 15.. -> 30.. (painted last in the writer)
    none = train[3]
    assert none["labels"].sum() == 0 and none["boxes"].shape == (0, 4)


def test_without_masks_and_with_a_ratio_split(tmp_path):
    root = write_folder(tmp_path, "none")
    cfg = _cfg(root, val_fraction=0.2, test_fraction=0.2, split_seed=1)
    parts = {s: build_dataset(cfg, s, "unused") for s in ("train", "val", "test")}
    names = {s: [r.name for r in d.records] for s, d in parts.items()}
    assert [len(names[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert sorted(sum(names.values(), [])) == [f"{i}.png" for i in range(6)]
    assert parts["train"].info.class_names == ("cat", "dog")  # the sorted CSV labels
    assert parts["train"].info.ground_truth == "none"
    s = parts["train"][0]
    assert s["has_masks"] is False and (s["masks"] == 255).all()


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (
            lambda r: (r / "labels.csv").write_text("image,labels\n0.png,cat\n1.png,cow\n"),
            "line 3: unknown class 'cow'",
        ),
        (
            lambda r: (r / "labels.csv").write_text("image,labels\n0.png,cat\n0.png,dog\n"),
            "image 0.png is listed twice",
        ),
        (lambda r: (r / "labels.csv").write_text("file,classes\n0.png,cat\n"), "needs the header columns image,labels"),
        (lambda r: (r / "te.txt").write_text("9.png\n"), "te.txt line 1: 9.png is not an image of the labels file"),
        (lambda r: (r / "te.txt").write_text("4.png\n"), "te.txt: 4.png is listed in the val split too"),
    ],
)
def test_bad_rows_are_one_line(tmp_path, damage, needle):
    root = write_folder(tmp_path, "palette")
    cfg = _cfg(root, classes=["cat", "dog"], **_splits(root))
    damage(root)
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace("|", r"\|")):
        build_dataset(cfg, "train", "unused")


FILE_DAMAGE = {
    "unreadable_image": (lambda r: (r / "img" / "1.png").write_bytes(b"\x00junk"), "1.png: unreadable image"),
    "missing_image": (lambda r: (r / "img" / "2.png").unlink(), "2.png: no such image file"),
    "wrong_size_mask": (
        lambda r: Image.new("P", (10, 10)).save(r / "seg" / "0.png"),
        "0.png: segmentation is 10 x 10 but its image is 20 x 20",
    ),
    "out_of_range_mask": (
        lambda r: Image.fromarray(np.full((S, S), 7, np.uint8), mode="L").save(r / "seg" / "4.png"),
        "4.png: class index 7 outside 1..2",
    ),
    "rgb_class_mask": (
        lambda r: Image.new("RGB", (S, S)).save(r / "seg" / "5_dog.png"),
        "5_dog.png: expected a palette or greyscale PNG",
    ),
}


@pytest.mark.parametrize("case", sorted(FILE_DAMAGE))
def test_the_scan_names_each_bad_file(tmp_path, case):
    damage, needle = FILE_DAMAGE[case]
    root = write_folder(tmp_path, "per_class" if case == "rgb_class_mask" else "palette")
    damage(root)
    with pytest.raises(UserError) as err:
        scan_dataset(_cfg(root, classes=["cat", "dog"]), tmp_path / "cache")
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists()


def test_an_unknown_label_stops_train_before_anything(tmp_path, capsys, make_tiny_experiment):
    root = write_folder(tmp_path / "data", "palette")
    with (root / "labels.csv").open("a") as fh:
        fh.write("5.png,cat|horse,\n")
    (root / "labels.csv").write_text((root / "labels.csv").read_text().replace("5.png,dog,../seg/5.png\n", ""))
    exp = make_tiny_experiment()
    exp["data"] = {
        "dataset": "folder",
        "root": str(root),
        "image_size": 32,
        "folder": {"images": "img", "classes": ["cat", "dog"]},
    }
    exp["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels.csv line 7: unknown class 'horse' (not in data.folder.classes)" in err[0], err
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
