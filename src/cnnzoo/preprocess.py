"""Images in: loading a file, and preparing it the way a model's weights expect.

:func:`load_image` turns any file Pillow reads into an upright RGB or grayscale image, or raises an
:class:`ImageError` that says which file and why. :func:`preprocessing_for` gives a model's
:class:`~cnnzoo.registry.Preprocessing` (its own where the registry records one), and
:func:`eval_transform` applies it: resize the shorter side, centre crop, scale to [0, 1], normalise.
Training and transfer code reuse the same transform so evaluation matches what the weights saw.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor, nn

from .errors import CnnzooError
from .registry import Preprocessing, model_info

Transform = Callable[[Image.Image], Tensor]


class ImageError(CnnzooError, ValueError):
    """A file that is missing, unreadable, or not an image."""


def load_image(path: str | os.PathLike, in_chans: int = 3) -> Image.Image:
    """Read an image file as RGB (``in_chans=3``) or grayscale (``in_chans=1``), rotated upright by its EXIF tag.

    Multi-frame files (GIF, TIFF) give their first frame; 16-bit and float grayscale are scaled to 8 bits.
    """
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    except FileNotFoundError:
        raise ImageError(f"{os.fspath(path)}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{os.fspath(path)}: is a directory, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{os.fspath(path)}: not an image format Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{os.fspath(path)}: cannot read the image ({_first_line(exc)})") from None
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        img = _to_8bit(img)
    return img.convert("L" if in_chans == 1 else "RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    x = np.asarray(img, dtype=np.float32)
    top = 65535.0 if x.max() > 255 else 255.0 if x.max() > 1 else 1.0
    return Image.fromarray((np.clip(x, 0, top) / top * 255).round().astype(np.uint8))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def default_preprocessing(size: int) -> Preprocessing:
    """What to assume for a model whose registry entry records no preprocessing.

    ImageNet-sized inputs get the torchvision recipe (shorter side to ``size / 0.875``, centre crop, ImageNet
    mean and std); small inputs (CIFAR, MNIST sizes) are resized to ``size`` without a crop.
    """
    if size < 64:
        return Preprocessing(resize=size, crop=size)
    return Preprocessing(resize=round(size / 0.875), crop=size)


def preprocessing_for(model: str | nn.Module) -> Preprocessing:
    """The preprocessing of a registered model (by name, or a model built with ``create_model``)."""
    name = model if isinstance(model, str) else getattr(model, "model_name", None)
    if name is None:
        raise CnnzooError("this model was not built with cnnzoo.create_model, so its preprocessing is unknown; "
                          "pass a Preprocessing to eval_transform")
    info = model_info(name)
    return info.preprocessing or default_preprocessing(info.input_size[-1])


def eval_transform(prep: Preprocessing, in_chans: int = 3) -> Transform:
    """A function from a PIL image to a normalised ``in_chans x crop x crop`` tensor, as ``prep`` says.

    Grayscale models (``in_chans=1``) get one channel with the mean of ``prep``'s per-channel statistics;
    for ``in_chans > 3`` the statistics are cycled.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    mode = InterpolationMode(prep.interpolation)
    mean = torch.tensor(_per_channel(prep.mean, in_chans)).view(-1, 1, 1)
    std = torch.tensor(_per_channel(prep.std, in_chans)).view(-1, 1, 1)

    def transform(img: Image.Image) -> Tensor:
        img = img.convert("L" if in_chans == 1 else "RGB")
        img = TF.center_crop(TF.resize(img, prep.resize, interpolation=mode, antialias=True), prep.crop)
        x = TF.pil_to_tensor(img).float().div_(255)
        if in_chans > 3:
            x = x.repeat(-(-in_chans // 3), 1, 1)[:in_chans]
        return (x - mean) / std

    return transform


def _per_channel(values: tuple[float, ...], in_chans: int) -> list[float]:
    if in_chans == len(values):
        return list(values)
    if in_chans == 1:
        return [sum(values) / len(values)]
    return [values[i % len(values)] for i in range(in_chans)]


def load_and_preprocess(path: str | os.PathLike, prep: Preprocessing, in_chans: int = 3) -> Tensor:
    """One image file as a model-ready ``1 x C x crop x crop`` batch."""
    return eval_transform(prep, in_chans)(load_image(path, in_chans=1 if in_chans == 1 else 3)).unsqueeze(0)


@functools.cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (torchvision's short names)."""
    from .pretrained import imagenet_categories

    return imagenet_categories()


def class_names(num_classes: int) -> tuple[str, ...]:
    """Names for a classifier's outputs: ImageNet's for 1000 classes, ``class N`` otherwise."""
    if num_classes == 1000:
        return imagenet_classes()
    return tuple(f"class {i}" for i in range(num_classes))


__all__ = [
    "ImageError", "Transform", "class_names", "default_preprocessing",
    "eval_transform", "imagenet_classes", "load_and_preprocess", "load_image", "preprocessing_for",
]
