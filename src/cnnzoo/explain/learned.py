"""What a trained network learned, as a section of its report page (``cnnzoo report MODEL --weights W [--data D]``).

The first layer's filters (Krizhevsky et al. 2012, figure 3) always; with a dataset, the top-9 patches of the
first units of every stage whose units see part of the image (Zeiler and Fergus 2013, figure 2), cut at each
unit's receptive field from the analyzer. The pictures are inlined PNGs, so the page stays self-contained.
"""

from __future__ import annotations

import html
from typing import Callable

from torch import Tensor, nn

from ..errors import CnnzooError
from .page import data_uri, png_bytes
from .visualize import filters_image, patches_grid

#: units per stage whose top patches are shown
UNITS = 8


def learned_section(model: nn.Module, weights: str, images: Tensor | None = None,
                    pipeline: Callable[[Tensor], Tensor] | None = None, data: str = "") -> str:
    """The HTML of the section: ``model`` with ``weights`` loaded; ``images`` (uint8) through ``pipeline``."""
    model = model.eval()
    parts = [f"<section id='learned'><h2>What it learned</h2><p>weights: {html.escape(weights)}</p>"]
    try:
        image, caption = filters_image(model)
        parts.append(_figure(image, f"first-layer filters: {caption}"))
    except CnnzooError as exc:
        parts.append(f"<p>{html.escape(str(exc))}</p>")
    if images is not None and pipeline is not None:
        for stage in getattr(model, "feature_info", []):
            channels = int(stage.num_chs)
            units = list(range(min(UNITS, channels)))
            try:
                image, caption = patches_grid(model, stage.module, images, pipeline, units,
                                              what=f"test images of {data}")
            except CnnzooError:
                continue  # a stage whose units see the whole image, or gives vectors: no patch to cut
            parts.append(_figure(image, f"stage {stage.module} ({channels} units): {caption}"))
    parts.append("</section>")
    return "".join(parts)


def _figure(image, caption: str) -> str:
    return (f"<figure><img src='{data_uri(png_bytes(image))}' alt='{html.escape(caption)}' "
            f"style='max-width:100%;image-rendering:pixelated'><figcaption>{html.escape(caption)}</figcaption></figure>")
