"""Features of any layer, pooled to one vector per image: the "CNN codes" a linear classifier is fitted on.

A layer is a module's dotted name (``layer3``, VGG's FC7 ``classifier.4``) read with a forward hook, or
one of the contract's own points: ``pre_logits`` (``forward_head(..., pre_logits=True)``, the vector that
enters the final layer) and ``features`` (``forward_features``, the last feature map). Four-dimensional
outputs are globally average-pooled; anything else is flattened.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..base import AuxOutputs
from ..errors import CnnzooError
from .config import TrainConfig

SPECIAL_LAYERS = ("pre_logits", "features")


class _Captured(Exception):
    """Raised by the hook once the layer has run: the rest of the network is not needed."""


def check_layer(model: nn.Module, layer: str) -> None:
    if layer in SPECIAL_LAYERS:
        return
    try:
        model.get_submodule(layer)
    except AttributeError:
        label = getattr(model, "model_name", None) or type(model).__name__
        close = difflib.get_close_matches(layer, [n for n, _ in model.named_modules() if n], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        stages = ", ".join(f.module for f in getattr(model, "feature_info", ()))
        raise CnnzooError(f"{label} has no layer {layer!r}{hint}; try {', '.join(SPECIAL_LAYERS)}, a stage "
                          f"({stages}) or any module's dotted name") from None


def pool(out: Any) -> Tensor:
    """One vector per image: the spatial mean of a feature map, else the flattened output.

    Always a new tensor, so an in-place activation that follows the hooked layer cannot change it.
    """
    if isinstance(out, AuxOutputs):
        out = out.logits
    elif isinstance(out, (tuple, list)):
        out = next(o for o in out if isinstance(o, Tensor))
    out = out.detach().float()
    return out.mean(dim=(2, 3)) if out.dim() == 4 else out.flatten(1).clone()


class LayerOutput(nn.Module):
    """``model``'s pooled output of ``layer`` as the forward pass, so that an engine can export or compile it.

    A module-name layer is read with a forward hook; the layers after it no longer feed the output, and
    exporters drop them from the graph.
    """

    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        check_layer(model, layer)
        self.model = model
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        if self.layer in SPECIAL_LAYERS:
            self.model.check_input(x)
            f = self.model.forward_features(x)
            return pool(self.model.forward_head(f, pre_logits=True) if self.layer == "pre_logits" else f)
        captured: list[Tensor] = []
        handle = self.model.get_submodule(self.layer).register_forward_hook(
            lambda module, inputs, output: captured.append(pool(output)))
        try:
            self.model(x)
        finally:
            handle.remove()
        if not captured:
            raise CnnzooError(f"layer {self.layer!r} does not run in the inference forward pass "
                              "(an auxiliary classifier?); choose another")
        return captured[0]

    def extra_repr(self) -> str:  # part of the engines' cache key
        return f"layer={self.layer!r}"


@torch.no_grad()
def extract_features(model: nn.Module, images: Tensor, pipeline: Any, layer: str = "pre_logits",
                     batch_size: int = 256, engine: str = "eager",
                     log: Callable[[str], None] | None = None, precision: str = "fp32") -> Tensor:
    """``N x C`` float features of ``layer`` for uint8 ``images``, shaped by ``pipeline``, in eval mode, on CPU.

    ``engine`` is one of :data:`cnnzoo.runtime.ENGINES`: anything but ``eager`` runs
    :class:`LayerOutput` through :func:`cnnzoo.runtime.build_engine` (``log`` gets its one line).
    """
    check_layer(model, layer)
    model.eval()
    device = next(model.parameters()).device
    if (engine != "eager" or precision != "fp32") and len(images):
        from ..runtime import build_engine

        first = pipeline(images[:1].to(device))
        run = build_engine(LayerOutput(model, layer), tuple(first.shape[1:]), engine=engine, precision=precision,
                           device=device, batch_size=min(batch_size, len(images)), log=log)
        if run.name != "eager" or run.precision != "fp32":  # eager fp32 keeps the path below, which stops at the layer
            return torch.cat([run(pipeline(images[start:start + batch_size].to(device))).float().cpu()
                              for start in range(0, len(images), batch_size)])
    captured: list[Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        captured.append(pool(output))
        raise _Captured

    handle = model.get_submodule(layer).register_forward_hook(hook) if layer not in SPECIAL_LAYERS else None
    out = []
    try:
        for start in range(0, len(images), batch_size):
            x = pipeline(images[start:start + batch_size].to(device))
            if handle is None:
                model.check_input(x)
                f = model.forward_features(x)
                out.append(pool(model.forward_head(f, pre_logits=True) if layer == "pre_logits" else f).cpu())
                continue
            try:
                model(x)
            except _Captured:
                pass
            if not captured:
                raise CnnzooError(f"layer {layer!r} does not run in the inference forward pass "
                                  "(an auxiliary classifier?); choose another")
            out.append(captured.pop().cpu())
    finally:
        if handle is not None:
            handle.remove()
    return torch.cat(out)


def dataset_features(cfg: TrainConfig, layer: str, splits: tuple[str, ...] = ("train", "test"),
                     batch_size: int = 256, engine: str = "eager",
                     log: Callable[[str], None] | None = None, precision: str = "fp32") -> dict[str, np.ndarray]:
    """``{split}_features`` (N x C float32) and ``{split}_labels`` of ``cfg.data`` through ``cfg.weights``.

    The data is restricted as for training (``cfg.classes``, ``cfg.limit_per_class``) and shaped as the
    weights expect (their resize and normalisation, no augmentation).
    """
    from .fit import load_pretrained, prepare_data
    from .trainer import pick_device

    data = prepare_data(cfg)
    if precision == "int8" or str(cfg.weights).lower().endswith(".onnx"):
        return _quantized_features(cfg, data, layer, splits, batch_size, engine, log)
    model, pipeline = load_pretrained(cfg, data)
    model.to(pick_device(cfg.device))
    check_layer(model, layer)
    out: dict[str, np.ndarray] = {}
    for split in splits:
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        out[f"{split}_features"] = extract_features(model, images, pipeline, layer, batch_size, engine, log,
                                                    precision).numpy()
        out[f"{split}_labels"] = labels.numpy().astype(np.int64)
    out["classes"] = np.array(data.classes, dtype=str)
    return out


def _quantized_features(cfg: TrainConfig, data: Any, layer: str, splits: tuple[str, ...], batch_size: int,
                        engine: str, log: Callable[[str], None] | None) -> dict[str, np.ndarray]:
    """The pre-logit features of an int8 file (``cfg.weights``), through its recorded pipeline."""
    from ..runtime import build_engine
    from ..runtime.precision import INT8_HINT
    from ..runtime.quantize import load_quantized
    from .augment import BatchPipeline

    if not str(cfg.weights).lower().endswith(".onnx"):
        raise CnnzooError(f"--precision int8 needs an int8 model as --weights; {INT8_HINT}")
    if layer != "pre_logits":
        raise CnnzooError(f"an int8 file gives its pre-logit features only, not --layer {layer}; leave --layer out "
                          "or use the fp32 checkpoint")
    q = load_quantized(cfg.weights)
    if q.meta["model_name"] != cfg.model:
        raise CnnzooError(f"{cfg.weights} is an int8 {q.meta['model_name']}, not {cfg.model}")
    p = q.meta["pipeline"]
    pipeline = BatchPipeline(tuple(p["mean"]), tuple(p["std"]), p["size"], p["fit"])
    run = build_engine(q.features(), engine="auto" if engine == "eager" else engine, precision="int8",
                       batch_size=batch_size, log=log)
    out: dict[str, np.ndarray] = {}
    for split in splits:
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        out[f"{split}_features"] = torch.cat([run(pipeline(images[i:i + batch_size])).float().cpu()
                                              for i in range(0, len(images), batch_size)]).numpy()
        out[f"{split}_labels"] = labels.numpy().astype(np.int64)
    out["classes"] = np.array(data.classes, dtype=str)
    return out


def save_features(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to ``path``, atomically (a killed run leaves no half-written file)."""
    from ..weights import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(f, **arrays)

    atomic_write(path, write)
