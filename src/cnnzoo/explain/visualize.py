"""What a network learned, as pictures (Zeiler and Fergus 2013, https://arxiv.org/abs/1311.2901; cs231n):
first-layer filters, a layer's activation maps, the top-9 patches of chosen units over a dataset cut at
each unit's receptive field, an occlusion-sensitivity grid, and penultimate codes in 2-D (t-SNE) with
nearest neighbours in code space against pixel space."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from ..errors import CnnzooError
from .methods import resolve_layer

#: one colour per class (matplotlib's tab10, then tab20's others)
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _to_rgb(a: np.ndarray) -> np.ndarray:
    """``C x H x W`` (C = 1 or 3) -> ``H x W x 3``."""
    a = a[:3] if a.shape[0] >= 3 else np.repeat(a[:1], 3, 0)
    return np.transpose(a, (1, 2, 0))


def grid(tiles: Sequence[np.ndarray], cols: int, scale: int = 1, gap: int = 1, background: int = 255,
         row_gaps: Sequence[int] = ()) -> Image.Image:
    """Tiles (``H x W x 3`` in [0, 1], one size) in rows of ``cols``, each enlarged ``scale`` times (nearest);
    ``row_gaps``: rows after which a wider gap is left (AlexNet's two towers)."""
    h, w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / cols)
    th, tw = h * scale, w * scale
    extra = [0] * (rows + 1)
    for r in row_gaps:
        extra[r] = 4 * scale
    offsets = np.cumsum(extra)
    canvas = Image.new("RGB", (cols * (tw + gap) + gap, rows * (th + gap) + gap + int(offsets[-1])),
                       (background,) * 3)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        img = Image.fromarray((np.clip(t, 0, 1) * 255).round().astype(np.uint8)).resize((tw, th), Image.NEAREST)
        canvas.paste(img, (gap + c * (tw + gap), gap + r * (th + gap) + int(offsets[r])))
    return canvas


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The convolution that reads the image (the contract's ``first_conv``; FractalNet's first column)."""
    name = getattr(model, "first_conv", None)
    name = name[0] if isinstance(name, tuple) else name
    conv = resolve_layer(model, name) if name else next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if not isinstance(conv, nn.Conv2d):
        raise CnnzooError(f"{getattr(model, 'model_name', type(model).__name__)}'s first layer is not a 2-d convolution")
    return name, conv


def towers(model: nn.Module, width: int) -> int:
    """How many towers read the first layer's ``width`` filters: the groups of the next convolution that takes them
    all (2 for AlexNet-2012, whose conv2 is split over its two GPUs), else 1."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    nxt = next((c for c in convs[1:] if c.in_channels == width), None)
    return nxt.groups if nxt is not None and nxt.groups > 1 else 1


