"""Context reliance on the built-in data's planted cues (attrsearch's own metric).

The built-in benchmark plants a context cue (like VOC's rails under trains) next to objects of the
biased classes; the sample's ``context`` mask marks the cue pixels. For every image where a cue is
present and every biased class present in the image, the class's attribution mass is split:
``reliance`` = sum(s_c * context) / sum(s_c) (share on the cue) and ``object_mass`` =
sum(s_c * object_c) / sum(s_c) (share on the class's own pixels). A map without mass scores 0 on
both. Datasets without planted cues (VOC, COCO) have no such metrics: they are omitted.
When two biased classes share an image, the context mask is the union of both cues.
"""

from __future__ import annotations

from torch import Tensor


def attribution_shares(maps: Tensor, region: Tensor) -> Tensor:
    """Share of each map's mass inside a region. maps: (N, H, W) >= 0; region: (N, H, W) bool.
    Returns (N,) in [0, 1]; 0 for a map without mass."""
    m = maps.float()
    total = m.sum(dim=(1, 2))
    inside = (m * region.float()).sum(dim=(1, 2))
    return inside / total.clamp_min(1e-12)
