"""`attrsearch train`, resume and `attrsearch explain` on a seconds-sized config, through the CLI."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from attrsearch.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_trained_run(tmp_path_factory, make_tiny_experiment):
    root = tmp_path_factory.mktemp("e2e")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(make_tiny_experiment()))
    out = root / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    return cfg, out


def test_train_writes_checkpoints_metrics_and_tables(cli_trained_run):
    _, out = cli_trained_run
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "checkpoints" / "best.pt").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("segmentation/iou", "mask/area", "train/epochs", "explanandum/test_map"):
        assert key in metrics and isinstance(metrics[key], float)
    assert 0.0 <= metrics["segmentation/iou"] <= 1.0
    assert any((out / "tables").glob("*.csv"))
    history = json.loads((out / "history.json").read_text())
    assert len(history["seed3"]) == 2


def test_rerun_resumes_instead_of_retraining(cli_trained_run, capsys):
    cfg, out = cli_trained_run
    before = (out / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    assert "resuming seed 3 after epoch 2" in capsys.readouterr().out
    assert (out / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_other_config_into_same_folder_is_refused(cli_trained_run, capsys):
    cfg, out = cli_trained_run
    assert main(["train", str(cfg), "--out", str(out), "--set", "objective.lambda_tv=0.5"]) == 2
    assert "holds a run of a different config" in capsys.readouterr().err


def test_explain_images_of_any_size(cli_trained_run, tmp_path):
    _, out = cli_trained_run
    sizes = [(40, 30), (97, 121)]
    paths = []
    for i, (w, h) in enumerate(sizes):
        rgb = np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(rgb).save(paths[-1])
    dest = tmp_path / "explained"
    assert (
        main(
            [
                "explain",
                *map(str, paths),
                "--checkpoint",
                str(out / "checkpoints" / "best.pt"),
                "--out",
                str(dest),
                "--top-k",
                "2",
            ]
        )
        == 0
    )
    for (w, h), path in zip(sizes, paths):
        data = np.load(dest / f"{path.stem}.npz")
        assert data["masks"].shape == (4, h, w)
        assert data["scores"].shape == (4,) and list(data["class_names"])[:1]
        overlays = sorted(dest.glob(f"{path.stem}_top*.png"))
        assert len(overlays) == 2
        assert Image.open(overlays[0]).size == (w, h)
