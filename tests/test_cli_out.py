"""``--out`` that is an existing file (or lies inside one) is one line, exit 2, before any work: nothing
cached, the file untouched. ``report --out`` names the HTML file itself and is not affected."""

from __future__ import annotations

import pytest
import yaml

from attrsearch.cli import main


def _argv(command: str, out: str, tmp_path, tiny_experiment) -> list[str]:
    tiny_experiment["cache_dir"] = str(tmp_path / "cache")
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(tiny_experiment))
    image = tmp_path / "img.png"
    image.write_bytes(b"")  # never read: --out is checked first
    return {
        "train": ["train", str(exp), "--out", out],
        "evaluate": ["evaluate", "--checkpoint", str(tmp_path / "ck.pt"), "--out", out],
        "explain": ["explain", str(image), "--checkpoint", str(tmp_path / "ck.pt"), "--out", out],
        "export": ["export", "--checkpoint", str(tmp_path / "ck.pt"), "--out", out],
        "data export": ["data", "export", "--format", "voc", "--out", out],
    }[command]


@pytest.mark.parametrize("command", ["train", "evaluate", "explain", "export", "data export"])
@pytest.mark.parametrize("where", ["is_the_file", "inside_the_file"])
def test_out_that_is_a_file_is_one_line(tmp_path, capsys, monkeypatch, tiny_experiment, command, where):
    monkeypatch.setenv("ATTRSEARCH_CACHE", str(tmp_path / "cache"))
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    out = afile if where == "is_the_file" else afile / "sub"
    assert main(_argv(command, str(out), tmp_path, tiny_experiment)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    expected = "--out is an existing file, not a folder" if where == "is_the_file" else "which is a file, not a folder"
    assert err[0].startswith(f"attrsearch: error: {out}: --out ") and expected in err[0], err[0]
    assert afile.read_text() == "keep me"
    assert not (tmp_path / "cache").exists()


def test_run_training_refuses_a_file_as_its_folder(tmp_path, tiny_experiment):
    """Programmatic callers (sweep trials) get the same one line from ``run_training``, before any data."""
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.errors import UserError
    from attrsearch.evaluate.experiment import run_experiment as run_training

    tiny_experiment["cache_dir"] = str(tmp_path / "cache")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserError, match="--out is an existing file"):
        run_training(validate(ExperimentConfig, tiny_experiment), afile)
    assert not (tmp_path / "cache").exists()


def test_report_out_is_a_file_and_not_refused_as_one(tmp_path, capsys):
    html = tmp_path / "report.html"
    html.write_text("old")
    main(["report", str(tmp_path / "no-such-results"), "--out", str(html)])
    assert "--out is an existing file" not in capsys.readouterr().err
