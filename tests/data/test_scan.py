"""The pre-flight scan (``attrsearch.data.scan``): every bad image or mask of a VOC or COCO folder stops
``attrsearch train`` / ``evaluate`` / ``sweep`` with exit 2 and one stderr line naming the file, before
anything is trained, cached or written into ``--out``; a clean scan is cached and not repeated."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from attrsearch.cli import main
from attrsearch.config import DataConfig
from attrsearch.data import scan as scan_module
from attrsearch.data.export import voc_palette
from attrsearch.data.scan import ends_complete, scan_dataset
from attrsearch.errors import UserError
from tests.support.image_files import forged_png, noise_rgb, truncate

REPO = Path(__file__).resolve().parents[2]


def _voc(tmp_path, voc_root) -> Path:
    """A private copy of the tiny VOC fixture; returns its VOC2007 folder."""
    shutil.copytree(voc_root, tmp_path / "data")
    return tmp_path / "data" / "VOCdevkit" / "VOC2007"


def _coco(tmp_path, coco_root) -> Path:
    shutil.copytree(coco_root, tmp_path / "data")
    return tmp_path / "data"


def _save_mask(path: Path, seg: np.ndarray) -> None:
    img = Image.fromarray(seg.astype(np.uint8)).convert("P")
    img.putpalette(voc_palette())
    img.save(path)


# name -> (damage(VOC2007 folder) -> None, what the one line must contain)
VOC_DAMAGE = {
    "truncated_jpeg": (lambda v: truncate(v / "JPEGImages" / "a.jpg"), "a.jpg: unreadable image (truncated)"),
    "truncated_png": (
        lambda v: (
            (v / "JPEGImages" / "b.jpg").unlink(),
            Image.fromarray(noise_rgb()).save(v / "JPEGImages" / "b.png"),
            truncate(v / "JPEGImages" / "b.png"),
        ),
        "b.png: unreadable image",
    ),
    "missing_image": (lambda v: (v / "JPEGImages" / "c.jpg").unlink(), "c.jpg: no such image file"),
    "rgb_mask": (
        lambda v: Image.open(v / "SegmentationClass" / "a.png").convert("RGB").save(v / "SegmentationClass" / "a.png"),
        "a.png: expected a palette or greyscale PNG of class indices, got mode RGB",
    ),
    "out_of_range_mask": (
        lambda v: _save_mask(v / "SegmentationClass" / "b.png", np.full((30, 40), 30)),
        "b.png: class index 30 outside 1..20 (and 255 void)",
    ),
    "wrong_size_mask": (
        lambda v: _save_mask(v / "SegmentationClass" / "a.png", np.zeros((15, 20))),
        "a.png: segmentation is 20 x 15 but its image is 40 x 30 (masks are never resized to fit)",
    ),
    "bomb_header": (
        lambda v: ((v / "JPEGImages" / "d.jpg").unlink(), forged_png(v / "JPEGImages" / "d.png", 40000, 40000)),
        "d.png: refused, a possible decompression bomb",
    ),
}


def _experiment(tmp_path, make_tiny_experiment, data: dict) -> Path:
    exp = make_tiny_experiment()
    exp["data"] = {"image_size": 32, **data}
    exp["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def _refused(capsys, argv: list[str], tmp_path, needle: str) -> str:
    """``main(argv)`` exits 2 with one stderr line holding ``needle``; nothing cached, no ``--out``."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert needle in err[0], err[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    return err[0]


@pytest.mark.parametrize("case", sorted(VOC_DAMAGE))
def test_bad_voc_file_stops_train_before_anything(tmp_path, capsys, voc_root, make_tiny_experiment, case):
    damage, needle = VOC_DAMAGE[case]
    voc = _voc(tmp_path, voc_root)
    damage(voc)
    exp = _experiment(tmp_path, make_tiny_experiment, {"dataset": "voc2007", "root": str(voc)})
    _refused(capsys, ["train", str(exp), "--out", str(tmp_path / "out")], tmp_path, needle)


def test_every_bad_file_is_counted_in_the_one_line(tmp_path, voc_root):
    voc = _voc(tmp_path, voc_root)
    for case in ("truncated_jpeg", "out_of_range_mask", "bomb_header"):
        VOC_DAMAGE[case][0](voc)
    with pytest.raises(UserError) as err:
        scan_dataset(DataConfig(dataset="voc2007", root=voc), tmp_path / "cache")
    assert str(err.value).startswith(f"{voc / 'JPEGImages' / 'a.jpg'}: unreadable image (truncated)")
    assert str(err.value).endswith("(and 2 more bad files)")
    assert not (tmp_path / "cache").exists()


COCO_DAMAGE = {
    "missing_image": (lambda c: (c / "train2014" / "007.jpg").unlink(), "007.jpg: no such image file"),
    "size_differs_from_annotation": (
        lambda c: Image.fromarray(noise_rgb(20, 20)).save(c / "train2014" / "009.jpg"),
        "009.jpg: image is 20 x 20 but its annotation says 40 x 30",
    ),
    "truncated_test_image": (
        lambda c: truncate(c / "val2014" / "001.jpg", 0.5),
        "001.jpg: unreadable image (truncated)",
    ),
}


