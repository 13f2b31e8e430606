"""Pictures of dense predictions: coloured mask overlays and boxes with class and score."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..datasets.scenes import voc_palette


def mask_image(mask: np.ndarray) -> Image.Image:
    """A class-index mask as a palette PNG in PASCAL VOC's colours."""
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(voc_palette())
    return img


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> Image.Image:
    """``image`` (H x W x 3 uint8) with every non-background pixel of ``mask`` tinted by its class's colour."""
    colours = np.asarray(voc_palette(), np.float32).reshape(256, 3)[mask]
    tinted = image.astype(np.float32) * (1 - alpha) + colours * alpha
    shown = np.where((mask > 0)[:, :, None], tinted, image.astype(np.float32))
    return Image.fromarray(shown.clip(0, 255).astype(np.uint8))


def draw_boxes(image: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[int],
               scores: Sequence[float] | None, classes: Sequence[str]) -> Image.Image:
    """``image`` with each box outlined in its class's colour and labelled ``class score``."""
    img = Image.fromarray(image.astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(img)
    palette = np.asarray(voc_palette()).reshape(256, 3)
    for k, (box, label) in enumerate(zip(boxes, labels)):
        colour = tuple(int(c) for c in palette[int(label)])
        draw.rectangle([float(v) for v in box], outline=colour, width=1)
        text = classes[int(label)] + (f" {scores[k]:.2f}" if scores is not None else "")
        draw.text((float(box[0]) + 1, max(0.0, float(box[1]) - 10)), text, fill=colour)
    return img
