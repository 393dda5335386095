"""timm Explananda: ``explanandum.arch: "timm:<model name>"``, any name of ``timm.list_models()``.

- Built by ``timm.create_model(name, pretrained=False, num_classes=C, **explanandum.options)``; a model
  whose pretrained config says ``fixed_input_size`` (ViT, DeiT, ...) gets ``img_size=data.image_size``
  unless the options set it.
- ``explanandum.weights``: a file goes through timm's own pretrained loading
  (``pretrained_cfg_overlay=dict(file=...)``: ``torch.load(weights_only=True)`` or safetensors, the
  model's checkpoint filter such as the ViT position-embedding resampling, the ImageNet head dropped
  when the class count differs); ``imagenet`` reads the model's default pretrained weights from the
  local Hugging Face hub or torch hub cache. Nothing is downloaded: a missing file is one line.
- Normalisation: the model's pretrained config (``timm.data.resolve_model_data_config``) gives the
  mean and std it expects. The data is normalised with its own statistics, so ``TimmExplanandum``
  maps one to the other exactly (a per-channel affine map, ``InputNorm``); ``card`` records both and
  the pretrained input size.
- Internals: ``encoder_stages()`` is one pyramid stage, timm's ``forward_intermediates`` at the last
  ``feature_info`` level of each stride (the feature pyramid of ``features_only``); Grad-CAM's default
  layer and the valid layers come from ``feature_info`` (``cam_layers``), and token layers of ViTs are
  reshaped to maps without their ``num_prefix_tokens`` (``feature_map``).
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from attrsearch.errors import UserError
from attrsearch.models.registry import EXPLANANDA, ModelSpec, WeightsSpec
from attrsearch.registry import first_line

log = logging.getLogger(__name__)

PREFIX = "timm"
# The statistics of DataConfig.normalization "imagenet" (the default); ``set_data_normalization`` changes them.
_DATA_MEAN = (0.485, 0.456, 0.406)
_DATA_STD = (0.229, 0.224, 0.225)
# create_model arguments attrsearch sets itself.
_RESERVED = (
    "num_classes",
    "pretrained",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
    "features_only",
    "checkpoint_path",
)


class InputNorm(nn.Module):
    """images normalised with the data's (mean_d, std_d) -> normalised with the model's (mean_m, std_m).

    x_m = (x * std_d + mean_d - mean_m) / std_m, per channel; exact, so a masked pixel (zero in the
    data's space, the data's mean colour) is the same colour for the model. Identity when they agree.
    """

    lrp_pass = True  # an input transform before the first layer: LRP passes relevance through it

    def __init__(self, model_mean: tuple[float, ...], model_std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("model_mean", torch.tensor(model_mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("model_std", torch.tensor(model_std, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("scale", torch.ones(1, len(model_mean), 1, 1))
        self.register_buffer("shift", torch.zeros(1, len(model_mean), 1, 1))
        self.set_data(_DATA_MEAN, _DATA_STD)

    @torch.no_grad()
    def set_data(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        mean_d = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).to(self.scale.device)
        std_d = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1).to(self.scale.device)
        self.scale.copy_(std_d / self.model_std)
        self.shift.copy_((mean_d - self.model_mean) / self.model_std)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def _classifier_children(model: nn.Module) -> list[str]:
    """Top-level children holding the classifier (``pretrained_cfg['classifier']``: fc, head, head.fc, ...)."""
    names = model.pretrained_cfg.get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    return sorted({n.split(".")[0] for n in names if n.split(".")[0] in model._modules})


def headless_view(model: nn.Module) -> nn.Module:
    """A shallow copy of a timm model sharing every module and parameter except its classifier
    children, which are ``nn.Identity``: its parameters are the backbone's (for freezing, copying,
    syncing), and its ``forward_intermediates`` is the model's own."""
    view = copy.copy(model)
    for key, value in model.__dict__.items():
        if isinstance(value, (dict, set)):
            view.__dict__[key] = copy.copy(value)  # own registries: the original keeps its head
    for name in _classifier_children(model):
        view._modules[name] = nn.Identity()
    return view


