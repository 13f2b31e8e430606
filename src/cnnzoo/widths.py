"""Pruned architectures as data: a registered model plus a *width map* rebuilds a structurally pruned network.

Structured pruning (``cnnzoo prune``) removes whole channels, so the pruned network's layers are narrower
than its builder makes them. The width map records, for each layer whose width changed, its new channel
counts — ``{"layer1.0.conv1": {"out_channels": 9}, "layer1.0.bn1": {"num_features": 9}, ...}`` — and
``create_model(name, widths=MAP)`` narrows the freshly built layers to them before any weights load. The map
travels in ``model_args`` (checkpoint dicts and safetensors metadata), so every path that rebuilds a model
from a file (``cnnzoo.load``, predict, eval, export, summary, report, quantize, fine-tuning) rebuilds the
pruned one, and nothing but tensors and plain values is ever saved: no pickled modules.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import ModelArgumentError

#: the width attributes of each layer type, in the order its tensors' shapes are computed from them
WIDTH_ATTRS: dict[type, tuple[str, ...]] = {
    nn.modules.conv._ConvNd: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.modules.batchnorm._NormBase: ("num_features",),
    nn.GroupNorm: ("num_channels",),
    nn.PReLU: ("num_parameters",),
}


def _kind(module: nn.Module) -> type | None:
    return next((t for t in WIDTH_ATTRS if isinstance(module, t)), None)


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """The shape each tensor of ``module`` must have for its (possibly changed) width attributes."""
    if isinstance(module, nn.modules.conv._ConvNd):
        k = tuple(module.kernel_size)
        if module.transposed:
            weight = (module.in_channels, module.out_channels // module.groups, *k)
        else:
            weight = (module.out_channels, module.in_channels // module.groups, *k)
        return {"weight": weight, "bias": (module.out_channels,)}
    if isinstance(module, nn.Linear):
        return {"weight": (module.out_features, module.in_features), "bias": (module.out_features,)}
    if isinstance(module, nn.modules.batchnorm._NormBase):
        n = (module.num_features,)
        return {"weight": n, "bias": n, "running_mean": n, "running_var": n}
    if isinstance(module, nn.GroupNorm):
        return {"weight": (module.num_channels,), "bias": (module.num_channels,)}
    if isinstance(module, nn.PReLU):
        return {"weight": (module.num_parameters,)}
    return {}


def layer_widths(model: nn.Module) -> dict[str, dict[str, int]]:
    """Every layer's width attributes (``{"conv1": {"in_channels": 3, "out_channels": 16, "groups": 1}}``)."""
    out = {}
    for name, m in model.named_modules():
        kind = _kind(m)
        if kind is not None:
            out[name] = {a: int(getattr(m, a)) for a in WIDTH_ATTRS[kind]}
    return out


def width_map(original: nn.Module, pruned: nn.Module) -> dict[str, dict[str, int]]:
    """What changed from ``original`` to ``pruned``: the width map that rebuilds ``pruned`` from its builder.

    Raises :class:`ValueError` naming the tensor where the pruned network differs in a way the map cannot
    record (a parameter outside the layer types of :data:`WIDTH_ATTRS`, say).
    """
    before, after = layer_widths(original), layer_widths(pruned)
    widths = {}
    for name, attrs in after.items():
        changed = {a: v for a, v in attrs.items() if before.get(name, {}).get(a) != v}
        if changed:
            widths[name] = changed
    rebuilt = dict(original.state_dict().items())
    shapes = {k: tuple(v.shape) for k, v in rebuilt.items()}
    for name, attrs in widths.items():
        layer = pruned.get_submodule(name)
        shapes.update({f"{name}.{k}": s for k, s in _shapes(layer).items() if getattr(layer, k, None) is not None})
    for key, t in pruned.state_dict().items():
        if shapes.get(key) != tuple(t.shape):
            raise ValueError(f"{key} changed shape {shapes.get(key)} -> {tuple(t.shape)} in a way a width map "
                             "cannot record")
    return widths


def apply_widths(model: nn.Module, widths: dict[str, dict[str, Any]]) -> None:
    """Narrow ``model``'s layers to ``widths`` (as :func:`width_map` records them); their tensors become
    uninitialised ones of the new shapes, for the pruned weights to load into."""
    for name, attrs in widths.items():
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise ModelArgumentError(f"widths name layer {name!r}, which {getattr(model, 'model_name', 'the model')} "
                                     "does not have; the file was pruned from another architecture") from None
        kind = _kind(layer)
        unknown = set(attrs) - set(WIDTH_ATTRS.get(kind, ()))
        if kind is None or unknown:
            raise ModelArgumentError(f"widths of {name} set {sorted(unknown or attrs)}, which a "
                                     f"{type(layer).__name__} does not have")
        for attr, value in attrs.items():
            setattr(layer, attr, int(value))
        for key, shape in _shapes(layer).items():
            old = getattr(layer, key, None)
            if old is None:
                continue
            new = torch.empty(shape, dtype=old.dtype, device=old.device)
            if isinstance(old, nn.Parameter):
                setattr(layer, key, nn.Parameter(new, requires_grad=old.requires_grad))
            else:
                layer.register_buffer(key, new)
    classifier = getattr(model, "classifier_name", None)
    if classifier and hasattr(model, "num_features"):  # forward_head(pre_logits=True)'s width, for features
        head = model.get_submodule(classifier)
        if isinstance(head, nn.Linear):
            model.num_features = head.in_features
        elif isinstance(head, nn.modules.conv._ConvNd):
            model.num_features = head.in_channels

