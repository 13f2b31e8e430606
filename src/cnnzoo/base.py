"""The contract every cnnzoo model honours.

Analysis, feature extraction and transfer learning call these methods and never slice an architecture
by hand:

- ``forward_features(x)``: the last feature map, before global pooling (``N x num_features x h x w`` for
  convolutional heads; for nets with fully connected layers, the map that enters them);
- ``forward_head(x, pre_logits=False)``: pooling, flattening and the classifier; with
  ``pre_logits=True`` the ``num_features``-wide vector that enters the final linear layer (VGG's FC7);
- ``get_classifier()`` / ``reset_classifier(num_classes)``: the final layer, and replacing it
  (``0`` gives an identity, so ``model(x)`` returns the pre-logit features);
- ``num_features`` and ``feature_info``: one :class:`FeatureInfo` per stage, shallow to deep.

A model with auxiliary classifiers returns :class:`AuxOutputs` in training mode and plain logits in
eval mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .errors import InputSizeError


@dataclass(frozen=True)
class FeatureInfo:
    """One stage of a model: the module that ends it, its output channels and its total stride; ``name`` is
    what the paper calls the stage (ResNet's ``conv2_x``), shown by ``cnnzoo report``."""

    module: str
    num_chs: int
    reduction: int
    name: str = ""


class AuxOutputs(NamedTuple):
    """Training-mode output of a model with auxiliary classifiers (GoogLeNet, Inception-v3).

    ``aux`` holds the auxiliary logits from shallowest to deepest; the papers weight their losses
    (0.3 for GoogLeNet).
    """

    logits: Tensor
    aux: tuple[Tensor, ...]


class ZooModel(nn.Module):
    """Base class of every registered model; see the module docstring for the contract."""

    #: dotted name of the final classifier layer, replaced by :meth:`reset_classifier`
    classifier_name: str = "fc"
    #: dotted names of auxiliary classifiers' final layers, reset together with the main one
    aux_classifier_names: tuple[str, ...] = ()
    #: dotted name(s) of the convolution(s) that read the image (adapted when ``in_chans`` differs from
    #: the weights'); a tuple where several do, as in FractalNet's columns
    first_conv: str | tuple[str, ...] = "conv1"

    num_classes: int
    num_features: int
    in_chans: int
    feature_info: list[FeatureInfo]
    # Set by create_model from the registry; models built directly fall back to these.
    model_name: str | None = None
    model_args: dict[str, Any] | None = None
    min_input_size: int = 1
    small_variant: str | None = None

    # A block may carry ``figure_name``, the paper's name for it ("Inception (3a)", "Fire2"), as data that
    # ``cnnzoo report`` draws instead of its module path; set where the block is built, never by model name.

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def check_input(self, x: Tensor) -> None:
        """Reject an input of the wrong channel count or below the model's minimum size, before any work."""
        if x.dim() != 4:
            raise InputSizeError(f"{self._label()} takes a 4-d batch N x C x H x W, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise InputSizeError(
                f"{self._label()} was built for {self.in_chans}-channel input but got {x.shape[1]} channels; "
                f"create it with in_chans={x.shape[1]}"
            )
        h, w = x.shape[-2:]
        if min(h, w) < self.min_input_size:
            m = self.min_input_size
            hint = f"; for small images use {self.small_variant}" if self.small_variant else ""
            raise InputSizeError(f"{self._label()} needs inputs of at least {m}x{m} pixels, got {h}x{w}{hint}")

    def _label(self) -> str:
        return self.model_name or type(self).__name__

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer (and the auxiliary ones) with fresh ones for ``num_classes``; 0 removes it."""
        # The kind of each original classifier (a 1x1 conv for NiN/SqueezeNet) is remembered, so that a
        # classifier removed with reset_classifier(0) comes back as the same kind of layer.
        kinds = self.__dict__.setdefault("_classifier_kinds", {})
        for name in (self.classifier_name, *self.aux_classifier_names):
            old = self.get_submodule(name)
            if isinstance(old, (nn.Linear, nn.Conv2d)):
                kinds.setdefault(name, (type(old), _in_width(old, self.num_features)))
            kind, width = kinds.get(name, (nn.Linear, self.num_features))
            self.set_submodule(name, self._new_classifier(width, num_classes, kind))
        self.num_classes = num_classes
        if self.model_args is not None:  # saved with the weights: a fine-tuned model rebuilds with its new head
            self.model_args = {**self.model_args, "num_classes": num_classes}

    def _new_classifier(self, in_features: int, num_classes: int, kind: type = nn.Linear) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        dev = _first_device(self)
        if kind is nn.Conv2d:
            new: nn.Module = nn.Conv2d(in_features, num_classes, kernel_size=1, device=dev)
        else:
            new = nn.Linear(in_features, num_classes, device=dev)
        self.init_classifier(new)
        return new

    def init_classifier(self, layer: nn.Module) -> None:
        """Initialise a fresh classifier layer; families override this with their paper's rule."""
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            nn.init.zeros_(layer.bias)

    def save(self, path: str | os.PathLike) -> None:
        """Write the weights and the model's name and arguments to a safetensors file, atomically."""
        from .weights import save_model

        save_model(self, path)


def _in_width(layer: nn.Module, default: int) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels
    return default


def _first_device(module: nn.Module) -> torch.device | None:
    for p in module.parameters():
        return p.device
    return None


class AuxClassifierModel(ZooModel):
    """A model whose trunk feeds auxiliary classifiers (GoogLeNet, Inception-v3).

    Subclasses implement ``_forward_trunk(x, aux)``, appending each auxiliary head's logits to ``aux``
    when it is a list, and ``has_aux``; the head is dropout after global pooling, then ``fc``. In
    training mode with auxiliary heads, ``forward`` returns :class:`AuxOutputs`.
    """

    dropout: nn.Module
    fc: nn.Module

    @property
    def has_aux(self) -> bool:
        raise NotImplementedError

    def _forward_trunk(self, x: Tensor, aux: list[Tensor] | None) -> Tensor:
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        return self._forward_trunk(x, None)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor | AuxOutputs:
        self.check_input(x)
        aux: list[Tensor] | None = [] if self.training and self.has_aux else None
        logits = self.forward_head(self._forward_trunk(x, aux))
        return AuxOutputs(logits, tuple(aux)) if aux is not None else logits
