"""Offline weights loading for both zoos: torchvision ImageNet checkpoints or a weights file.

Never downloads. ``weights="imagenet"`` reads the file torchvision would have downloaded,
``torch.hub.get_dir()/checkpoints/<file name of the weight enum's url>`` (``$TORCH_HOME/hub``);
when it is not there the user gets a one-line ``UserError`` naming the file at once.

Loading is by name and shape: tensors whose shape differs (a head for another class count) and
names the model lacks are skipped and reported in one log line; a file that matches nothing is a
``UserError`` (it is the wrong file, not a partial match).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from attrsearch.errors import UserError

log = logging.getLogger(__name__)

StateDict = dict[str, Tensor]


def imagenet_checkpoint_path(weights_enum: Any) -> Path:
    """Where torchvision caches ``weights_enum`` (a torchvision ``WeightsEnum`` member)."""
    name = os.path.basename(urlparse(weights_enum.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def missing_imagenet_weights(weights_enum: Any, field_name: str, arch: str) -> str | None:
    """The one-line message when the ImageNet checkpoint of ``weights_enum`` is not in the local torch hub
    cache; None when it is there (or when ``weights_enum`` names no file: nothing to look for)."""
    if not getattr(weights_enum, "url", None):
        return None
    path = imagenet_checkpoint_path(weights_enum)
    if path.is_file():
        return None
    return (
        f"{field_name}: ImageNet weights for {arch} not found: {path} "
        f"(looked in torch.hub.get_dir()/checkpoints; set TORCH_HOME or copy {path.name} there; attrsearch never downloads)"
    )


def load_imagenet_state_dict(weights_enum: Any, field_name: str, arch: str) -> StateDict:
    """The ImageNet state dict of ``weights_enum`` from the local torch hub cache; UserError if absent."""
    missing = missing_imagenet_weights(weights_enum, field_name, arch)
    if missing:
        raise UserError(missing)
    return read_state_dict(imagenet_checkpoint_path(weights_enum), field_name)


def read_state_dict(path: str | Path, field_name: str) -> StateDict:
    """Tensors of a weights file (``torch.load(weights_only=True)``, or safetensors): a state dict, or
    a dict holding one under "state_dict"/"model" (timm's training checkpoints: "state_dict").

    A "module." prefix on every key (DataParallel) is stripped; non-tensor entries are dropped.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{field_name}: weights file {path} not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file is bad input, whatever the torch error type
        raise UserError(f"{field_name}: cannot read weights file {path}: {_load_failure(err)}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise UserError(f"{field_name}: weights file {path} holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise UserError(f"{field_name}: weights file {path} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def _load_failure(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words: torch's own message is a
    paragraph about the ``weights_only`` default and how to file an issue, not about the file."""
    text = str(err)
    if "Unsupported global" in text:  # a pickle that asks for classes or code: never loaded
        return "it holds Python objects other than tensors (refused: loading it could run code); save a state_dict()"
    if "Weights only load failed" in text or type(err).__name__ == "UnpicklingError":
        return "not a PyTorch weights file (torch.load cannot unpickle it)"
    first = (text.strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first[:120]}"


@dataclass
class LoadReport:
    """What ``load_matching`` did: names loaded, skipped for shape, unexpected in the file, missing from it."""

    loaded: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self, target: str, source: str) -> str:
        def few(names: list[str]) -> str:
            return ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")

        parts = [f"loaded {len(self.loaded)} tensors of {target} from {source}"]
        if self.mismatched:
            parts.append(f"kept own init where the shape differs (e.g. a head): {few(self.mismatched)}")
        if self.missing:
            parts.append(f"not in the file (own init kept): {few(self.missing)}")
        if self.unexpected:
            parts.append(f"ignored, not in the model: {few(self.unexpected)}")
        return "; ".join(parts)


def match_state_dict(module: nn.Module, state_dict: Mapping[str, Tensor], exclude: tuple[str, ...] = ()) -> LoadReport:
    """Compare ``state_dict`` with ``module``'s by name and shape, without loading anything.

    Names starting with one of ``exclude`` (e.g. an ImageNet head) count as mismatched.
    """
    own = module.state_dict()
    report = LoadReport()
    for key, value in state_dict.items():
        if key not in own:
            report.unexpected.append(key)
        elif key.startswith(exclude) or own[key].shape != value.shape:
            report.mismatched.append(key)
        else:
            report.loaded.append(key)
    seen = set(state_dict)
    report.missing = [k for k in own if k not in seen and not k.endswith("num_batches_tracked")]
    return report


def load_matching(
    module: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    field_name: str,
    target: str,
    source: str,
    exclude: tuple[str, ...] = (),
) -> LoadReport:
    """Load the tensors of ``state_dict`` that match ``module`` by name and shape; log the rest.

    UserError when nothing matches (wrong file for this architecture).
    """
    report = match_state_dict(module, state_dict, exclude)
    if not report.loaded:
        shown = ", ".join(list(state_dict)[:3])
        raise UserError(f"{field_name}: {source} matches no parameter of {target} (its first keys: {shown})")
    with torch.no_grad():
        module.load_state_dict({k: state_dict[k] for k in report.loaded}, strict=False)
    message = report.summary(target, source)
    if report.missing or report.unexpected or report.mismatched:
        log.warning("%s: %s", field_name, message)
    else:
        log.info("%s: %s", field_name, message)
    return report


@dataclass
class Weights:
    """A state dict read before the model is built (so a bad weights setting fails before any work)."""

    state_dict: StateDict
    source: str  # "ImageNet <enum member>" or the file path
    imagenet: bool


def check_weights(
    weights: str | Path | None, field_name: str, arch: str, imagenet: Any = None, *, read: bool = True
) -> None:
    """Check a ``weights`` setting as ``resolve_weights`` reads it, without loading ImageNet weights or
    building a model: "imagenet" needs the architecture's checkpoint in the torch hub cache; a file must
    exist and (``read``) hold a state dict. A one-line ``UserError`` naming ``field_name`` and the file."""
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        if imagenet is None:
            raise UserError(f"{field_name}: {arch} has no ImageNet weights; use none (random init) or a weights file")
        missing = missing_imagenet_weights(imagenet, field_name, arch)
        if missing:
            raise UserError(missing)
    elif read:
        read_state_dict(weights, field_name)
    elif not Path(weights).expanduser().is_file():
        raise UserError(f"{field_name}: weights file {Path(weights).expanduser()} not found")


def resolve_weights(weights: str | Path | None, field_name: str, arch: str, imagenet: Any = None) -> Weights | None:
    """Read ``weights``: None, "imagenet" (``imagenet`` is the torchvision enum member; None: the
    architecture has none -> UserError) or a weights file."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        if imagenet is None:
            raise UserError(f"{field_name}: {arch} has no ImageNet weights; use none (random init) or a weights file")
        return Weights(load_imagenet_state_dict(imagenet, field_name, arch), f"ImageNet {imagenet}", True)
    return Weights(read_state_dict(weights, field_name), str(weights), False)


def load_into_best(
    candidates: Mapping[str, nn.Module],
    weights: Weights,
    *,
    field_name: str,
    arch: str,
    exclude: tuple[str, ...] = (),
    transform: Callable[[nn.Module, StateDict], StateDict] | None = None,
) -> LoadReport:
    """Load ``weights`` into whichever candidate (whole model, backbone, ...) it matches best.

    ``candidates`` maps a readable name ("explainer", "backbone") to a submodule; the one with the
    most tensors matching by name and shape wins (ties: the first). ``transform`` may rewrite the
    state dict for a candidate (a ViT position embedding, a backbone's key prefix) before matching;
    names starting with ``exclude`` (a new head) are never loaded.
    """
    best: tuple[int, str, nn.Module, StateDict] | None = None
    for name, module in candidates.items():
        sd = transform(module, weights.state_dict) if transform is not None else weights.state_dict
        n = len(match_state_dict(module, sd, exclude).loaded)
        if best is None or n > best[0]:
            best = (n, name, module, sd)
    assert best is not None, "no candidate modules"
    _, name, module, sd = best
    target = arch if name == next(iter(candidates)) else f"the {name} of {arch}"
    return load_matching(module, sd, field_name=field_name, target=target, source=weights.source, exclude=exclude)


def load_classifier_file(model: nn.Module, path: str | Path, num_classes: int, field_name: str, arch: str) -> None:
    """Load a user's trained classifier (a state dict file, read with ``weights_only=True``) into
    ``model`` exactly: every tensor by name and shape, nothing missing (``strict``).

    ``model`` is built for ``num_classes``; its ``user_module`` (the timm model inside a timm
    Explanandum) or itself receives the file. One-line UserError for a head of another class count
    (naming both counts) and for any other tensor that does not fit.
    """
    target = getattr(model, "user_module", model)
    state = read_state_dict(path, field_name)
    report = match_state_dict(target, state)
    own = target.state_dict()
    for key in report.mismatched:
        mine, theirs = own[key].shape, state[key].shape
        if len(mine) and mine[0] == num_classes and theirs[0] != num_classes and mine[1:] == theirs[1:]:
            raise UserError(
                f"{field_name}: {path} has a {theirs[0]}-class head ({key}), the dataset has {num_classes} classes"
            )
    problems = []
    if report.mismatched:
        k = report.mismatched[0]
        problems.append(f"{k} is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in {arch}")
    if report.missing:
        problems.append(f"{len(report.missing)} tensors missing (e.g. {report.missing[0]})")
    if report.unexpected:
        problems.append(f"{len(report.unexpected)} not in {arch} (e.g. {report.unexpected[0]})")
    if problems:
        raise UserError(f"{field_name}: {path} does not fit {arch}: " + "; ".join(problems))
    with torch.no_grad():
        target.load_state_dict(state, strict=False)  # checked above; only num_batches_tracked may be absent
    log.info("%s: loaded %d tensors of %s from %s", field_name, len(report.loaded), arch, path)