class TimmPyramid(nn.Module):
    """The feature pyramid of a timm model: images (B, 3, H, W) in the data's normalisation -> a list
    of maps (B, K_i, H / r_i, W / r_i), timm's ``forward_intermediates`` at ``indices`` of
    ``feature_info`` (what ``features_only`` returns), NCHW for every architecture."""

    def __init__(self, body: nn.Module, input_norm: InputNorm, indices: list[int]):
        super().__init__()
        self.input_norm = input_norm
        self.body = body
        self.indices = list(indices)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.body.forward_intermediates(
            self.input_norm(x), indices=self.indices, intermediates_only=True, stop_early=True
        )


class TimmExplanandum(nn.Module):
    """A timm classifier as an Explanandum: images normalised with the data's statistics -> logits (B, C).

    ``model`` is the timm model (its state dict is under ``model.``); ``card`` its pretrained data
    config (mean, std, input size, interpolation, crop), the data's statistics and its feature info.
    """

    def __init__(self, model: nn.Module, label: str):
        from timm.data import resolve_model_data_config

        super().__init__()
        self.label = label
        self.model = model
        data_config = resolve_model_data_config(model)
        self.input_norm = InputNorm(tuple(data_config["mean"]), tuple(data_config["std"]))
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0) or 0)
        self.output_fmt = str(getattr(model, "output_fmt", "NCHW"))
        info = list(getattr(model, "feature_info", None) or [])
        self.feature_info = [
            dict(num_chs=int(f["num_chs"]), reduction=int(f["reduction"]), module=f["module"]) for f in info
        ]
        self.data_config = {k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()}

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.input_norm(x))

    @property
    def user_module(self) -> nn.Module:
        """The module a user's trained checkpoint loads into (the timm model itself)."""
        return self.model

    def set_data_normalization(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """The statistics the data is normalised with (``DatasetInfo.mean/std``)."""
        self.input_norm.set_data(tuple(mean), tuple(std))

    @property
    def card(self) -> dict[str, Any]:
        """What the model card records: the timm name and its pretrained data config, and the mapping
        from the data's normalisation to the model's."""
        import timm

        norm = self.input_norm

        def values(t: Tensor) -> list[float]:
            return [round(float(v), 6) for v in t.flatten()]

        return {
            "arch": self.label,
            "timm_version": timm.__version__,
            "pretrained_data_config": self.data_config,
            "input": {
                "mean": values(norm.model_mean),
                "std": values(norm.model_std),
                "data_mean": values(norm.model_mean + norm.shift * norm.model_std),
                "data_std": values(norm.scale * norm.model_std),
            },
            "feature_info": self.feature_info,
        }

    def pyramid_indices(self) -> list[int]:
        """The last ``feature_info`` level of each stride (a ViT: its last block; a ResNet: all five)."""
        last: dict[int, int] = {}
        for i, f in enumerate(self.feature_info):
            last[f["reduction"]] = i
        return sorted(last.values())

    def encoder_stages(self) -> tuple[list[nn.Module], list[int]]:
        """One stage, the feature pyramid (``TimmPyramid``), and the channels of its maps."""
        if not self.feature_info or not callable(getattr(self.model, "forward_intermediates", None)):
            raise UserError(
                f"explainer.arch: {self.label} has no feature_info / forward_intermediates in timm {_timm_version()}; "
                "explanandum_encoder needs them (choose another Explainer)"
            )
        indices = self.pyramid_indices()
        pyramid = TimmPyramid(headless_view(self.model), self.input_norm, indices)
        return [pyramid], [self.feature_info[i]["num_chs"] for i in indices]

    def cam_layers(self) -> list[str]:
        """Module names of the ``feature_info`` levels, deepest last (the valid CAM layers listed first)."""
        return [f"model.{f['module']}" for f in self.feature_info]

    def default_cam_layer(self) -> str | None:
        """The deepest ``feature_info`` level; for a class-token ViT the input of its last block's
        attention (``blocks.N.norm1``): the last block's output patch tokens never reach the class
        token, so their gradient is zero (pytorch-grad-cam's ViT example makes the same choice)."""
        blocks = getattr(self.model, "blocks", None)
        token_pool = getattr(self.model, "global_pool", None) == "token"
        if token_pool and isinstance(blocks, nn.Sequential) and len(blocks) and hasattr(blocks[-1], "norm1"):
            return f"model.blocks.{len(blocks) - 1}.norm1"
        layers = self.cam_layers()
        return layers[-1] if layers else None

    def feature_map(self, act: Tensor, image_hw: tuple[int, int]) -> Tensor | None:
        """A layer output in timm's layout as (B, K, h, w): NHWC stage outputs (Swin) permuted;
        None: the generic reshape applies (ViT tokens, with ``num_prefix_tokens`` dropped)."""
        widths = {f["num_chs"] for f in self.feature_info}
        if act.dim() == 4 and self.output_fmt == "NHWC" and act.shape[-1] in widths and act.shape[1] not in widths:
            return act.permute(0, 3, 1, 2)
        return None


def _timm_version() -> str:
    import timm

    return timm.__version__


def check_timm_name(name: str, field: str) -> None:
    """A one-line UserError when timm has no model ``name`` (a pretrained tag ``name.tag`` is fine),
    with the closest names (difflib over ``timm.list_models()``)."""
    import timm

    if name and timm.is_model(name):
        return
    known = timm.list_models()
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise UserError(f"{field}: timm {_timm_version()} has no model {name!r}{hint} (all: timm.list_models())")


def _check_options(name: str, options: dict[str, Any], field: str) -> None:
    """Options are ``timm.create_model`` keyword arguments: built once on the meta device (no memory,
    no weights), so an argument the model does not take is one line before any work."""
    import timm

    for key in options:
        if key in _RESERVED:
            raise UserError(f"{field}.{key}: set by attrsearch for timm models, not an option")
    try:
        with torch.device("meta"):
            timm.create_model(name, pretrained=False, num_classes=2, **options)
    except Exception as err:  # a model's constructor raises TypeError, ValueError, AssertionError, ...
        raise UserError(f"{field}: timm model {name} rejects {sorted(options)}: {first_line(str(err))[:200]}") from None


def _cached_pretrained_file(name: str, field: str) -> Path:
    """The default pretrained weights of ``name`` from the local Hugging Face hub cache or the torch
    hub cache (where timm would have downloaded them); never downloads."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    looked = []
    if cfg is not None and cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in files:
            found = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
            looked.append(f"hf hub cache {cfg.hf_hub_id}/{filename}")
    if cfg is not None and cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(cfg.url).path)
        if path.is_file():
            return path
        looked.append(str(path))
    if not looked:
        raise UserError(f"{field}: timm:{name} has no pretrained weights; use none (random init) or a weights file")
    raise UserError(
        f"{field}: pretrained weights of timm:{name} not in the local cache (looked in {'; '.join(looked)}); "
        "name the file in explanandum.weights (attrsearch never downloads)"
    )


def _weights_file(name: str, weights: str | Path | None, field: str) -> Path | None:
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        return _cached_pretrained_file(name, field)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(f"{field}: weights file {path} not found")
    return path


def build_timm_explanandum(
    name: str, num_classes: int, image_size: int = 224, weights: str | Path | None = None, **options: Any
) -> TimmExplanandum:
    """``timm:<name>`` with a C-way head at the data's image size; ``weights`` as in the module docs."""
    import timm
    from timm.models import get_pretrained_cfg

    field = "explanandum.weights"
    kwargs = dict(options)
    cfg = get_pretrained_cfg(name)
    if cfg is not None and cfg.fixed_input_size and "img_size" not in kwargs:
        kwargs["img_size"] = image_size
    file = _weights_file(name, weights, field)
    if file is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(file)})
    try:
        model = timm.create_model(name, num_classes=num_classes, **kwargs)
    except Exception as err:  # a bad file or argument, whatever timm or torch raises
        where = field if file is not None else "explanandum.options"
        raise UserError(f"{where}: timm:{name}: {type(err).__name__}: {first_line(str(err))[:200]}") from None
    if file is not None:
        log.info("%s: loaded %s into timm:%s (timm's pretrained loader)", field, file, name)
    return TimmExplanandum(model, f"{PREFIX}:{name}")


def _resolve(name: str, field: str) -> ModelSpec:
    check_timm_name(name, field)
    return ModelSpec(
        partial(build_timm_explanandum, name),
        WeightsSpec(label=f"{PREFIX}:{name}"),
        check_options=partial(_check_options, name),
        loads_weights=True,
    )


def offline_families() -> list[tuple[str, int]]:
    """(family, number of models) of the timm architectures installed here (all build offline with
    random weights), e.g. ("resnet", 70), from ``timm.list_modules()``."""
    import timm

    return [(module, len(timm.list_models(module=module))) for module in timm.list_modules()]


EXPLANANDA.add_family(
    PREFIX,
    _resolve,
    "timm:<model name>",
    "any timm model (timm.list_models()), head set to the dataset's classes; options are create_model arguments",
)
