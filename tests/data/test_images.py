"""``attrsearch.data.images``: every image mode becomes 8-bit RGB by its meaning (16-bit scaled, not
clipped; transparency over white) or is refused with one line; decompression-bomb headers and unreadable
files are one line naming the file, also through ``attrsearch explain``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from attrsearch.cli import main
from attrsearch.data.images import read_rgb, rgb_array
from attrsearch.errors import UserError
from tests.support.image_files import forged_png, gradient16, noise_rgb, save_16bit_png, truncate


def test_16_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    values = gradient16()
    rgb, original = read_rgb(save_16bit_png(tmp_path / "g16.png", values))
    assert original == (40, 30) and rgb.dtype == np.uint8 and rgb.shape == (30, 40, 3)
    expected = np.round(values.astype(np.float64) * 255 / 65535)
    assert np.abs(rgb[..., 0].astype(int) - expected).max() == 0
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb[:, 0].max() == 0 and rgb[:, -1].min() == 255 and 120 < rgb.mean() < 135  # a ramp, not white


def test_32_bit_integer_image_in_16_bit_range_is_scaled_and_beyond_is_refused(tmp_path):
    img = Image.fromarray(gradient16().astype(np.int32))
    assert img.mode == "I"
    assert rgb_array(img, "i.tif")[:, -1].min() == 255
    with pytest.raises(UserError, match=r"i\.tif: mode I values 0\.\.70000 are outside 16 bits"):
        rgb_array(Image.fromarray(np.array([[0, 70000]], np.int32)), "i.tif")


def test_float_image_is_refused_with_one_line(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.ones((4, 4), np.float32)).save(path)
    with pytest.raises(UserError, match=r"f\.tif: a 32-bit floating-point image \(mode F\)"):
        read_rgb(path)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)  # opaque red
    rgba[0, 1] = (200, 10, 10, 0)  # fully transparent: white
    rgba[1, :] = (0, 0, 0, 128)  # half-transparent black: mid grey
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb, _ = read_rgb(tmp_path / "a.png")
    assert tuple(rgb[0, 0]) == (200, 10, 10) and tuple(rgb[0, 1]) == (255, 255, 255)
    assert abs(int(rgb[1, 0, 0]) - 127) <= 1
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert tuple(rgb_array(la, "la.png")[0, 1]) == (255, 255, 255)
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "p.png", transparency=0)  # index 0 (black) is transparent
    rgb, _ = read_rgb(tmp_path / "p.png")
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[0, 1]) == (0, 255, 0)


def test_cmyk_and_one_bit_convert_by_meaning(tmp_path):
    Image.new("CMYK", (3, 3), (255, 0, 0, 0)).save(tmp_path / "c.jpg", quality=100)
    rgb, _ = read_rgb(tmp_path / "c.jpg")
    assert rgb[1, 1, 0] < 20 and rgb[1, 1, 1] > 235 and rgb[1, 1, 2] > 235  # cyan
    assert tuple(rgb_array(Image.new("1", (2, 2), 1), "b.png")[0, 0]) == (255, 255, 255)


def test_resized_and_original_size(tmp_path):
    Image.fromarray(noise_rgb()).save(tmp_path / "n.png")
    rgb, original = read_rgb(tmp_path / "n.png", size=16)
    assert rgb.shape == (16, 16, 3) and original == (40, 30) and rgb.flags.writeable


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: forged_png(p, 40000, 40000), "decompression bomb: Image size (1600000000 pixels) exceeds"),
        (lambda p: forged_png(p, 10000, 10000), "its header claims 10000 x 10000 pixels, above PIL's limit of"),
        (lambda p: p.write_bytes(b"not an image at all"), "unreadable image (UnidentifiedImageError)"),
        (lambda p: (Image.fromarray(noise_rgb()).save(p, "PNG"), truncate(p, 0.5)), "unreadable image (truncated)"),
    ],
    ids=["bomb_error", "bomb_warning", "garbage", "truncated"],
)
def test_bad_file_is_one_line_naming_it(tmp_path, make, needle):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(UserError) as err:
        read_rgb(path)
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value)


@pytest.mark.parametrize("width", [40000, 10000])
def test_explain_on_a_bomb_header_is_one_line(tmp_path, capsys, width):
    path = forged_png(tmp_path / "bomb.png", width, width)
    out = tmp_path / "out"
    assert main(["explain", str(path), "--checkpoint", str(tmp_path / "unused.pt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: refused, a possible decompression bomb" in err[0], err
    assert not out.exists()


def test_explain_on_a_16_bit_png_matches_its_8_bit_version(tmp_path, capsys, make_tiny_experiment):
    """``attrsearch explain`` of a 16-bit PNG gives the masks and overlays of the same picture in 8 bits."""
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.train.checkpoint import build_explainer, save_checkpoint

    cfg = validate(ExperimentConfig, make_tiny_experiment())
    torch_model = build_explainer(cfg, 4, 32)
    state = {
        "config": cfg.model_dump(mode="json"), "num_classes": 4, "class_names": ["a", "b", "c", "d"],
        "image_size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "explainer": torch_model.state_dict(),
    }  # fmt: skip
    ck = save_checkpoint(tmp_path / "best.pt", state)
    values = (np.random.default_rng(0).integers(0, 256, (30, 40)) * 257).astype(np.uint16)  # exact 8-bit levels
    save_16bit_png(tmp_path / "deep.png", values)
    Image.fromarray((values // 257).astype(np.uint8)).save(tmp_path / "flat.png")
    for name in ("deep", "flat"):
        argv = ["explain", str(tmp_path / f"{name}.png"), "--checkpoint", str(ck), "--out", str(tmp_path / name)]
        assert main(argv) == 0
    capsys.readouterr()
    deep, flat = np.load(tmp_path / "deep" / "deep.npz"), np.load(tmp_path / "flat" / "flat.npz")
    assert np.array_equal(deep["masks"], flat["masks"])
    overlays = sorted(p.name.replace("deep", "") for p in (tmp_path / "deep").glob("*.png"))
    assert overlays and overlays == sorted(p.name.replace("flat", "") for p in (tmp_path / "flat").glob("*.png"))
    for name in overlays:
        a = np.asarray(Image.open(tmp_path / "deep" / f"deep{name}"))
        b = np.asarray(Image.open(tmp_path / "flat" / f"flat{name}"))
        assert np.array_equal(a, b)
