"""What one set of published weights is: its file, where it comes from, its preprocessing and its figures."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_ALIASES = ("imagenet", "DEFAULT")


@dataclass(frozen=True)
class Preprocessing:
    """How inputs must be prepared for a model's pretrained weights (resize, then centre crop, then normalise)."""

    resize: int
    crop: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of published weights for one model, with what it takes to use them.

    ``loader`` returns the state dict in cnnzoo's key names (a source's own download and key mapping);
    without one, ``url`` is a torchvision-style file fetched through :mod:`cnnzoo.hub`. ``local`` says
    where the file already is on this machine, if anywhere (no network). ``notes`` says how a published
    model that differs from cnnzoo's default was mapped (the model arguments in ``model_kwargs``).
    """

    model: str
    tag: str
    default: bool
    file_name: str
    url: str | None
    categories: tuple[str, ...]
    preprocessing: Preprocessing
    top1: float | None = None
    top5: float | None = None
    file_size_mb: float | None = None
    source: str = "torchvision"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    loader: Callable[[], dict] | None = field(default=None, repr=False, compare=False)
    local: Callable[[], Path | None] | None = field(default=None, repr=False, compare=False)
    notes: str = ""

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.tag, *DEFAULT_ALIASES) if self.default else (self.tag,)

    def cached(self) -> Path | None:
        """The local file, if it is already on this machine (nothing is downloaded)."""
        if self.local is not None:
            return self.local()
        from ..hub import cached_path

        path = cached_path(self.url) if self.url else None
        return path if path is not None and path.is_file() else None

    def state_dict(self, progress: bool = True) -> dict[str, "torch.Tensor"]:
        """The weights as a state dict: from the cache, else downloaded (checked) into it."""
        if self.loader is not None:
            return self.loader()
        from ..hub import download
        from ..weights import read_weights

        state, _ = read_weights(download(self.url, progress=progress))
        return state


@functools.cache
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (torchvision's short names)."""
    import importlib.resources

    text = (importlib.resources.files("cnnzoo") / "resources" / "imagenet_classes.txt").read_text("utf-8")
    names = tuple(text.splitlines())
    if len(names) != 1000:
        raise RuntimeError("resources/imagenet_classes.txt must hold 1000 lines")
    return names
