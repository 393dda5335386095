"""``--refine T`` on the command line: ``explain`` and ``evaluate`` follow a trained Explainer by T steps
of the ranking objective; with an exported model, a baseline method or bad values: exit 2, one line."""

import json

import numpy as np
import pytest
from PIL import Image

from attrsearch.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_checkpoint(tiny_trained_run):
    return tiny_trained_run[2]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _run(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_explain_refine_writes_refined_masks(trained_checkpoint, photo, tmp_path, capsys):
    outs = {}
    for steps in (0, 2):
        out = tmp_path / f"out{steps}"
        code, err = _run(
            capsys,
            ["explain", str(photo), "--checkpoint", str(trained_checkpoint), "--out", str(out)]
            + (["--refine", str(steps), "--refine-lr", "0.2"] if steps else []),
        )
        assert code == 0, err
        assert len(list(out.glob("photo_top*.png"))) == 3
        outs[steps] = np.load(out / "photo.npz")
    assert int(outs[0]["refine_steps"]) == 0 and int(outs[2]["refine_steps"]) == 2
    plain, refined = outs[0]["masks"].astype(np.float32), outs[2]["masks"].astype(np.float32)
    assert refined.shape == plain.shape == (4, 40, 56)
    assert refined.min() >= 0.0 and refined.max() <= 1.0
    assert np.abs(refined - plain).max() > 1e-2


def test_evaluate_refine_records_the_steps(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    code, err = _run(
        capsys,
        ["evaluate", "--checkpoint", str(trained_checkpoint), "--suite", "fast", "--refine", "2", "--out", str(out)],
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["attribution/refine_steps"] == 2
    assert "2 steps of test-time refinement" in metrics["attribution/description"]
    assert metrics["attribution/seconds_per_image"] > 0 and "segmentation/iou" in metrics


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["explain", "IMG", "--model", "MODEL", "--refine", "2"], "--refine needs --checkpoint"),
        (["explain", "IMG", "--checkpoint", "CKPT", "--refine", "-1"], "--refine: expected a number of steps >= 0"),
        (["explain", "IMG", "--checkpoint", "CKPT", "--refine", "1", "--refine-lr", "0"], "--refine-lr"),
        (["evaluate", "--checkpoint", "CKPT", "--method", "center", "--refine", "2"], "not a baseline method"),
        (["evaluate", "--checkpoint", "CKPT", "--refine", "-3"], "--refine: expected a number of steps >= 0"),
        (["evaluate", "--checkpoint", "CKPT", "--refine-lr", "0.5"], "--refine-lr needs --refine"),
    ],
)
def test_refine_misuse_is_one_line(trained_checkpoint, photo, tmp_path, capsys, argv, needle):
    fill = {"IMG": str(photo), "MODEL": str(tmp_path), "CKPT": str(trained_checkpoint)}
    out = tmp_path / "out"
    code, err = _run(capsys, [fill.get(a, a) for a in argv] + ["--out", str(out)])
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()  # refused before any work
