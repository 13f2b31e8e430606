"""The engines that run a network forward, one module each behind one interface: :class:`Engine`.

An engine is a function from a float32 ``N x C x H x W`` batch of any size to the network's output (float32,
on the batch's device). It says what it is (``name``) and at which precision it computes (``precision``):
``fp32``, ``bf16``, ``fp16`` or ``int8``. Engines are built by :func:`cnnzoo.runtime.build_engine`, which
also measures them against each other for ``auto``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...errors import CnnzooError
from ..export import first_tensor

#: what ``--engine`` accepts; ``auto`` measures the candidates of the machine and keeps the fastest
ENGINES = ("auto", "eager", "compile", "onnxruntime", "openvino")


class EngineError(CnnzooError):
    """An engine that cannot run here (not installed, no such engine, or it cannot take this model)."""


class Engine:
    """A forward pass: ``engine(x)`` is the network's output (logits) for the float32 batch ``x``.

    ``module`` is the PyTorch network where there is one (``None`` for a file that holds only a graph, such as
    an int8 model): a batch of a shape the engine was not built for runs through it in eager fp32.
    """

    name: str = ""

    def __init__(self, module: nn.Module | None, input_shape: tuple[int, ...], precision: str = "fp32") -> None:
        self.module = module
        self.input_shape = tuple(input_shape)
        self.precision = precision

    @property
    def label(self) -> str:
        """``"openvino bf16"``: the engine and its precision, as every printed figure names them."""
        return f"{self.name} {self.precision}"

    def __call__(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.input_shape or x.dtype != torch.float32 or x.shape[0] == 0:
            if self.module is None:
                raise EngineError(f"the {self.label} engine was built for batches of "
                                  f"{'x'.join(map(str, self.input_shape))} float32 images, got "
                                  f"{'x'.join(map(str, x.shape[1:]))} {x.dtype} (batch {x.shape[0]})")
            return eager_forward(self.module, x)  # what it was not built for: eager gives the answer or the error
        return self._run(x)

    def _run(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, precision={self.precision!r}, input_shape={self.input_shape})"


class EngineModule(nn.Module):
    """An engine as an ``nn.Module``, for code that calls ``.eval()`` and ``forward`` on what it is given."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, x: Tensor) -> Tensor:
        return self.engine(x)


def eager_forward(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` in inference mode, its logits only, as float32."""
    with torch.inference_mode():
        return first_tensor(module(x)).float()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def numpy_input(x: Tensor) -> Any:
    return x.detach().cpu().contiguous().numpy()
