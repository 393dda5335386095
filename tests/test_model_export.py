"""Production export: the exported Explainer gives the checkpoint's masks and runs without config or cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attrsearch.attribution import explainer_attribution
from attrsearch.cli import main
from attrsearch.data import build_dataset, collate_samples
from attrsearch.export import CARD_FILE, PROGRAM_FILE, export_explainer, load_exported
from attrsearch.train.checkpoint import load_explainer

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_exported_explainer_gives_the_checkpoint_masks(tiny_trained_run, tmp_path):
    cfg, run, checkpoint = tiny_trained_run
    card_path = export_explainer(checkpoint, tmp_path / "model")
    card = json.loads(card_path.read_text())
    assert (tmp_path / "model" / PROGRAM_FILE).is_file() and card_path.name == CARD_FILE
    assert card["num_classes"] == len(card["class_names"]) == 4
    assert card["objective"]["name"] == "wysiwyc" and card["input"]["size"] == [32, 32]
    assert "segmentation/iou" in card["test_metrics"] and card["versions"]["torch"] == torch.__version__

    exported = load_exported(tmp_path / "model")
    _, explainer = load_explainer(checkpoint)
    ds = build_dataset(cfg.data, "test", cfg.cache_dir)
    images = collate_samples([ds[i] for i in range(len(ds))])["image"]
    a = explainer_attribution(explainer)(images)
    b = explainer_attribution(exported.module)(images)
    assert a.shape == b.shape == (len(ds), 4, 32, 32)
    assert torch.allclose(a, b, atol=1e-5)


def test_explain_with_the_exported_model_in_a_fresh_process(tiny_trained_run, tmp_path):
    _, _, checkpoint = tiny_trained_run
    export_explainer(checkpoint, tmp_path / "model")
    image = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)).save(image)
    env = {**os.environ, "ATTRSEARCH_CACHE": str(tmp_path / "empty-cache")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "attrsearch.cli",
            "explain",
            "--model",
            str(tmp_path / "model"),
            str(image),
            "--out",
            str(tmp_path / "out"),
            "--top-k",
            "2",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    overlays = sorted((tmp_path / "out").glob("photo_top*.png"))
    assert len(overlays) == 2 and Image.open(overlays[0]).size == (70, 50)
    assert np.load(tmp_path / "out" / "photo.npz")["masks"].shape == (4, 50, 70)
    assert not (tmp_path / "empty-cache").exists()


def test_bad_model_folder_is_one_line(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    assert main(["explain", "--model", str(tmp_path), str(image), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an exported Explainer" in err
