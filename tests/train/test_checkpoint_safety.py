"""Checkpoints load without running code from the file, and malformed ones fail in one line."""

import numpy as np
import pytest
import torch
from PIL import Image

from attrsearch.cli import main
from attrsearch.errors import UserError
from attrsearch.train.checkpoint import FORMAT, load_checkpoint, read_torch_file


class _Payload:
    """Unpickling this object would create ``marker`` (the attack a crafted .pt carries)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _image(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("command", ["explain", "evaluate"])
def test_a_pickle_payload_does_not_run(tmp_path, capsys, command):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "explainer": _Payload(marker)}, evil)
    argv = {
        "explain": ["explain", "--checkpoint", str(evil), _image(tmp_path), "--out", str(tmp_path / "out")],
        "evaluate": ["evaluate", "--checkpoint", str(evil), "--out", str(tmp_path / "out")],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused" in err and "evil.pt" in err
    assert not marker.exists()


def test_plain_checkpoints_still_load(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save(
        {"format": FORMAT, "explainer": {"w": torch.ones(2)}, "history": [{"loss": 1.0}], "best": float("nan")}, path
    )
    state = load_checkpoint(path)
    assert torch.equal(state["explainer"]["w"], torch.ones(2))


def test_folder_without_checkpoints_is_named_as_such(tmp_path):
    with pytest.raises(UserError, match="a folder without checkpoints"):
        load_checkpoint(tmp_path)
    with pytest.raises(UserError, match="is a folder"):
        read_torch_file(tmp_path)


def test_wrong_class_count_is_one_line(tmp_path, capsys, tiny_experiment):
    from attrsearch.train.checkpoint import explainer_from_state

    state = {"format": FORMAT, "config": tiny_experiment, "num_classes": 4, "class_names": ["a", "b"], "image_size": 32}
    with pytest.raises(UserError, match="records 4 classes but 2 class names"):
        explainer_from_state(state)
    state["class_names"] = ["a", "b", "c", "d"]
    state["explainer"] = {"not": torch.zeros(1)}
    with pytest.raises(UserError, match="weights do not fit"):
        explainer_from_state(state)
