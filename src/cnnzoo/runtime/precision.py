"""Numeric precision: what this machine computes natively, and the check a lower precision must pass.

``--precision auto`` considers bf16 (and fp16) only where the device computes it natively — CUDA GPUs with
bf16, CPUs with AMX or AVX512-BF16 as PyTorch reports them — and keeps it only where it was measured
faster (:mod:`cnnzoo.runtime.build`). A CPU name decides nothing: the same Xeon or EPYC name covers parts
with and without these units.

Every lower-precision engine is checked against fp32 on the first real batch it runs (:class:`Agreement`):
the top-1 class of each image, and the relative error of the outputs. A failure falls back to fp32.
"""

from __future__ import annotations

import functools
import math
import os
import platform
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import CnnzooError

#: what ``--precision`` accepts
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: the largest relative error ``||low - fp32|| / ||fp32||`` of a batch's outputs each precision may have
TOLERANCE = {"fp32": 1e-4, "bf16": 0.05, "fp16": 0.01, "int8": 0.15}
#: the smallest share of a batch whose top-1 class must be the fp32 one
MIN_TOP1_AGREEMENT = 0.9
INT8_HINT = "an int8 model is a file: make one with `cnnzoo quantize MODEL --weights W --data D --out FILE.onnx`"


class PrecisionError(CnnzooError):
    """A precision this machine or this model cannot run."""


@dataclass(frozen=True)
class Machine:
    """What the machine computes natively, as PyTorch (and OpenVINO, where installed) report it."""

    cpu: str
    cores: int
    threads: int
    isa: str
    amx: bool
    amx_fp16: bool
    avx512_bf16: bool
    vnni: bool
    avx2: bool
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def cpu_bf16(self) -> bool:
        return (self.amx or self.avx512_bf16) and torch.backends.mkldnn.is_available()

    def line(self) -> str:
        """One line of the machine's capabilities, printed beside every speed figure."""
        flags = ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in (
            ("AMX", self.amx), ("AVX512-BF16", self.avx512_bf16), ("VNNI", self.vnni), ("AVX2", self.avx2)))
        libs = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return f"machine: {self.cpu} ({self.cores} cores); {flags}; torch ISA {self.isa}; " \
               f"{self.threads} thread{'s' if self.threads != 1 else ''}; {libs}"


def machine() -> Machine:
    """This machine's :class:`Machine`, the threads being torch's current number."""
    return _machine(torch.get_num_threads())


@functools.lru_cache(maxsize=8)
def _machine(threads: int) -> Machine:
    import importlib.metadata as md

    cpu = torch.cpu
    versions = {"torch": torch.__version__}
    for dist in ("onnxruntime", "openvino"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return Machine(cpu=_cpu_name(), cores=os.cpu_count() or 1, threads=threads,
                   isa=torch.backends.cpu.get_cpu_capability(), amx=cpu._is_amx_tile_supported(),
                   amx_fp16=cpu._is_amx_fp16_supported(), avx512_bf16=cpu._is_avx512_bf16_supported(),
                   vnni=cpu._is_vnni_supported(), avx2=cpu._is_avx2_supported(), versions=versions)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native(device: torch.device) -> tuple[str, ...]:
    """The precisions below fp32 that ``device`` computes natively (int8 aside: it needs an int8 file)."""
    if device.type == "cuda":
        return ("bf16", "fp16") if torch.cuda.is_bf16_supported() else ("fp16",)
    m = machine()
    return (("bf16",) if m.cpu_bf16 else ()) + (("fp16",) if m.amx_fp16 else ())


def check_requested(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run at all, in one line."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu" and "fp16" not in native(device):
        raise PrecisionError("--precision fp16: this CPU has no native half-precision arithmetic (AMX-FP16); "
                             "use bf16 or fp32 here, or a CUDA device")


@dataclass(frozen=True)
class Agreement:
    """How a lower-precision batch of outputs agrees with fp32's."""

    precision: str
    top1_same: int
    n: int
    rel_error: float

    @property
    def ok(self) -> bool:
        return self.rel_error <= TOLERANCE[self.precision] and self.top1_same >= math.ceil(MIN_TOP1_AGREEMENT * self.n)

    def text(self) -> str:
        return f"top-1 agrees on {self.top1_same}/{self.n}, relative error {100 * self.rel_error:.2f}% " \
               f"(limit {100 * TOLERANCE[self.precision]:g}%)"


def agreement(precision: str, got: Tensor, reference: Tensor) -> Agreement:
    """Compare ``got`` (a lower precision's outputs) with ``reference`` (fp32's) for the same batch."""
    got, reference = got.float().cpu(), reference.float().cpu()
    if got.shape != reference.shape:
        return Agreement(precision, 0, max(1, reference.shape[0]), math.inf)
    rel = ((got - reference).norm() / reference.norm().clamp(min=1e-12)).item()
    if not math.isfinite(rel):
        rel = math.inf
    flat_got, flat_ref = got.reshape(len(got), -1), reference.reshape(len(reference), -1)
    same = int((flat_got.argmax(1) == flat_ref.argmax(1)).sum()) if flat_ref.shape[1] > 1 else len(got)
    return Agreement(precision, same, len(got), rel)
