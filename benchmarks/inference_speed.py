"""Forward-only speed at each precision: every engine measured directly, beside cnnzoo's auto, in one run.

For each model and batch size (eval mode, the same random weights, a random batch), the baselines are
built by hand from the libraries' own APIs:

- ``eager fp32``: ``model(x)`` under ``torch.inference_mode()``;
- ``eager bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)`` with channels_last;
- ``onnxruntime fp32`` / ``openvino fp32`` / ``openvino bf16``: the ONNX export in an ONNX Runtime session,
  and compiled by OpenVINO with ``INFERENCE_PRECISION_HINT`` f32 / bf16;
- ``onnxruntime int8`` / ``openvino int8``: one QDQ file from ONNX Runtime's ``quantize_static`` (per-channel,
  calibrated on random batches: this measures speed, not accuracy), in each runtime;

and cnnzoo's ``build_engine(engine="auto", precision="auto")`` with an empty cache (its one-time cost is
printed), and its int8 auto on the same QDQ file. Engines are timed in interleaved rounds (each runs two
untimed batches and one timed batch per round), so a change in the machine's load hits all alike; figures
are median images/s. Ratios: cnnzoo auto against the best fp32/bf16 baseline and against eager fp32;
int8 against bf16. The issue's targets on a CPU with AMX: auto >= 0.9x the best fp32/bf16 candidate; an int8
file >= 1.4x bf16 for ResNet-50; on a CPU without them, never slower than before (auto = onnxruntime fp32).

Run: ``python benchmarks/inference_speed.py`` (``--models a,b``, ``--batches 1,16``, ``--rounds N``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import cnnzoo
from cnnzoo.runtime import build_engine, machine
from cnnzoo.runtime.export import export_onnx, ort_session
from cnnzoo.runtime.quantize import QuantizedModel


def baselines(model: torch.nn.Module, shape: tuple[int, ...], folder: Path) -> dict:
    import openvino as ov
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, prepared, int8 = folder / "fp32.onnx", folder / "prep.onnx", folder / "int8.onnx"
    export_onnx(model, torch.randn(2, *shape), fp32)
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    calib = iter([{"input": np.random.default_rng(i).standard_normal((4, *shape), dtype=np.float32)} for i in range(4)])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(calib, None)

    quantize_static(str(prepared), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=not machine().vnni)
    cl = torch.channels_last
    bf16_model = __import__("copy").deepcopy(model).to(memory_format=cl)
    core = ov.Core()
    threads = torch.get_num_threads()

    def ov_run(path: Path, hint: str):
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                                         "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        return lambda x: request.infer({0: x.numpy()})

    def ort_run(path: Path):
        session = ort_session(str(path), threads)
        return lambda x: session.run(None, {"input": x.numpy()})

    def eager(x):
        with torch.inference_mode():
            return model(x)

    def eager_bf16(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return bf16_model(x.contiguous(memory_format=cl))

    return {"eager fp32": eager, "eager bf16": eager_bf16, "onnxruntime fp32": ort_run(fp32),
            "openvino fp32": ov_run(fp32, "f32"), "openvino bf16": ov_run(fp32, "bf16"),
            "onnxruntime int8": ort_run(int8), "openvino int8": ov_run(int8, "f32"), "_int8_file": int8}


def run_case(name: str, batch: int, rounds: int) -> None:
    info = cnnzoo.model_info(name)
    torch.manual_seed(0)
    model = cnnzoo.create_model(name).eval()
    shape = tuple(info.input_size)
    x = torch.randn(batch, *shape)
    with tempfile.TemporaryDirectory() as tmp:
        engines = baselines(model, shape, Path(tmp))
        int8_file = engines.pop("_int8_file")
        t0 = time.perf_counter()
        lines: list[str] = []
        auto = build_engine(model, shape, engine="auto", precision="auto", batch_size=batch, cache_dir=tmp,
                            log=lines.append)
        auto(x)  # the first batch's check against fp32
        setup = time.perf_counter() - t0
        q = QuantizedModel(int8_file, {"input_shape": list(shape), "num_classes": info.num_classes})
        auto8 = build_engine(q, engine="auto", precision="int8", batch_size=batch, cache_dir=tmp, log=lines.append)
        engines[f"cnnzoo auto ({auto.label})"] = auto
        engines[f"cnnzoo int8 ({auto8.label})"] = auto8
        times: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(rounds):
            for label, run in engines.items():
                run(x)  # two untimed batches: another runtime's worker threads may still hold the cores
                run(x)
                t = time.perf_counter()
                run(x)
                times[label].append(time.perf_counter() - t)
    rate = {k: batch / statistics.median(v) for k, v in times.items()}
    print(f"\n{name}, batch {batch} of {'x'.join(map(str, shape))} ({rounds} rounds; auto's setup "
          f"{setup:.1f} s: {lines[0]})")
    for label, r in sorted(rate.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<40} {r:>9,.1f} img/s  {r / rate['eager fp32']:5.2f}x eager fp32")
    best = max((k for k in rate if not k.startswith("cnnzoo") and "int8" not in k), key=rate.__getitem__)
    auto_key = next(k for k in rate if k.startswith("cnnzoo auto"))
    int8_key = next(k for k in rate if k.startswith("cnnzoo int8"))
    bf16 = max(rate["eager bf16"], rate["openvino bf16"])
    print(f"  cnnzoo auto / best fp32-bf16 baseline ({best}): {rate[auto_key] / rate[best]:.2f}x; "
          f"cnnzoo int8 / best bf16: {rate[int8_key] / bf16:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="resnet50,mobilenet_v2,efficientnet_lite0")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    print(machine().line())
    for name in args.models.split(","):
        for batch in map(int, args.batches.split(",")):
            run_case(name, batch, args.rounds)


if __name__ == "__main__":
    main()
