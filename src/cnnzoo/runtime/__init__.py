"""Running trained networks: engines, precision, int8 quantization, export, benchmarks and power.

- :func:`build_engine` (:mod:`.build`): the forward pass of a network through eager PyTorch,
  ``torch.compile``, ONNX Runtime or OpenVINO, at fp32, bf16, fp16 or int8, measured and checked;
- :mod:`.precision`: what the machine computes natively, and the check a lower precision passes;
- :mod:`.quantize`: int8 files calibrated on the user's images;
- :mod:`.export`: ONNX, TorchScript and ``torch.export`` files, verified;
- :mod:`.benchmark` and :mod:`.power`: measured time, memory and power (``cnnzoo benchmark``).
"""

from .build import ENGINE_HELP, PRECISION_HELP, build_engine, candidates, measure, to_stderr
from .engines import ENGINES, Engine, EngineError, EngineModule
from .precision import PRECISIONS, machine

__all__ = ["ENGINES", "ENGINE_HELP", "PRECISIONS", "PRECISION_HELP", "Engine", "EngineError", "EngineModule",
           "build_engine", "candidates", "machine", "measure", "to_stderr"]
