"""Context reliance on the built-in data's planted cues (attrsearch's own metric).

The built-in benchmark plants a context cue (like VOC's rails under trains) next to objects of the
biased classes; the sample's ``context`` mask marks the cue pixels. For every image where a cue is
present and every biased class present in the image, the class's attribution mass is split:
``reliance`` = sum(s_c * context) / sum(s_c) (share on the cue) and ``object_mass`` =
sum(s_c * object_c) / sum(s_c) (share on the class's own pixels). A map without mass scores 0 on
both. ``riw`` is the relative importance of the cue region of Clark, Oliveira, Wilming & Haufe
(2026, arXiv 2602.09238): ``reliance`` divided by the cue's share of the image area (1 = as much
mass as a uniform map; > 1: the cue draws more than its area). Datasets without planted cues (VOC, COCO) have no such metrics: they are omitted.
When two biased classes share an image, the context mask is the union of both cues.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, Tables, per_class_frame, register_family


def attribution_shares(maps: Tensor, region: Tensor) -> Tensor:
    """Share of each map's mass inside a region. maps: (N, H, W) >= 0; region: (N, H, W) bool.
    Returns (N,) in [0, 1]; 0 for a map without mass."""
    m = maps.float()
    total = m.sum(dim=(1, 2))
    inside = (m * region.float()).sum(dim=(1, 2))
    return inside / total.clamp_min(1e-12)


def relative_importance(maps: Tensor, region: Tensor) -> Tensor:
    """Clark et al. (2026)'s relative importance in a region (RIW): the share of each map's mass
    inside it divided by the share of the image area it covers. maps: (N, H, W) >= 0; region:
    (N, H, W) bool. Returns (N,) >= 0; 0 for a map without mass; NaN for an empty region."""
    area = region.flatten(1).float().mean(dim=1)
    return attribution_shares(maps, region) / area.where(area > 0, torch.nan)


def case_reliance(maps: Tensor, classes: Tensor, context: Tensor) -> dict[str, Tensor]:
    """Attributed reliance of any method per case (image, class): its class map's ``reliance``
    (mass share on the cue, in [0, 1]) and ``riw`` (``relative_importance``, >= 0).
    maps: (M, C, H, W) >= 0; classes: (M,) int64; context: (M, H, W) cue pixels."""
    cmaps = maps[torch.arange(classes.numel(), device=maps.device), classes]
    region = context.bool()
    return {"reliance": attribution_shares(cmaps, region), "riw": relative_importance(cmaps, region)}


@register_family("context")
class ContextScorer(Scorer):
    """``context/reliance``, ``context/riw`` and ``context/object_mass`` of the biased classes on annotated images whose
    cue is present; nothing (and a note) when the dataset has no planted cues."""

    family = "context"

    def __init__(self, setup: EvaluationSetup) -> None:
        super().__init__(setup)
        info = setup.info
        classes: list[int] = []
        if info.has_context:
            chosen = setup.context_classes
            if chosen is None:
                chosen = getattr(info, "context_classes", None) or None
            if chosen is None:
                chosen = range(info.num_classes)
                self.notes.append(
                    "context: the dataset does not name its biased classes; every present class is scored"
                )
            classes = sorted(set(int(c) for c in chosen))
        self.classes = classes
        self.selector = torch.zeros(info.num_classes, dtype=torch.bool, device=setup.device)
        if classes:
            self.selector[classes] = True

    def update(self, ctx: BatchContext) -> None:
        if not self.classes:
            return
        pi, pc = ctx.pairs
        context = ctx.context.bool()
        case = self.selector[pc] & context[pi].flatten(1).any(dim=1) & ctx.annotated[pi].bool()
        if case.any():
            ci, cc = pi[case], pc[case]
            cmaps = ctx.maps[ci, cc]
            self.values.add("context/reliance", attribution_shares(cmaps, context[ci]))
            self.values.add("context/riw", relative_importance(cmaps, context[ci]))
            self.values.add("context/object_mass", attribution_shares(cmaps, ctx.masks[ci, cc] == 1))
            self.values.add("_context/class", cc)

    def compute(self) -> tuple[dict[str, float], Tables]:
        if not self.classes:
            self.notes.append("context: the dataset has no planted context cues; context/* omitted")
        metrics = self.values.means()
        cases = self.values.all("context/reliance").numel()
        if cases:
            metrics["context/cases"] = float(cases)
        per_class = per_class_frame(self.setup.info.class_names)
        for k in ("reliance", "riw", "object_mass"):
            if self.values.all(f"context/{k}").numel():
                per_class[f"context_{k}"] = self.values.per_class(
                    f"context/{k}", "_context/class", self.setup.info.num_classes
                ).numpy()
        return metrics, {"per_class": per_class}
