"""Timing and peak memory of calls, as :mod:`cnnzoo.runtime.benchmark` measures them (see its docstring)."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

MB = 1e6



@dataclass(frozen=True)
class Timing:
    """Seconds per call of each timed block, and the calls and seconds of the whole timed window."""

    samples: tuple[float, ...]
    calls: int
    seconds: float

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> float:
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q3 - q1


def time_calls(fn: Callable[[], Any], *, budget_s: float, warmup: int = 2, min_runs: int = 3,
               sync: Callable[[], None] = lambda: None, on_start: Callable[[], None] = lambda: None,
               on_stop: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time ``fn`` in blocks until ``budget_s`` is spent and ``min_runs`` blocks are in; see the module docstring.

    ``on_start``/``on_stop`` bracket the timed window (a power meter), after warm-up and before the last sync.
    """
    for _ in range(warmup):
        fn()
    sync()
    t0 = clock()
    fn()
    sync()
    one = max(clock() - t0, 1e-9)
    number = max(1, int(budget_s / 20 / one))
    samples: list[float] = []
    on_start()
    start = clock()
    while len(samples) < min_runs or clock() - start < budget_s:
        t0 = clock()
        for _ in range(number):
            fn()
        sync()
        samples.append((clock() - t0) / number)
    seconds = clock() - start
    on_stop()
    return Timing(tuple(samples), number * len(samples), seconds)


# --- memory --------------------------------------------------------------------------------------------

def _malloc_trim() -> None:
    """Hand glibc's free heap back to the system, so the next row's peak is not hidden in cached pages."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


class CpuMemory:
    """Peak resident memory of this process over a baseline, through ``/proc/self`` (Linux)."""

    method = "CPU: peak resident memory of the process (VmHWM) over its resident memory before the model"

    #: resident memory when the peak was last reset: where memory the process freed since the baseline (a
    #: previous engine's arenas) leaves it below the baseline, the peak is counted from here, never negative
    start = float("inf")

    def __init__(self) -> None:
        try:
            _status_kb("VmHWM")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reason = ""
        except OSError as exc:
            self.reason = f"the process's peak memory cannot be read and reset here ({exc})"

    def baseline(self) -> float:
        gc.collect()
        _malloc_trim()
        return _status_kb("VmRSS") * 1024 if not self.reason else 0.0

    def reset(self) -> None:
        if not self.reason:
            _malloc_trim()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.start = _status_kb("VmRSS") * 1024

    def peak_mb(self, baseline: float) -> float | None:
        if self.reason:
            return None
        return round((_status_kb("VmHWM") * 1024 - min(baseline, self.start)) / MB, 1)


class CudaMemory:
    """The CUDA caching allocator's peak over what was allocated before the model."""

    method = "CUDA: the caching allocator's peak (max_memory_allocated) over the memory allocated before the model"
    reason = ""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def baseline(self) -> float:
        gc.collect()
        torch.cuda.empty_cache()
        return float(torch.cuda.memory_allocated(self.device))

    def reset(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self, baseline: float) -> float:
        return round((torch.cuda.max_memory_allocated(self.device) - baseline) / MB, 1)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
