"""OpenVINO on the CPU, compiled from the same ONNX file as ONNX Runtime's (an fp32 export or an int8 file).

OpenVINO's CPU plugin runs an fp32 model in bf16 by default on CPUs with bf16 units (its
``INFERENCE_PRECISION_HINT``); here the hint is always set from the engine's precision, so ``fp32`` is
fp32 and every figure names the precision that ran. Compiled models are cached in OpenVINO's own
``CACHE_DIR`` beside the ONNX files, so a second build of the same graph skips most of the compiling.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from . import Engine, numpy_input

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
OPENVINO_HINT = "pip install 'cnnzoo[openvino]'"


class OpenVinoEngine(Engine):
    """An OpenVINO compiled model of ``path`` on the CPU, at ``precision`` (int8: the file's own int8 layers)."""

    name = "openvino"

    def __init__(self, module: nn.Module | None, input_shape: tuple[int, ...], path: Path, precision: str = "fp32",
                 cache_dir: Path | None = None, output: int = 0) -> None:
        super().__init__(module, input_shape, precision)
        import openvino as ov

        core = ov.Core()
        if cache_dir is not None:
            core.set_property({"CACHE_DIR": str(cache_dir)})
        config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": torch.get_num_threads(),
                  "PERFORMANCE_HINT": "LATENCY"}
        self.path = path
        self.compiled = core.compile_model(str(path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.outputs[output]

    def _run(self, x: Tensor) -> Tensor:
        result = self.request.infer({0: numpy_input(x)})
        return torch.from_numpy(result[self.output].copy()).to(x.device)


def available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def capabilities() -> list[str]:
    """What OpenVINO's CPU plugin says the CPU computes natively (``FP32``, ``BF16``, ``FP16``, ``INT8``, ...)."""
    import openvino as ov

    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
