"""A baseline attribution method in place of a trained Explainer (``method:`` of an experiment).

With ``method`` set, ``attrsearch train`` and every sweep trial score the named method of
``attrsearch.attribution.methods`` (Grad-CAM, RISE, ...) against the experiment's Explanandum with
the final suite instead of training an Explainer, so a sweep can search a method's options
(``method.options.cells``). The name and the options are checked by ``attrsearch.resolve``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from attrsearch.config.base import StrictModel


class MethodConfig(StrictModel):
    """name: a registered method (``attrsearch evaluate --method``) or ``captum:<Class>`` etc.;
    options: its options (validated by the method's own options model); max_images: score only the
    first N images of the split (slow methods; the result records the count)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict, description="the method's options (free-form here)")
    max_images: int | None = Field(None, ge=1, description="score the first N images of the split only")
