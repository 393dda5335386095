"""Production export: the trained Explainer alone, as a ``torch.export`` program with a model card.

At inference the Explainer needs no Explanandum (Stalder et al. 2022, section 1: one forward pass
gives every class mask), so ``attrsearch export`` writes

- ``explainer.pt2``: the Explainer as an ``ExportedProgram`` (``torch.export``; dynamic batch size,
  fixed input size), loaded with ``torch.export.load`` (no arbitrary unpickling);
- ``model_card.json``: class names, normalisation, input size, the objective and its weights, the
  test metrics of the run, the data it was trained on, the library versions and the source checkpoint.

``attrsearch explain --model DIR`` runs it in a fresh process with no training config and no cache.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attrsearch.errors import UserError

PROGRAM_FILE = "explainer.pt2"
CARD_FILE = "model_card.json"
CARD_FORMAT = "attrsearch-model-card/1"
_CARD_METRICS = (
    "segmentation/iou",
    "segmentation/accuracy",
    "segmentation/mae",
    "class_specific/selectivity",
    "context/reliance",
    "faithfulness/deletion_auc",
    "faithfulness/insertion_auc",
    "mask/area",
    "explanandum/test_map",
)


@dataclass
class LoadedExplainer:
    """What inference needs: the module (images normalised -> mask logits) and how to feed it."""

    module: nn.Module
    image_size: int
    class_names: list[str]
    mean: list[float]
    std: list[float]
    card: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_metrics(checkpoint: Path) -> dict[str, Any]:
    """The final metrics of the run the checkpoint belongs to (``<run>/metrics.json``), if present."""
    for folder in (checkpoint.parent, checkpoint.parent.parent, checkpoint.parent.parent.parent):
        path = folder / "metrics.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError:
                return {}
            return {k: data[k] for k in _CARD_METRICS if isinstance(data.get(k), (int, float))}
    return {}


def export_explainer(checkpoint: Path, out: Path, device: str = "cpu") -> Path:
    """Export the Explainer of ``checkpoint`` (a file or a run folder) into ``out``; returns the card's path."""
    import torchvision

    from attrsearch import __version__
    from attrsearch.train.checkpoint import checkpoint_config, explainer_from_state, load_checkpoint

    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file, not a folder")
    state = load_checkpoint(checkpoint)
    cfg = checkpoint_config(state)
    model = explainer_from_state(state, device)
    size = int(state["image_size"])
    example = torch.zeros(2, 3, size, size, device=device)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The Explainer's frozen encoder shares storage with views of itself; torch.export stores each
        # storage once and says so ("No complete tensor found in the group"). The loaded program is exact.
        warnings.filterwarnings("ignore", message="No complete tensor found in the group")
        torch.export.save(program, out / PROGRAM_FILE)
    source = Path(state["path"])
    card = {
        "format": CARD_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "class_names": list(state["class_names"]),
        "num_classes": int(state["num_classes"]),
        "input": {
            "size": [size, size],
            "layout": "NCHW float32, RGB in [0, 1] normalised as (x - mean) / std; resize any image to size",
            "mean": list(state["mean"]),
            "std": list(state["std"]),
        },
        "output": "mask logits (N, C, H, W); masks = sigmoid(logits) in [0, 1], one per class",
        "explainer": cfg.explainer.model_dump(mode="json"),
        "objective": cfg.objective.model_dump(mode="json"),
        "explanandum": {"arch": cfg.explanandum.arch, "seed": cfg.explanandum.seed},
        "data": cfg.data.model_dump(mode="json", exclude={"root"})
        | {"root": str(cfg.data.root) if cfg.data.root else None},
        "test_metrics": _run_metrics(source),
        "trained_epochs": state.get("epoch"),
        "source_checkpoint": {"path": str(source), "sha256": _sha256(source)},
        "versions": {
            "attrsearch": __version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
    }
    path = out / CARD_FILE
    path.write_text(json.dumps(card, indent=1))
    return path


def load_exported(folder: Path, device: str = "cpu") -> LoadedExplainer:
    """An exported Explainer folder (``explainer.pt2`` + ``model_card.json``) ready for inference."""
    card_path, program_path = folder / CARD_FILE, folder / PROGRAM_FILE
    for path in (card_path, program_path):
        if not path.is_file():
            raise UserError(f"--model: {folder} is not an exported Explainer (no {path.name}; see attrsearch export)")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"--model: {card_path}: not valid JSON") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise UserError(f"--model: {card_path}: not an attrsearch model card")
    try:
        program = torch.export.load(program_path)
    except Exception as err:  # noqa: BLE001 - any unreadable program is a user error here
        raise UserError(f"--model: {program_path}: not a readable exported program ({type(err).__name__})") from None
    module = program.module().to(torch.device(device))
    inp = card["input"]
    return LoadedExplainer(
        module, int(inp["size"][0]), list(card["class_names"]), list(inp["mean"]), list(inp["std"]), card
    )


def load_checkpoint_explainer(checkpoint: Path, device: str = "cpu") -> LoadedExplainer:
    """The same bundle from a training checkpoint (needs the config it records, not the cache)."""
    from attrsearch.train.checkpoint import explainer_from_state, load_checkpoint

    state = load_checkpoint(checkpoint)
    model = explainer_from_state(state, device)
    return LoadedExplainer(
        model, int(state["image_size"]), list(state["class_names"]), list(state["mean"]), list(state["std"]), {}
    )