def filters_image(model: nn.Module, scale: int = 0) -> tuple[Image.Image, str]:
    """The first layer's filters, each min-max scaled, one row block per tower (Krizhevsky et al. 2012, figure 3)."""
    name, conv = first_conv(model)
    w = conv.weight.detach().float().cpu().numpy()
    lo, hi = w.min(axis=(1, 2, 3), keepdims=True), w.max(axis=(1, 2, 3), keepdims=True)
    tiles = [_to_rgb(f) for f in (w - lo) / np.maximum(hi - lo, 1e-12)]
    n_towers = towers(model, len(tiles))
    per = len(tiles) // n_towers
    cols = min(16, per) if per % min(16, per) == 0 else min(12, per)
    scale = scale or max(1, 64 // w.shape[-1])
    rows_per = math.ceil(per / cols)
    if n_towers > 1 and per % cols:
        raise CnnzooError(f"{per} filters per tower do not fill rows of {cols}")
    image = grid(tiles, cols, scale, row_gaps=[rows_per * t for t in range(1, n_towers)])
    what = f"{name}: {len(tiles)} filters {w.shape[1]}x{w.shape[2]}x{w.shape[3]}" + \
        (f", {n_towers} towers of {per}" if n_towers > 1 else "")
    return image, what


def layer_output(model: nn.Module, layer: str, x: Tensor) -> Tensor:
    """``layer``'s output for ``x``; the rest of the network does not run."""
    module = resolve_layer(model, layer)
    seen: list[Tensor] = []

    class _Done(Exception):
        pass

    def hook(m: nn.Module, inputs: Any, output: Any) -> None:
        seen.append(output.detach().clone())
        raise _Done

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model.eval()(x)
    except _Done:
        pass
    finally:
        handle.remove()
    if not seen:
        raise CnnzooError(f"layer {layer!r} does not run in the inference forward pass; choose another")
    return seen[0]


def activations_image(model: nn.Module, layer: str, x: Tensor, limit: int = 64) -> tuple[Image.Image, str]:
    """The first ``limit`` channels of ``layer``'s map for one image, each min-max scaled, greyscale."""
    out = layer_output(model, layer, x[:1])[0]
    if out.dim() != 3:
        raise CnnzooError(f"layer {layer!r} gives a vector ({tuple(out.shape)}), not maps; choose a convolutional layer")
    a = out[:limit].float().cpu().numpy()
    lo, hi = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
    tiles = [np.repeat(m[..., None], 3, 2) for m in (a - lo) / np.maximum(hi - lo, 1e-12)]
    return grid(tiles, 8, max(1, 96 // a.shape[-1])), f"{layer}: {len(tiles)} of {out.shape[0]} maps {out.shape[1]}x{out.shape[2]}"


def receptive_box(model: nn.Module, layer: str, input_shape: Sequence[int]) -> tuple[int, float, float]:
    """``layer``'s receptive field from the analyzer (:mod:`cnnzoo.analysis.receptive_field`): size, jump and the
    centre of position 0, along H (the zoo's fields are square)."""
    from ..analysis import analyze

    rows = [r for r in analyze(model, tuple(input_shape)).rows
            if (r.name == layer or r.name.startswith(layer + ".")) and r.field is not None]
    if not rows:
        raise CnnzooError(f"the analyzer found no receptive field for {layer!r}")
    f = rows[-1].field
    if f.whole:
        raise CnnzooError(f"every unit of {layer!r} sees the whole image; choose a convolutional layer")
    return int(f.size[0]), float(f.jump[0]), float(f.start[0])


@torch.no_grad()
def top_patches(model: nn.Module, layer: str, images: Tensor, pipeline: Callable[[Tensor], Tensor],
                units: Sequence[int], k: int = 9, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """For each unit, the ``k`` strongest activations over ``images`` (uint8, through ``pipeline``) in one pass:
    ``values`` (units x k) and ``where`` (units x k x 3: image index, row, column of the map)."""
    module = resolve_layer(model, layer)
    idx = torch.as_tensor(list(units))
    best_v = torch.full((len(idx), k), -math.inf)
    best_w = torch.zeros((len(idx), k, 3), dtype=torch.long)
    for start in range(0, len(images), batch_size):
        out = layer_output(model, layer, pipeline(images[start:start + batch_size]))
        if out.dim() != 4:
            raise CnnzooError(f"layer {layer!r} gives vectors, not maps; choose a convolutional layer")
        if int(idx.max()) >= out.shape[1]:
            raise CnnzooError(f"{layer!r} has {out.shape[1]} units (channels); --units must be below that")
        a = out[:, idx].float().cpu()  # N x U x h x w
        n, u, h, w = a.shape
        v, flat = a.permute(1, 0, 2, 3).reshape(u, -1).topk(min(k, n * h * w), dim=1)
        where = torch.stack([flat // (h * w) + start, flat % (h * w) // w, flat % w], dim=2)
        allv, allw = torch.cat([best_v, v], 1), torch.cat([best_w, where], 1)
        order = allv.topk(k, dim=1).indices
        best_v, best_w = allv.gather(1, order), allw.gather(1, order[..., None].expand(-1, -1, 3))
    del module
    return best_v.numpy(), best_w.numpy()


def patches_grid(model: nn.Module, layer: str, images: Tensor, pipeline: Callable[[Tensor], Tensor],
                 units: Sequence[int], what: str = "images") -> tuple[Image.Image, str]:
    """ZFNet's figure 2 for ``units`` of ``layer``: one row per unit, its top-9 patches over ``images`` (uint8,
    through ``pipeline``) cut at the unit's receptive field; and a caption (``what`` the images are)."""
    import time

    shape = tuple(pipeline(images[:1]).shape[1:])
    field = receptive_box(model, layer, shape)
    t0 = time.perf_counter()
    values, where = top_patches(model, layer, images, pipeline, units)
    seconds = time.perf_counter() - t0
    inputs = torch.cat([pipeline(images[int(i):int(i) + 1]) for i in where[..., 0].ravel()])
    keyed = where.copy()  # (units, 9, 3): image, row, column; the images are now the cut inputs, in order
    keyed[..., 0] = np.arange(keyed[..., 0].size).reshape(keyed.shape[:-1])
    tiles = cut_patches(inputs, keyed.reshape(-1, 3), field)
    image = grid(tiles, 9, max(1, 48 // field[0]), gap=2)
    return image, (f"top-9 patches of units {','.join(map(str, units))} of {layer} (receptive field {field[0]} px) "
                   f"over {len(images)} {what} in one pass ({seconds:.1f} s)")


def cut_patches(inputs: Tensor, where: np.ndarray, field: tuple[int, float, float]) -> list[np.ndarray]:
    """The receptive-field patches at ``where`` (image, row, column) of preprocessed ``inputs`` (``N x C x H x W``),
    zero-padded where the field runs past the border, each min-max scaled for display."""
    size, jump, start = field
    c, h, w = inputs.shape[1:]
    patches = []
    for i, r, col in where.reshape(-1, 3):
        top, left = round(start + r * jump - (size - 1) / 2), round(start + col * jump - (size - 1) / 2)
        p = torch.zeros(c, size, size)
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + size, h), min(left + size, w)
        if y1 > y0 and x1 > x0:
            p[:, y0 - top:y1 - top, x0 - left:x1 - left] = inputs[int(i), :, y0:y1, x0:x1]
        a = p.numpy()
        patches.append(_to_rgb((a - a.min()) / max(a.max() - a.min(), 1e-12)))
    return patches


def embedding_image(codes: np.ndarray, thumbs: np.ndarray, labels: np.ndarray, size: int = 1600,
                    seed: int = 0) -> Image.Image:
    """t-SNE (scikit-learn) of ``codes`` with each image's thumbnail (``N x h x w x 3`` in [0, 1]) at its point,
    framed in its class's colour (the cs231n picture)."""
    from sklearn.manifold import TSNE

    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(codes) - 1)).fit_transform(codes)
    xy = (xy - xy.min(0)) / np.maximum(np.ptp(xy, 0), 1e-12)
    th = thumbs.shape[1]
    canvas = Image.new("RGB", (size + th + 4, size + th + 4), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for (x, y), t, label in zip(xy, thumbs, labels):
        px, py = int(x * size), int(y * size)
        draw.rectangle([px, py, px + th + 3, py + th + 3], fill=PALETTE[int(label) % len(PALETTE)])
        canvas.paste(Image.fromarray((t * 255).astype(np.uint8)), (px + 2, py + 2))
    return canvas


def neighbours_image(codes: np.ndarray, pixels: np.ndarray, thumbs: np.ndarray, queries: Sequence[int],
                     k: int = 8) -> Image.Image:
    """Per query row: the image, its ``k`` nearest in code space (L2), a gap, its ``k`` nearest in pixel space."""
    tiles, blank = [], np.ones_like(thumbs[0])
    for q in queries:
        row = [thumbs[q]]
        for space in (codes, pixels):
            d = ((space - space[q]) ** 2).sum(1)
            d[q] = np.inf
            row += [thumbs[i] for i in np.argsort(d, kind="stable")[:k]] + [blank]
        tiles += row[:-1]
    return grid(tiles, 2 * k + 2, scale=max(1, 48 // thumbs.shape[1]))
