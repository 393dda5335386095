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


# Issue 23, part A: each refusal exits 2 with one line naming the field or file, before any work, and
# writes nothing: no --out folder, no cache entry (the configs' cache_dir is checked to stay absent).


def _files(root):
    """Every path below ``root`` (sorted, relative): what a refusal must leave unchanged."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _refused(capsys, tmp_path, argv, *needles):
    """Run ``argv``; assert exit 2, one line holding every needle, and nothing written below ``tmp_path``."""
    before = _files(tmp_path)
    code, err = _run(capsys, argv)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and all(n in err for n in needles), err
    assert _files(tmp_path) == before  # no --out, no cache, no storage
    return err


def _tiny(tmp_path, tiny_experiment, **patch):
    tiny_experiment["cache_dir"] = str(tmp_path / "cache")
    for dotted, value in patch.items():
        node = tiny_experiment
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return tiny_experiment


def _explainer_checkpoint(path, cfg_map, num_classes):
    """An untrained Explainer checkpoint for ``num_classes`` classes that records the config ``cfg_map``."""
    from attrsearch.config import ExperimentConfig
    from attrsearch.train.checkpoint import build_explainer, save_checkpoint

    cfg = ExperimentConfig.model_validate(cfg_map)
    explainer = build_explainer(cfg, num_classes, cfg.data.image_size)
    state = {
        "config": cfg.model_dump(mode="json"),
        "num_classes": num_classes,
        "class_names": [f"c{i}" for i in range(num_classes)],
        "image_size": cfg.data.image_size,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "explainer": explainer.state_dict(),
    }
    return save_checkpoint(path, state)


def _png(path, size=(40, 30), value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


@pytest.mark.parametrize("command", ["evaluate", "explain", "export"])
def test_checkpoint_for_another_class_count_than_its_config_is_refused_at_once(
    tmp_path, capsys, tiny_experiment, command
):
    """A2: weights for 6 classes, a saved config whose data has 4: refused before the data is built or an
    Explanandum trained (evaluate used to train and cache a 4-class one first), the same check everywhere."""
    ckpt = _explainer_checkpoint(tmp_path / "ck" / "best.pt", _tiny(tmp_path, tiny_experiment), 6)
    out = str(tmp_path / "out")
    argv = {
        "evaluate": ["evaluate", "--checkpoint", str(ckpt), "--out", out],
        "explain": ["explain", str(_png(tmp_path / "img.png")), "--checkpoint", str(ckpt), "--out", out],
        "export": ["export", "--checkpoint", str(ckpt), "--out", out],
    }[command]
    _refused(capsys, tmp_path, argv, str(ckpt), "is for 6 classes", "its saved config has 4")


def test_explainer_source_checks_another_experiments_class_count(tmp_path, tiny_experiment):
    """compare scores a checkpoint under its own experiment: a class-count clash is refused before work,
    and data whose config does not fix the count (COCO) is checked once built, before any training."""
    from attrsearch.config import ExperimentConfig
    from attrsearch.data import DatasetInfo
    from attrsearch.errors import UserError
    from attrsearch.evaluate.sources import ExplainerSource

    cfg_map = _tiny(tmp_path, tiny_experiment)
    source = ExplainerSource(_explainer_checkpoint(tmp_path / "best.pt", cfg_map, 4))
    source.check(source.cfg)  # its own config: fine
    other = ExperimentConfig.model_validate({**cfg_map, "data": {"image_size": 32, "shapes": {"num_classes": 5}}})
    with pytest.raises(UserError, match=r"best.pt: its Explainer is for 4 classes, but the experiment's config has 5"):
        source.check(other)
    coco = DatasetInfo("coco2014", 80, tuple(map(str, range(80))), 32, (0, 0, 0), (1, 1, 1))
    with pytest.raises(UserError, match=r"is for 4 classes, but the coco2014 data has 80"):
        source.check_dataset(coco)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_an_empty_experiment_file_is_refused(tmp_path, capsys, text):
    """A3: an empty file used to train the built-in default experiment without a word."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    _refused(capsys, tmp_path, ["train", str(path), "--out", str(tmp_path / "out")], f"{path}: empty file")


def test_an_empty_sweep_base_file_is_refused(tmp_path):
    from attrsearch.errors import UserError
    from attrsearch.sweep.load import load_sweep
    from tests.support.sweep_files import sweep_dict, write_sweep

    (tmp_path / "base.yaml").write_text("")
    with pytest.raises(UserError, match=r"base.yaml: empty file"):
        load_sweep(write_sweep(tmp_path, sweep_dict(base="base.yaml", storage=str(tmp_path / "results"))))


@pytest.mark.parametrize(
    "setting, field",
    [
        ("train.epochs=true", "train.epochs"),
        ("train.lr=false", "train.lr"),
        ("data.max_train=yes", "data.max_train"),
        ("objective.lambda_tv=true", "objective.lambda_tv"),
        ("data.shapes.context.biased_classes=[0, true]", "data.shapes.context.biased_classes"),
    ],
)
def test_set_refuses_a_boolean_for_a_number(tmp_path, capsys, tiny_experiment, setting, field):
    """A4: ``--set train.epochs=true`` used to train 1 epoch (pydantic's lax mode reads true as 1)."""
    cfg = _config(tmp_path, _tiny(tmp_path, tiny_experiment))
    argv = ["train", cfg, "--set", setting, "--out", str(tmp_path / "out")]
    _refused(capsys, tmp_path, argv, f"{field}: expected a number, not a boolean")


