"""ONNX Runtime: a session on an ONNX file, the fp32 export of a network or an int8 file of `cnnzoo quantize`.

ONNX Runtime has no bf16 kernels on the CPU; its lower precision there is int8 (QDQ files), which runs on
VNNI's integer dot products where the CPU has them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..export import ort_session
from . import Engine, numpy_input


class OnnxRuntimeEngine(Engine):
    """An ONNX Runtime session on ``path`` (a graph with a dynamic batch axis)."""

    name = "onnxruntime"

    def __init__(self, module: nn.Module | None, input_shape: tuple[int, ...], path: Path, device: torch.device,
                 precision: str = "fp32", output: int = 0) -> None:
        super().__init__(module, input_shape, precision)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else None
        self.path = path
        self.session = ort_session(str(path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[output].name

    def _run(self, x: Tensor) -> Tensor:
        out = self.session.run([self.output_name], {self.input_name: numpy_input(x)})[0]
        return torch.from_numpy(out).to(x.device)


def providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())
