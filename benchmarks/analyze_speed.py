"""How fast ``cnnzoo.analyze`` is, against torchinfo and fvcore on the same models in the same run.

For every registered model (or those matching ``--models``) at its default input:

- ``ours(name)``: ``analyze(name)``: build the model on the meta device and trace it;
- ``ours(module)``: ``analyze(model)`` on an already built CPU model (a meta copy that copies no weights);
- ``torchinfo``: ``torchinfo.summary(model, input_size=(1, C, H, W))`` on the same built model (it runs a
  real forward pass on the CPU);
- ``fvcore``: ``FlopCountAnalysis(model, x).total()`` plus ``parameter_count(model)`` (a JIT trace and a
  real forward pass).

Each figure is the best of ``--repeat`` runs after one warm-up call per tool; the ratios are
baseline / ours(module), both given the same built model. Run: ``python benchmarks/analyze_speed.py``
(``--no-baselines`` for our figures alone; the baselines build every model with real weights and take
minutes).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
import warnings
from typing import Callable

import torch

import cnnzoo
from cnnzoo.analysis import analyze


def measure(fn: Callable[[], object], repeat: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of ``repeat`` calls; CPU time shows what a shared machine's load adds
    to the wall clock."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return runs


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Wall-clock seconds of the fastest of ``repeat`` calls."""
    return min(measure(fn, repeat))[0]


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"load average {load:.1f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="fnmatch pattern of registered models (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    parser.add_argument("--no-baselines", action="store_true", help="time cnnzoo alone")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    names = cnnzoo.list_models(args.models)
    print(f"{len(names)} models; best of {args.repeat} runs each; {hardware()}")

    analyze("lenet5")  # warm-up: imports and first-call overheads
    runs = {name: measure(lambda: analyze(name), args.repeat) for name in names}
    ours = {name: min(r)[0] for name, r in runs.items()}
    first_wall, first_cpu = (sum(r[0][i] for r in runs.values()) for i in (0, 1))
    print(f"whole zoo, analyze(name) for each model (build on meta + trace): first pass {first_wall:.2f} s wall "
          f"({first_cpu:.2f} s CPU); best of {args.repeat} per model {sum(ours.values()):.2f} s wall "
          f"({sum(min(r)[1] for r in runs.values()):.2f} s CPU)")
    zoo_once = sum(ours.values())
    if args.no_baselines:
        for name in names:
            print(f"  {name:26s} {ours[name] * 1e3:8.1f} ms wall {min(runs[name])[1] * 1e3:8.1f} ms CPU")
        return

    import torchinfo
    from fvcore.nn import FlopCountAnalysis, parameter_count

    def fvcore_count(model: torch.nn.Module, x: torch.Tensor) -> None:
        counter = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        counter.total()
        parameter_count(model)

    head = (f"{'model':26s} {'input':>10s} {'ours(name)':>11s} {'ours(module)':>13s} {'torchinfo':>10s} "
            f"{'fvcore':>9s} {'torchinfo/ours':>15s} {'fvcore/ours':>12s}")
    print(head)
    print("-" * len(head))
    small = cnnzoo.create_model("lenet5").eval()
    analyze(small)
    torchinfo.summary(small, input_size=(1, 1, 32, 32), verbose=0, mode="eval")
    fvcore_count(small, torch.zeros(1, 1, 32, 32))
    totals = {"mine": 0.0, "torchinfo": 0.0, "fvcore": 0.0}
    for name in names:
        size = cnnzoo.model_info(name).input_size
        model = cnnzoo.create_model(name).eval()
        x = torch.randn(1, *size)
        mine = best_of(lambda: analyze(model), args.repeat)
        with torch.no_grad():
            info = best_of(lambda: torchinfo.summary(model, input_size=(1, *size), verbose=0, mode="eval"),
                           args.repeat)
            fv = best_of(lambda: fvcore_count(model, x), args.repeat)
        totals["mine"] += mine
        totals["torchinfo"] += info
        totals["fvcore"] += fv
        print(f"{name:26s} {'x'.join(map(str, size)):>10s} {ours[name]:10.3f}s {mine:12.3f}s {info:9.3f}s "
              f"{fv:8.3f}s {info / mine:14.1f}x {fv / mine:11.1f}x", flush=True)
        del model, x
        gc.collect()
    mine = totals["mine"]
    print(f"{'all':26s} {'':>10s} {zoo_once:10.3f}s {mine:12.3f}s {totals['torchinfo']:9.3f}s "
          f"{totals['fvcore']:8.3f}s {totals['torchinfo'] / mine:14.1f}x {totals['fvcore'] / mine:11.1f}x")


if __name__ == "__main__":
    main()
