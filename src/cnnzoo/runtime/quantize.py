"""int8 models: post-training static quantization calibrated on the user's own images (``cnnzoo quantize``).

The network is exported to ONNX (its logits, and its pre-logit features as a second output where the
classifier is one layer on them), calibrated on a few hundred training images through the user's own
preprocessing, and quantized by ONNX Runtime's quantizer into a QDQ file: per-channel int8 weights, uint8
activations. The file runs in ONNX Runtime and in OpenVINO (both read QDQ), through ``predict``, ``eval``,
``features`` and ``benchmark``. ``torch.ao.quantization`` is deprecated and not used.

Before anything is written, top-1 of the fp32 export and of the int8 file are measured on the held-out
images; a drop above ``max_drop`` points writes nothing. CPUs without VNNI compute uint8 x int8 products
with 16-bit intermediate sums that can saturate (ONNX Runtime's quantization notes); there the model is
quantized both with 7-bit weights (``reduce_range``, which avoids it) and with 8-bit ones, both are measured
on the held-out images, and the better is kept; the choice is recorded in the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import CnnzooError
from .export import ONNX_HINT, export_onnx, require_onnx
from .precision import machine

#: the key of the file's metadata (ONNX ``metadata_props``) that makes it a cnnzoo int8 model
META_KEY = "cnnzoo"
DEFAULT_CALIBRATION = 300
DEFAULT_MAX_DROP = 1.0


class QuantizeError(CnnzooError):
    """A model that cannot be quantized, or whose int8 accuracy falls below what was asked."""


@dataclass
class QuantizedModel:
    """An int8 file of ``cnnzoo quantize``: the graph's path and what cnnzoo recorded about it."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    output: int = 0  # 0: logits; 1: pre-logit features, where the file has them

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.meta["input_shape"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def has_features(self) -> bool:
        return bool(self.meta.get("features"))

    def features(self) -> "QuantizedModel":
        """The same file read at its pre-logit features output."""
        if not self.has_features:
            raise CnnzooError(f"{self.path} holds the logits only (its classifier is more than one layer on the "
                              "features); extract features from the fp32 model")
        return QuantizedModel(self.path, self.meta, output=1)


def is_quantized_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".onnx") and Path(path).is_file()


def load_quantized(path: str | os.PathLike) -> QuantizedModel:
    """The int8 model in ``path``; one line if it is not a cnnzoo int8 file."""
    require_onnx()
    import onnx

    p = Path(path)
    if not p.is_file():
        raise CnnzooError(f"{p}: no such file; make an int8 model with `cnnzoo quantize`")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise CnnzooError(f"{p} is not a readable ONNX file ({type(exc).__name__}); give a file written by "
                          "`cnnzoo quantize`") from None
    props = {m.key: m.value for m in proto.metadata_props}
    try:
        meta = json.loads(props[META_KEY])
        tuple(meta["input_shape"]), int(meta["num_classes"])
    except (KeyError, ValueError, TypeError):
        raise CnnzooError(f"{p} is an ONNX file but not a cnnzoo int8 model (no '{META_KEY}' metadata); make one "
                          "with `cnnzoo quantize`") from None
    return QuantizedModel(p, meta)