@pytest.mark.parametrize("case", sorted(COCO_DAMAGE))
def test_bad_coco_file_stops_train_before_anything(tmp_path, capsys, coco_root, make_tiny_experiment, case):
    damage, needle = COCO_DAMAGE[case]
    root = _coco(tmp_path, coco_root)
    damage(root)
    exp = _experiment(tmp_path, make_tiny_experiment, {"dataset": "coco2014", "root": str(root)})
    _refused(capsys, ["train", str(exp), "--out", str(tmp_path / "out")], tmp_path, needle)


def test_a_clean_scan_is_cached_by_the_fingerprint(tmp_path, voc_root, monkeypatch):
    voc = _voc(tmp_path, voc_root)
    cfg = DataConfig(dataset="voc2007", root=voc)
    scan_dataset(cfg, tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache" / "scans").glob("*/*") if p.is_dir()) == ["test", "train", "val"]

    def no_rescan(targets, threads=None):
        raise AssertionError("scanned again")

    monkeypatch.setattr(scan_module, "check_targets", no_rescan)
    scan_dataset(cfg, tmp_path / "cache")  # cached: no rescan
    split_file = voc / "ImageSets" / "Main" / "train.txt"
    split_file.write_text(split_file.read_text() + "c\n")  # a new dataset version: another fingerprint
    with pytest.raises(AssertionError, match="scanned again"):
        scan_dataset(cfg, tmp_path / "cache")
    with pytest.raises(AssertionError, match="scanned again"):
        scan_dataset(cfg.model_copy(update={"max_train": 1}), tmp_path / "cache")  # another config


def test_built_in_data_needs_no_scan(tmp_path, tiny_shapes):
    scan_dataset(tiny_shapes(), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_end_markers_decide_without_decoding(tmp_path):
    jpg, png = tmp_path / "x.jpg", tmp_path / "x.png"
    Image.fromarray(noise_rgb()).save(jpg, quality=90)
    Image.fromarray(noise_rgb()).save(png)
    assert ends_complete(jpg, "JPEG") and ends_complete(png, "PNG")
    assert not ends_complete(truncate(jpg, 0.95), "JPEG") and not ends_complete(truncate(png, 0.95), "PNG")
    assert not ends_complete(png, "BMP")  # other formats are always decoded in full


def test_bytes_after_the_end_marker_are_decoded_not_refused(tmp_path, voc_root):
    """A JPEG with bytes appended after EOI (some cameras pad) is complete: the full decode says so."""
    voc = _voc(tmp_path, voc_root)
    path = voc / "JPEGImages" / "a.jpg"
    path.write_bytes(path.read_bytes() + b"padding-after-eoi")
    scan_dataset(DataConfig(dataset="voc2007", root=voc), tmp_path / "cache")


def _checkpoint(tmp_path, make_tiny_experiment, data: dict) -> Path:
    """An untrained Explainer checkpoint whose config reads ``data`` (enough for ``evaluate`` to start)."""
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.train.checkpoint import build_explainer, save_checkpoint

    exp = make_tiny_experiment()
    exp["data"] = {"image_size": 32, **data}
    exp["cache_dir"] = str(tmp_path / "cache")
    cfg = validate(ExperimentConfig, exp)
    model = build_explainer(cfg, 20, 32)
    state = {
        "config": cfg.model_dump(mode="json"), "num_classes": 20, "class_names": [f"c{i}" for i in range(20)],
        "image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3, "explainer": model.state_dict(),
    }  # fmt: skip
    return save_checkpoint(tmp_path / "ck" / "best.pt", state)


def test_bad_file_stops_evaluate_before_anything(tmp_path, capsys, voc_root, make_tiny_experiment):
    voc = _voc(tmp_path, voc_root)
    VOC_DAMAGE["rgb_mask"][0](voc)
    ck = _checkpoint(tmp_path, make_tiny_experiment, {"dataset": "voc2007", "root": str(voc)})
    argv = ["evaluate", "--checkpoint", str(ck), "--out", str(tmp_path / "out")]
    _refused(capsys, argv, tmp_path, "a.png: expected a palette")


def test_bad_file_stops_sweep_before_ray(tmp_path, voc_root, make_tiny_experiment):
    voc = _voc(tmp_path, voc_root)
    VOC_DAMAGE["truncated_jpeg"][0](voc)
    base = make_tiny_experiment()
    base["data"] = {"dataset": "voc2007", "root": str(voc), "image_size": 32}
    sweep = {
        "name": "scan", "base": base, "search": {"loss.lambda_tv": {"loguniform": [0.01, 1.0]}},
        "objective": "segmentation/iou", "num_samples": 1, "resources_per_trial": {"cpu": 1},
        "wandb": {"mode": "disabled"}, "storage": str(tmp_path / "results"),
    }  # fmt: skip
    path = tmp_path / "scan.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    env = {**os.environ, "ATTRSEARCH_CACHE": str(tmp_path / "cache")}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-m", "attrsearch.cli", "sweep", str(path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(err) == 1 and "a.jpg: unreadable image (truncated)" in err[0], err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_bad_file_stops_data_export_before_writing(tmp_path, capsys, voc_root, make_tiny_experiment):
    voc = _voc(tmp_path, voc_root)
    VOC_DAMAGE["wrong_size_mask"][0](voc)
    exp = _experiment(tmp_path, make_tiny_experiment, {"dataset": "voc2007", "root": str(voc)})
    argv = ["data", "export", "--config", str(exp), "--format", "coco", "--out", str(tmp_path / "out")]
    _refused(capsys, argv, tmp_path, "a.png: segmentation is 20 x 15")