def test_booleans_stay_booleans_and_numbers_numbers():
    from attrsearch.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate(
        {
            "train": {"epochs": 3, "lr": 1, "progress": False},
            "data": {"max_train": 5},
            "explainer": {"freeze_encoder": True},
        }
    )
    assert cfg.train.epochs == 3 and cfg.train.lr == 1.0 and cfg.train.progress is False
    assert cfg.data.max_train == 5 and cfg.explainer.freeze_encoder is True


def test_every_shipped_experiment_file_still_validates():
    """The boolean rule breaks no shipped file (the sweep files: test_dry_run_every_shipped_sweep)."""
    from attrsearch.config import load_experiment
    from attrsearch.config.base import read_yaml
    from tests.support.sweep_files import REPO

    experiments = [p for p in (REPO / "sweeps").glob("*.yaml") if "base" not in read_yaml(p)]
    assert len(experiments) >= 4
    for path in experiments:
        load_experiment(path)


@pytest.mark.parametrize("field", ["explanandum", "explainer"])
def test_random_bytes_as_weights_are_one_short_line(tmp_path, capsys, tiny_experiment, field):
    """A6: torch's whole 'Weights only load failed ...' paragraph used to be pasted into the line; and
    the file is read before any data is generated or --out written (A5)."""
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 8)
    cfg = _config(tmp_path, _tiny(tmp_path, tiny_experiment, **{f"{field}__weights": str(junk)}))
    err = _refused(
        capsys, tmp_path, ["train", cfg, "--out", str(tmp_path / "out")], f"{field}.weights", str(junk), "not a PyTorch"
    )
    assert len(err) < 160 + len(str(junk)) and "Weights only load failed" not in err


def test_missing_imagenet_weights_refused_before_data(tmp_path, capsys, tiny_experiment, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    cfg = _config(
        tmp_path,
        _tiny(
            tmp_path,
            tiny_experiment,
            explainer__arch="lraspp_mobilenet_v3_large",
            explainer__options={},
            explainer__weights="imagenet",
        ),
    )
    _refused(capsys, tmp_path, ["train", cfg, "--out", str(tmp_path / "out")], "explainer.weights: ImageNet weights")


def test_explanandum_file_for_another_class_count_leaves_no_cache_and_no_out(tmp_path, capsys, tiny_experiment):
    """A5: the class-count clash of ``explanandum.checkpoint`` used to be found after the dataset was
    generated into the cache and ``--out/config.yaml`` written."""
    import torch

    model = tmp_path / "explanandum.pt"
    torch.save({"arch": "small_cnn", "num_classes": 3, "image_size": 32, "state_dict": {}}, model)
    cfg = _config(tmp_path, _tiny(tmp_path, tiny_experiment, explanandum__checkpoint=str(model)))
    _refused(
        capsys, tmp_path, ["train", cfg, "--out", str(tmp_path / "out")], "explanandum.checkpoint", "has 3 classes"
    )


def test_explain_keeps_every_input_apart_by_relative_path(tmp_path, capsys, tiny_experiment):
    """A7: inputs with one stem in different folders keep their own outputs (their paths below the folder
    all inputs share); two inputs that would still share outputs are refused before any work."""
    import numpy as np

    ckpt = _explainer_checkpoint(tmp_path / "best.pt", _tiny(tmp_path, tiny_experiment), 4)
    a, b = _png(tmp_path / "in" / "a" / "x.png", value=0), _png(tmp_path / "in" / "b" / "x.jpg", value=200)
    out = tmp_path / "out"
    assert main(["explain", str(a), str(b), "--checkpoint", str(ckpt), "--top-k", "2", "--out", str(out)]) == 0
    written = _files(out)
    assert "a/x.npz" in written and "b/x.npz" in written
    assert len([f for f in written if f.endswith(".png")]) == 4  # 2 images x top-2, none overwritten
    masks = [np.load(out / d / "x.npz")["masks"] for d in ("a", "b")]
    assert masks[0].shape == masks[1].shape == (4, 30, 40) and not np.array_equal(masks[0], masks[1])
    single = tmp_path / "single"
    assert main(["explain", str(a), "--checkpoint", str(ckpt), "--out", str(single)]) == 0
    assert (single / "x.npz").is_file()  # one folder: bare stems, as before
    capsys.readouterr()
    twin = _png(tmp_path / "in" / "a" / "x.jpg")
    for images in ([a, twin], [a, a]):
        argv = ["explain", *map(str, images), "--checkpoint", str(ckpt), "--out", str(tmp_path / "clash")]
        _refused(capsys, tmp_path, argv, str(images[1]), "would overwrite those of", str(a))