class LogitsAndFeatures(nn.Module):
    """The logits and the pre-logit features in one pass: the classifier applied to ``forward_head(pre_logits)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return self.model.get_classifier()(features), features


@dataclass
class QuantizeResult:
    fp32_top1: float
    int8_top1: float
    n_test: int
    n_calibration: int
    reduce_range: bool
    written: bool
    size_fp32: int
    size_int8: int

    @property
    def drop(self) -> float:
        return 100 * (self.fp32_top1 - self.int8_top1)


def quantize(model: nn.Module, pipeline: Callable[[Tensor], Tensor], calibration: Tensor, test_images: Tensor,
             test_labels: Tensor, out: str | os.PathLike, *, meta: dict[str, Any], max_drop: float = DEFAULT_MAX_DROP,
             reduce_range: bool | None = None, batch_size: int = 64, log: Callable[[str], None] = lambda m: None
             ) -> QuantizeResult:
    """Quantize ``model`` to int8 calibrated on ``calibration`` (uint8 images), write ``out`` if it keeps its accuracy.

    ``pipeline`` turns uint8 images into the model's float input. Top-1 of the fp32 export and of the int8
    file on ``test_images`` are measured and returned; with a drop above ``max_drop`` points nothing is written.
    """
    require_onnx()
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, \
        quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..weights import atomic_write
    from .engines.onnxruntime import OnnxRuntimeEngine

    if not len(calibration):
        raise QuantizeError("no calibration images: the training split is empty")
    if not len(test_images):
        raise QuantizeError("no held-out images to measure the int8 model on")
    model = model.eval().cpu()
    first = pipeline(calibration[:2])
    input_shape = tuple(first.shape[1:])
    with torch.no_grad():
        whole = model(first)
        both = LogitsAndFeatures(model)(first)[0]
    features = bool(torch.allclose(whole, both, rtol=1e-4, atol=1e-4 * max(1.0, whole.abs().max().item())))
    module: nn.Module = LogitsAndFeatures(model) if features else model
    with tempfile.TemporaryDirectory(prefix="cnnzoo-quantize-") as tmp:
        fp32, prepared, int8 = (Path(tmp) / n for n in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        _export(module, first, fp32, features)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.batches = (pipeline(calibration[i:i + batch_size]).numpy()
                                for i in range(0, len(calibration), batch_size))

            def get_next(self) -> dict[str, Any] | None:
                x = next(self.batches, None)
                return None if x is None else {"input": x}

        def top1(path: Path, precision: str) -> float:
            engine = OnnxRuntimeEngine(None, input_shape, path, torch.device("cpu"), precision)
            correct = sum(int((engine(pipeline(test_images[i:i + batch_size])).argmax(1)
                               == test_labels[i:i + batch_size]).sum()) for i in range(0, len(test_images), batch_size))
            return correct / len(test_images)

        # Without VNNI, 7-bit weights avoid the saturation of u8 x s8 products; whether 8 bits lose more is
        # measured on the held-out images rather than assumed: both are made, the better one kept.
        tried: dict[bool, float] = {}
        for option in ([reduce_range] if reduce_range is not None else [False] if machine().vnni else [True, False]):
            log(f"calibrating on {len(calibration)} images (per-channel {'7' if option else '8'}-bit int8 weights, "
                "uint8 activations, min-max ranges)")
            quantize_static(str(prepared), str(int8.with_suffix(f".{int(option)}.onnx")), Reader(),
                            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=option,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            tried[option] = top1(int8.with_suffix(f".{int(option)}.onnx"), "int8")
        if len(tried) > 1:
            log("no VNNI here: int8 top-1 " + ", ".join(f"{'7' if o else '8'}-bit weights {t:.4f}" for o, t in tried.items()))
        chosen = max(tried, key=tried.__getitem__)
        int8 = int8.with_suffix(f".{int(chosen)}.onnx")
        result = QuantizeResult(top1(fp32, "fp32"), tried[chosen], len(test_images), len(calibration), chosen, False,
                                fp32.stat().st_size, int8.stat().st_size)
        if result.drop > max_drop:
            return result
        data = _with_meta(int8, {**meta, "input_shape": list(input_shape), "features": features, "precision": "int8",
                                 "reduce_range": chosen, "calibration_images": len(calibration),
                                 "fp32_top1": result.fp32_top1, "int8_top1": result.int8_top1,
                                 "test_images": len(test_images), "machine": machine().line()})
        atomic_write(out, lambda t: Path(t).write_bytes(data))
        result.written = True
        return result


def _export(module: nn.Module, example: Tensor, path: Path, features: bool) -> None:
    from .export import _quiet

    if not features:
        export_onnx(module, example, path)
        return
    with _quiet(), torch.no_grad():  # two outputs: the exporters of export_onnx name one
        torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, opset_version=18,
                          input_names=["input"], output_names=["logits", "features"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
                          do_constant_folding=True)


def _with_meta(path: Path, meta: dict[str, Any]) -> bytes:
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    return proto.SerializeToString()


__all__ = ["QuantizedModel", "QuantizeError", "QuantizeResult", "load_quantized", "is_quantized_file", "quantize",
           "ONNX_HINT"]
