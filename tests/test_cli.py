"""Bad input on the command line: exit status 2, one line naming the field or file, no traceback."""

import subprocess
import sys

import pytest
import yaml

from attrsearch.cli import main


def _config(tmp_path, data, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _run(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "patch, needle",
    [
        ({"explanandum": {"arch": "alexnet9"}}, "explanandum.arch: unknown explanandum 'alexnet9'"),
        ({"explainer": {"arch": "magic"}}, "explainer.arch: unknown explainer 'magic'"),
        ({"data": {"dataset": "mnist"}}, "data.dataset: unknown dataset 'mnist'"),
        ({"objective": {"min_area": 0.4, "max_area": 0.2}}, "min_area (a=0.4) must be < max_area (b=0.2)"),
        ({"objective": {"lambda_area": -0.5}}, "objective.lambda_area: Input should be greater than or equal to 0"),
    ],
)
def test_train_rejects_bad_config_in_one_line(tmp_path, capsys, patch, needle):
    code, err = _run(capsys, ["train", _config(tmp_path, patch), "--out", str(tmp_path / "out")])
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err
    assert not (tmp_path / "out").exists()  # nothing started


def test_train_missing_dataset_folder(tmp_path, capsys):
    missing = tmp_path / "VOCdevkit"
    code, err = _run(
        capsys,
        [
            "train",
            _config(tmp_path, {"data": {"dataset": "voc2007", "root": str(missing)}}),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert code == 2 and len(err.splitlines()) == 1 and str(missing) in err


def test_train_missing_config_file(tmp_path, capsys):
    code, err = _run(capsys, ["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)])
    assert code == 2 and "nope.yaml: no such config file" in err


def test_explain_unreadable_image_and_bad_checkpoint(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    code, err = _run(
        capsys, ["explain", str(broken), "--checkpoint", str(tmp_path / "x.pt"), "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "broken.png: unreadable image" in err
    fake = tmp_path / "fake.pt"
    fake.write_text("hello")
    good = tmp_path / "ok.png"
    from PIL import Image

    Image.new("RGB", (40, 30)).save(good)
    code, err = _run(capsys, ["explain", str(good), "--checkpoint", str(fake), "--out", str(tmp_path / "o")])
    assert code == 2 and "fake.pt: not a readable checkpoint" in err


@pytest.mark.slow
def test_user_error_has_no_traceback_in_a_real_process(tmp_path):
    cfg = _config(tmp_path, {"objective": {"min_area": 0.5, "max_area": 0.1}})
    proc = subprocess.run(
        [sys.executable, "-m", "attrsearch.cli", "train", cfg, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("attrsearch: error: ") and len(proc.stderr.strip().splitlines()) == 1
