"""Forward-only speed: eager PyTorch, ``torch.compile`` and cnnzoo's ``--engine auto``, side by side in one run.

For each model (fp32, eval mode, the same weights, a random batch):

- ``eager``: ``model(x)`` under ``torch.inference_mode()``;
- ``compile``: ``torch.compile(model)`` (inductor, default mode), compiled on a warm-up batch;
- ``auto``: ``cnnzoo.runtime.build_engine(model, ..., engine="auto")`` with an empty cache, so its
  one-time cost (export, measuring the candidates) is shown too; then the engine it picked.

The engines are timed in interleaved rounds (per round, each engine runs one untimed batch and then one
timed batch), so a change in the machine's load hits all of them alike; the figure is the median round,
with the best beside it. Ratios are against
eager's median. Outputs are checked against eager (max abs diff on logits). The issue's targets on CPU:
auto >= 4x eager for EfficientNet-Lite0 and MobileNet-v2, >= 2.5x for ResNet-50.

Run: ``python benchmarks/inference_speed.py`` (``--rounds N``, ``--models a,b``, ``--no-compile``,
``--threads N``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

import torch

import analyze_speed  # benchmarks/: the same hardware line as the other scripts
import cnnzoo
from cnnzoo.runtime import build_engine

#: (model, batch size): the issue's table
CASES = (("efficientnet_lite0", 32), ("mobilenet_v2", 32), ("resnet50", 32), ("lenet5", 256))


def hardware() -> str:
    import onnxruntime

    return f"{analyze_speed.hardware()}, onnxruntime {onnxruntime.__version__}"


def run_case(name: str, batch: int, rounds: int, with_compile: bool) -> None:
    info = cnnzoo.model_info(name)
    torch.manual_seed(0)
    model = cnnzoo.create_model(name).eval()
    x = torch.randn(batch, *info.input_size)
    with torch.inference_mode():
        reference = model(x)

    def eager(batch_x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(batch_x)

    engines = {"eager": eager}
    setup = {}
    if with_compile:
        compiled = torch.compile(model)

        def run_compiled(batch_x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return compiled(batch_x)

        t0 = time.perf_counter()
        run_compiled(x)
        setup["compile"] = time.perf_counter() - t0
        engines["compile"] = run_compiled
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        auto = build_engine(model, info.input_size, engine="auto", batch_size=batch, cache_dir=cache, log=lines.append)
        setup["auto"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_engine(model, info.input_size, engine="auto", batch_size=batch, cache_dir=cache)
        setup["auto, cached"] = time.perf_counter() - t0
    engines[f"auto ({auto.name})"] = auto

    diffs = {label: (fn(x) - reference).abs().max().item() for label, fn in engines.items()}
    times: dict[str, list[float]] = {label: [] for label in engines}
    for _ in range(rounds):
        for label, fn in engines.items():
            fn(x)  # untimed: the previous engine's threads may still hold the cores
            t0 = time.perf_counter()
            fn(x)
            times[label].append(time.perf_counter() - t0)
    base = batch / statistics.median(times["eager"])
    print(f"\n{name}, batch {batch}, {'x'.join(map(str, info.input_size))}, fp32  [{lines[0]}]")
    print(f"  setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items())
          + f"; largest |logit| {reference.abs().max().item():.2g} (initial weights)")
    print(f"  {'engine':<22}{'img/s (median)':>15}{'best':>10}{'vs eager':>10}{'max |diff|':>12}")
    for label, ts in times.items():
        rate, best = batch / statistics.median(ts), batch / min(ts)
        print(f"  {label:<22}{rate:>15,.1f}{best:>10,.1f}{rate / base:>9.2f}x{diffs[label]:>12.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per engine (default 5)")
    parser.add_argument("--models", help="comma-separated subset of " + ",".join(n for n, _ in CASES))
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out (it compiles for minutes)")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads, which ONNX Runtime's follow "
                                                    "(default: torch's own, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    wanted = set(args.models.split(",")) if args.models else None
    print(f"{hardware()}; {args.rounds} interleaved rounds per engine")
    t0 = time.perf_counter()
    for name, batch in CASES:
        if wanted is None or name in wanted:
            run_case(name, batch, args.rounds, not args.no_compile)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
