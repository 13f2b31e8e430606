"""Pictures of dense predictions: coloured mask overlays with a legend, and boxes labelled with class and score.

Small images (fashion-scenes are 96 x 96) are enlarged by a whole factor (nearest neighbour) until their
shorter side is at least :data:`MIN_SIDE` pixels, so that the labels' text stays legible beside them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..datasets.scenes import voc_palette

#: pictures are enlarged until their shorter side is at least this (text is 12 px high)
MIN_SIDE = 256
FONT_SIZE = 12


def palette_rgb() -> np.ndarray:
    """PASCAL VOC's colours as a ``256 x 3`` uint8 array (class ``k`` is row ``k``)."""
    return np.asarray(voc_palette(), np.uint8).reshape(256, 3)


def mask_image(mask: np.ndarray) -> Image.Image:
    """A class-index mask as a palette PNG in PASCAL VOC's colours."""
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(voc_palette())
    return img


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> Image.Image:
    """``image`` (H x W x 3 uint8) with every non-background pixel of ``mask`` tinted by its class's colour."""
    colours = palette_rgb().astype(np.float32)[mask]
    tinted = image.astype(np.float32) * (1 - alpha) + colours * alpha
    shown = np.where((mask > 0)[:, :, None], tinted, image.astype(np.float32))
    return Image.fromarray(shown.clip(0, 255).astype(np.uint8))


def enlarged(img: Image.Image, min_side: int = MIN_SIDE) -> tuple[Image.Image, int]:
    """``img`` enlarged by the smallest whole factor that makes its shorter side at least ``min_side``
    (nearest neighbour, so pixels stay sharp), and the factor."""
    factor = max(1, -(-min_side // min(img.size)))
    return (img.resize((img.width * factor, img.height * factor), Image.NEAREST) if factor > 1 else img), factor


def with_legend(img: Image.Image, classes: Sequence[str], shown: Sequence[int]) -> Image.Image:
    """``img`` with a panel on its right: a swatch of each class in ``shown`` in its colour, and its name."""
    font = ImageFont.load_default(FONT_SIZE)
    row = FONT_SIZE + 6
    labels = [classes[k] for k in shown] or ["background only"]
    width = 12 + row + max(int(font.getlength(t)) for t in labels)
    panel = Image.new("RGB", (img.width + width, max(img.height, row * len(labels) + 8)), "white")
    panel.paste(img.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(panel)
    colours = palette_rgb()
    for r, (k, text) in enumerate(zip(shown, labels)):
        x, y = img.width + 6, 4 + r * row
        draw.rectangle([x, y + 1, x + row - 5, y + row - 4], fill=tuple(int(c) for c in colours[k]), outline="black")
        draw.text((x + row, y + 1), text, fill="black", font=font)
    if not shown:
        draw.text((img.width + 6, 5), labels[0], fill="black", font=font)
    return panel


def overlay_picture(image: np.ndarray, mask: np.ndarray, classes: Sequence[str]) -> Image.Image:
    """The overlay of ``mask`` on ``image``, enlarged where small, with a legend of the classes it holds
    (all of them where there are at most 12 classes, so colours can be compared between pictures)."""
    present = sorted(int(k) for k in np.unique(mask) if 0 < k < len(classes))
    shown = list(range(1, len(classes))) if len(classes) <= 12 else present
    return with_legend(enlarged(overlay(image, mask))[0], classes, shown)


def draw_boxes(image: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[int],
               scores: Sequence[float] | None, classes: Sequence[str]) -> Image.Image:
    """``image``, enlarged where small, with each box outlined in its class's colour and labelled
    ``class score`` in a tag of that colour (white or black text, whichever reads better on it). Tags sit
    above their box (inside its top where there is no room) and, best score first, move down a row rather
    than cover one placed already."""
    img, factor = enlarged(Image.fromarray(image.astype(np.uint8)).convert("RGB"))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(FONT_SIZE)
    colours = palette_rgb()
    order = sorted(range(len(boxes)), key=lambda k: -scores[k]) if scores is not None else range(len(boxes))
    for k in order:
        draw.rectangle([float(v) * factor for v in boxes[k]], outline=tuple(int(c) for c in colours[int(labels[k])]),
                       width=2)
    placed: list[tuple[float, float, float, float]] = []
    for k in order:
        colour = tuple(int(c) for c in colours[int(labels[k])])
        x0, y0 = float(boxes[k][0]) * factor, float(boxes[k][1]) * factor
        text = classes[int(labels[k])] + (f" {scores[k]:.2f}" if scores is not None else "")
        tw, th = int(font.getlength(text)) + 4, FONT_SIZE + 3
        tx = min(max(0.0, x0), max(0.0, img.width - tw))
        ty = y0 - th if y0 >= th else y0  # above the box, or inside its top where there is no room
        while ty + th < img.height and any(tx < b[2] and b[0] < tx + tw and ty < b[3] and b[1] < ty + th
                                           for b in placed):
            ty += th
        placed.append((tx, ty, tx + tw, ty + th))
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=colour)
        ink = "black" if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 128 else "white"
        draw.text((tx + 2, ty + 1), text, fill=ink, font=font)
    return img
