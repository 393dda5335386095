"""Explainer checkpoints: one file holds the weights, the optimiser, the RNG-free loop state and the
experiment config, so a run resumes exactly and ``explain``/``evaluate`` rebuild the model alone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attrsearch.errors import UserError

FORMAT = "attrsearch-explainer/1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename): an interruption never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(fd)
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)
    return path


def read_torch_file(path: Path, field: str | None = None) -> Any:
    """``torch.load`` a trusted attrsearch file; a one-line ``UserError`` (prefixed by ``field``) if unreadable."""
    prefix = f"{field}: " if field else ""
    if not path.is_file():
        raise UserError(f"{prefix}{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserError(f"{prefix}{path}: not a readable checkpoint ({type(err).__name__})") from None


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read an Explainer checkpoint; a one-line ``UserError`` naming the file if it is not one."""
    path = Path(path)
    if path.is_dir():
        for name in ("checkpoints/best.pt", "best.pt", "checkpoints/last.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
    state = read_torch_file(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not an attrsearch Explainer checkpoint")
    state["path"] = str(path)
    return state


def checkpoint_config(state: dict[str, Any]):
    from attrsearch.config import ExperimentConfig, validate

    return validate(ExperimentConfig, state["config"], source=f"{state.get('path', 'checkpoint')} (config)")


def build_explainer(
    cfg, num_classes: int, image_size: int, explanandum: nn.Module | None = None, weights: str | None = None
) -> nn.Module:
    """The configured Explainer architecture.

    ``explanandum`` is the trained classifier whose encoder ``explanandum_encoder`` copies; when it is
    None (rebuilding from a checkpoint, whose state dict holds the copied weights) a fresh, untrained
    Explanandum of the configured architecture provides the structure.
    """
    from attrsearch.models import create_explainer, create_explanandum

    if cfg.explainer.arch == "explanandum_encoder" and explanandum is None:
        explanandum = create_explanandum(
            cfg.explanandum.arch, num_classes, image_size=image_size, **cfg.explanandum.options
        )
    return create_explainer(
        cfg.explainer.arch,
        num_classes,
        explanandum=explanandum,
        weights=weights,
        freeze_encoder=cfg.explainer.freeze_encoder,
        **cfg.explainer.options,
    )


def explainer_from_state(state: dict[str, Any], device: torch.device | str = "cpu") -> nn.Module:
    """The trained Explainer of a loaded checkpoint (eval mode, on ``device``)."""
    model = build_explainer(checkpoint_config(state), state["num_classes"], state["image_size"])
    model.load_state_dict(state["explainer"])
    return model.to(torch.device(device)).eval()


def load_explainer(path: Path | str, device: torch.device | str = "cpu", num_classes: int | None = None):
    """(config, Explainer in eval mode) from a checkpoint. ``num_classes`` checks the class count."""
    state = load_checkpoint(path)
    if num_classes is not None and state["num_classes"] != num_classes:
        raise UserError(
            f"{state['path']}: checkpoint is for {state['num_classes']} classes, but the data has {num_classes}"
        )
    return checkpoint_config(state), explainer_from_state(state, device)
