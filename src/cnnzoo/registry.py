"""The model registry: every architecture is built, listed and described through it.

Families register thin builder functions with :func:`register_model`, each with a :class:`ModelInfo`
that holds the paper, the default input, and the reference figures the tests check against.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from .errors import ModelArgumentError, UnknownModelError, WeightsError
from .pretrained import IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights, Preprocessing  # noqa: F401 - re-exported
from .pretrained import available, resolve, unknown_tag_message


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model: its paper, its inputs and its reference figures.

    ``params`` is the exact parameter count of the default configuration (``parameters()`` only, no BN
    buffers); ``params_approx`` the paper's rounded figure where no exact reference exists. ``gmacs`` and
    ``top1`` are reference ImageNet figures with their ``source``.
    """

    name: str
    family: str
    paper: str
    arxiv: str | None
    year: int
    input_size: tuple[int, int, int] = (3, 224, 224)
    min_size: int = 1
    num_classes: int = 1000
    params: int | None = None
    params_approx: float | None = None
    gmacs: float | None = None
    top1: float | None = None
    source: str = ""
    ilsvrc: str | None = None
    small_variant: str | None = None
    torchvision: str | None = None
    preprocessing: Preprocessing | None = None
    notes: str = ""

    @property
    def pretrained(self) -> tuple[str, ...]:
        """The tags ``create_model(name, weights=TAG)`` takes, the default's first."""
        return tuple(t for w in available(self) for t in w.tags)

    @property
    def url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else None


@dataclass
class _Entry:
    info: ModelInfo
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}
_loaded = False


def register_model(info: ModelInfo) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``builder`` under ``info.name``; registering a name twice is an error."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if info.name in _REGISTRY:
            raise ValueError(f"model {info.name!r} is registered twice")
        _REGISTRY[info.name] = _Entry(info, builder)
        return builder

    return decorator


def _load_families() -> None:
    """Import every module of :mod:`cnnzoo.models` once, so their builders register themselves."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import models

    for module in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{module.name}")


def _names_a_file(name: str) -> bool:
    """Whether ``name`` is written as a path (a folder in it, or a weights or model file's suffix), not a name."""
    return "/" in name or os.sep in name or name.lower().endswith((".pt", ".pth", ".safetensors", ".onnx", ".ckpt"))


def _entry(name: str) -> _Entry:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        if _names_a_file(name) and not Path(name).exists():
            raise UnknownModelError(f"{name}: no such file; give a registered model name (`cnnzoo list`) or an "
                                    "existing file such as runs/x/best.pt") from None
        if name.lower().endswith(".onnx"):
            raise UnknownModelError(f"{name} is an ONNX file, which runs forward only (predict, eval, features, "
                                    "benchmark); train or fine-tune the registered model or checkpoint it came "
                                    "from") from None
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `cnnzoo list` to see them"
        raise UnknownModelError(f"unknown model {name!r}: {hint}") from None


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by an fnmatch ``pattern`` (``"resnet*"``)."""
    _load_families()
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model."""
    return _entry(name).info


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name.

    ``num_classes`` and ``in_chans`` default to the model's own (1000 classes and 3 channels for the
    ImageNet models, 10 for the small-image ones). ``weights`` is a file (cnnzoo safetensors, a cnnzoo
    training checkpoint, or a torchvision ``.pth`` state dict) or a registered tag such as ``"imagenet"``.
    When ``num_classes`` differs from the weights', the head is re-initialised with a warning; with
    ``in_chans=1`` on RGB weights the first convolution's filters are summed over colour.

    ``widths`` (a width map of :mod:`cnnzoo.widths`, as ``cnnzoo prune`` records it) narrows the built layers to
    a structurally pruned network's channel counts before any weights load.
    """
    entry = _entry(name)
    widths = kwargs.pop("widths", None)
    info = entry.info
    spec = _weights_tag(info, weights)
    if spec is not None:  # what the source's model is built with for these weights, unless the caller says otherwise
        rgb = (in_chans or info.input_size[0]) == 3  # torchvision's transform_input re-normalises RGB only
        defaults = {k: v for k, v in spec.model_kwargs.items() if rgb or k != "transform_input"}
        kwargs = {**defaults, **kwargs}
    args: dict[str, Any] = {
        "num_classes": info.num_classes if num_classes is None else num_classes,
        "in_chans": info.input_size[0] if in_chans is None else in_chans,
        **kwargs,
    }
    try:
        model = entry.builder(**args)
    except (TypeError, ValueError) as exc:
        # Only the caller's own arguments can be at fault; without any, a failure is a bug of ours.
        if not (set(kwargs) - set(spec.model_kwargs if spec else ())) and num_classes is None and in_chans is None:
            raise
        raise ModelArgumentError(f"{name} refused its arguments ({exc}); its options are documented in "
                                 f"{entry.builder.__module__}") from exc
    if widths:
        from .widths import apply_widths

        apply_widths(model, widths)
        args["widths"] = widths
    model.model_name = name
    model.model_args = args
    model.min_input_size = info.min_size
    model.small_variant = info.small_variant
    model.registry_info = info
    model.pretrained_weights = spec
    if weights is not None:
        from .weights import load_weights

        load_weights(model, spec.state_dict() if spec is not None else weights)
    return model


def load_weights(model: nn.Module, weights: Any) -> None:
    """Load ``weights`` into ``model``: a file, a state dict, or a tag of the model's published weights
    (``"imagenet"``) when it was built with :func:`create_model`. See :func:`cnnzoo.weights.load_weights`."""
    from . import weights as files

    info = getattr(model, "registry_info", None)
    if isinstance(weights, str) and not os.path.exists(weights) and os.sep not in weights and "." not in weights:
        spec = resolve(info, weights) if info is not None else None
        if spec is None:
            raise WeightsError(unknown_tag_message(info, weights) if info is not None else
                               f"no weights {weights!r} for a model not built with cnnzoo.create_model; give a file")
        weights = spec.state_dict()
    files.load_weights(model, weights)


def _weights_tag(info: ModelInfo, weights: Any) -> PretrainedWeights | None:
    """The published weights ``weights`` names, None for a file or state dict; an unknown tag is an error."""
    if not isinstance(weights, str) or os.path.exists(weights):
        return None
    spec = resolve(info, weights)
    if spec is None and os.sep not in weights and "." not in weights:
        raise WeightsError(unknown_tag_message(info, weights))
    return spec


def load(path: Any, **overrides: Any) -> nn.Module:
    """Rebuild a model from a file that names it (a cnnzoo safetensors file or checkpoint) and load its weights."""
    from .weights import read_weights

    state, info = read_weights(path)
    if "model_name" not in info:
        raise WeightsError(f"{str(path)!r} does not say which model it holds; "
                           "use cnnzoo.create_model(NAME, weights=PATH)")
    return _rebuilt(info["model_name"], state, info, **overrides)


def _rebuilt(name: str, state: dict, meta: dict, **overrides: Any) -> nn.Module:
    """``name`` built with the arguments a file records (``overrides`` win) and the file's weights loaded."""
    from .weights import load_weights

    model = create_model(name, **{**meta.get("model_args", {}), **overrides})
    load_weights(model, state)
    shape = trained_input_shape(meta)
    if shape is not None and not overrides:
        model.trained_input_shape = shape
    return model


