"""How long ``cnnzoo report`` takes to build a page and how large the page is, beside ``cnnzoo summary``.

For each model (default: resnet50 and the three largest), in the same run, best of ``--repeat`` after
one warm-up, wall and CPU seconds of:

- ``summary``: ``render(analyze(name))``, the text table of ``cnnzoo summary`` (the baseline);
- ``report``: ``report_html([analyze(name)])``, the whole page, from the same kind of trace;
- ``page only``: ``report_html`` on an analysis made beforehand: what the page adds to the trace.

The ratio is report / summary. Sizes are the page's UTF-8 bytes. Run: ``python benchmarks/report_speed.py``.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Callable

import torch

from cnnzoo.analysis import analyze, render
from cnnzoo.report import report_html


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of ``repeat`` calls, after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "resnet152", "densenet264", "inception_v4"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads; best of {args.repeat}, wall (CPU) seconds")
    print(f"{'model':<14} {'summary':>15} {'report':>15} {'page only':>15} {'report/summary':>15} {'page size':>11}")
    for name in args.models:
        summary = best(lambda: render(analyze(name)), args.repeat)
        report = best(lambda: report_html([analyze(name)]), args.repeat)
        a = analyze(name)
        page = best(lambda: report_html([a]), args.repeat)
        size = len(report_html([a]).encode())
        cell = lambda t: f"{t[0]:.3f} ({t[1]:.3f})"  # noqa: E731
        print(f"{name:<14} {cell(summary):>15} {cell(report):>15} {cell(page):>15} "
              f"{report[0] / summary[0]:>14.2f}x {size / 1e3:>8,.0f} kB")


if __name__ == "__main__":
    main()
