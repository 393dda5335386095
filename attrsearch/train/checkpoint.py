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

from attrsearch.errors import DiskFull, UserError, first_line, is_disk_full

FORMAT = "attrsearch-explainer/1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename): an interruption never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **state}, tmp)
        os.replace(tmp, path)
    except Exception as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err, path.parent):
            raise DiskFull(path) from err  # one line naming the file; the previous checkpoint stays
        raise
    return path


def read_torch_file(path: Path, field: str | None = None) -> Any:
    """``torch.load`` an attrsearch file without executing code from it: ``weights_only=True`` unpickles
    only tensors and plain containers (dict, list, str, numbers), which is all attrsearch ever writes
    (the config is stored as plain JSON-like data). A file that needs more (a pickle that would run
    code, or objects of other classes) is refused with one line. A one-line ``UserError``
    (prefixed by ``field``) if missing or unreadable."""
    import pickle

    prefix = f"{field}: " if field else ""
    if path.is_dir():
        raise UserError(f"{prefix}{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise UserError(f"{prefix}{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # not a pickle that asks for code: just unreadable
            raise UserError(f"{prefix}{path}: not a readable checkpoint (UnpicklingError)") from None
        raise UserError(
            f"{prefix}{path}: refused: loading it would run code or build objects other than tensors and plain data "
            "(attrsearch writes neither); if it is a model of your own, save its state_dict() with torch.save"
        ) from None
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserError(f"{prefix}{path}: not a readable checkpoint ({type(err).__name__})") from None


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read an Explainer checkpoint; a one-line ``UserError`` naming the file if it is not one."""
    path = Path(path)
    if path.is_dir():
        names = ("checkpoints/best.pt", "best.pt", "checkpoints/last.pt", "last.pt")
        found = [path / name for name in names if (path / name).is_file()]
        if not found:
            raise UserError(f"{path}: a folder without checkpoints (looked for {', '.join(names)})")
        path = found[0]
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
    agnostic = getattr(cfg.objective, "class_agnostic", False)  # one map for every class (CASM)
    model = create_explainer(
        cfg.explainer.arch,
        1 if agnostic else num_classes,
        explanandum=explanandum,
        weights=weights,
        freeze_encoder=cfg.explainer.freeze_encoder,
        **cfg.explainer.options,
    )
    if agnostic:
        from attrsearch.objectives.casm import ClassAgnosticExplainer

        model = ClassAgnosticExplainer(model, num_classes)
    return model


def check_class_count(state: dict[str, Any], data=None, whose: str = "its saved config") -> None:
    """One line if the recorded class count disagrees with the class names, or with the class count of
    ``data`` (a ``DataConfig``; default: the checkpoint's own config's), when that config fixes one
    (``config_class_count``): checked before any data is built or any Explanandum trained for it.
    (The weights' output width is checked against the recorded count when they are loaded.)"""
    from attrsearch.data import config_class_count

    where = state.get("path", "checkpoint")
    n = state.get("num_classes")
    if not isinstance(n, int) or n < 1:
        raise UserError(f"{where}: records no valid class count (num_classes={n!r})")
    names = state.get("class_names")
    if names is not None and len(names) != n:
        raise UserError(f"{where}: records {n} classes but {len(names)} class names")
    if data is None and isinstance(state.get("config"), dict):
        data = checkpoint_config(state).data
    expected = config_class_count(data) if data is not None else None
    if expected is not None and expected != n:
        raise UserError(f"{where}: its Explainer is for {n} classes, but {whose} has {expected} ({data.dataset} data)")


def explainer_from_state(state: dict[str, Any], device: torch.device | str = "cpu") -> nn.Module:
    """The trained Explainer of a loaded checkpoint (eval mode, on ``device``)."""
    check_class_count(state)
    model = build_explainer(checkpoint_config(state), state["num_classes"], state["image_size"])
    try:
        model.load_state_dict(state["explainer"])
    except (RuntimeError, KeyError) as err:
        raise UserError(
            f"{state.get('path', 'checkpoint')}: its weights do not fit the recorded Explainer "
            f"({state['num_classes']} classes): {first_line(err)[:200]}"
        ) from None
    return model.to(torch.device(device)).eval()


def load_explainer(path: Path | str, device: torch.device | str = "cpu", num_classes: int | None = None):
    """(config, Explainer in eval mode) from a checkpoint. ``num_classes`` checks the class count."""
    state = load_checkpoint(path)
    check_class_count(state)
    if num_classes is not None and state["num_classes"] != num_classes:
        raise UserError(
            f"{state['path']}: checkpoint is for {state['num_classes']} classes, but the data has {num_classes}"
        )
    return checkpoint_config(state), explainer_from_state(state, device)