def trained_input_shape(meta: dict) -> tuple[int, ...] | None:
    """The input a training checkpoint's model saw (``C, H, W``), from what :func:`cnnzoo.weights.read_weights`
    found in it: recorded, or (files written before it was) its pipeline's fixed size; None if unknown."""
    if meta.get("input_shape"):
        return tuple(meta["input_shape"])
    size = (meta.get("pipeline") or {}).get("size")
    chans = (meta.get("model_args") or {}).get("in_chans")
    return (chans, size, size) if size and chans else None


def create_model_with_weights(name: str | None, weights: str, command: str = "") -> nn.Module:
    """``name`` with ``weights`` (a tag or a file); a cnnzoo file that records its arguments (say 10 classes)
    is rebuilt with them, and a training checkpoint's class names become ``model.class_names``. ``command``
    (``"predict"``) goes into the hint when the file holds another model. ``name=None``: the model the
    file records."""
    from .weights import read_weights

    if not os.path.isfile(weights):
        if name is None:
            raise WeightsError(f"{weights!r} is neither a registered model nor a weights file")
        return create_model(name, weights=weights)
    state, meta = read_weights(weights)
    if name is None:
        if "model_name" not in meta:
            raise WeightsError(f"{weights} does not record which model it holds; name it: "
                               f"`cnnzoo {command or 'predict'} MODEL --weights {weights} ...`")
        name = meta["model_name"]
    if meta.get("model_name", name) != name:
        hint = f"; run `cnnzoo {command} {meta['model_name']} ...`" if command else ""
        raise WeightsError(f"{weights} holds a {meta['model_name']}, not a {name}{hint}")
    model = _rebuilt(name, state, meta)
    classes = meta.get("classes")
    if isinstance(classes, list) and len(classes) == getattr(model, "num_classes", None):
        model.class_names = tuple(classes)  # a training checkpoint's own class names
    return model
