"""PyTorch itself: eager mode, and ``torch.compile``, at fp32 or under bf16/fp16 autocast.

Lower precision is autocast, so the weights stay float32 and the operations PyTorch keeps in float32
(softmax, normalisation statistics) keep their precision. Under bf16 on a CPU the network and its inputs
also go channels_last: oneDNN's bf16 convolutions run in that layout, and converting at every call cost
more than the layout saves (ResNet-50, batch 16: 13 -> 36 img/s with both, on an AVX512-BF16 CPU).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from ..export import LogitsOnly, device_of, first_tensor
from ..precision import DTYPES
from . import Engine


class EagerEngine(Engine):
    name = "eager"

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...], precision: str = "fp32",
                 device: torch.device | None = None) -> None:
        super().__init__(module, input_shape, precision)
        self.device = device or device_of(module)
        self.channels_last = precision != "fp32" and self.device.type == "cpu" and len(input_shape) == 3
        if self.channels_last:
            module.to(memory_format=torch.channels_last)

    def _run(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.device, self.precision):
            return first_tensor(self.module(x)).float()


class CompileEngine(Engine):
    """``torch.compile`` of the module; :func:`cnnzoo.runtime.build_engine` compiles and checks it at build time."""

    name = "compile"

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...], precision: str = "fp32",
                 device: torch.device | None = None) -> None:
        super().__init__(module, input_shape, precision)
        self.device = device or device_of(module)
        self.compiled = torch.compile(LogitsOnly(module))

    def _run(self, x: Tensor) -> Tensor:
        with torch.no_grad(), autocast(self.device, self.precision):
            return self.compiled(x).float()


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to ``precision``'s dtype on ``device``; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])
