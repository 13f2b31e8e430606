"""Fast forward-only inference: :func:`build_engine` picks and builds the engine that runs a network.

Candidates are (engine, precision) pairs: eager PyTorch and ``torch.compile``, ONNX Runtime and OpenVINO
(both on the same cached ONNX export), at fp32 and at the lower precisions the device computes natively
(:mod:`cnnzoo.runtime.precision`); an int8 file of ``cnnzoo quantize`` runs in ONNX Runtime or OpenVINO.
``engine="auto"`` and ``precision="auto"`` measure every candidate they allow on one batch and keep the
fastest that agrees with eager fp32; the choice is cached per machine and architecture, so a second run
neither exports nor measures again. A lower-precision engine is checked against eager fp32 on the first
real batch it runs, and replaced by the fastest fp32 candidate if it fails (one line says so).

Why these candidates on a CPU: ONNX Runtime ran fp32 at 2-5x eager PyTorch (issue 14); OpenVINO in bf16
ran ResNet-50 at 5x ONNX Runtime on an AMX Xeon (issue 21), while on an AVX512-BF16 EPYC without AMX its
bf16 was no faster than its fp32, and eager bf16 + channels_last beat both. Only measuring tells.
``torch.compile`` is a candidate on CUDA only (on a CPU it cost a minute of compiling per model).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import torch
from torch import Tensor, nn

from .cache import architecture_key, cache_home, onnx_file, read_choice, write_choice
from .engines import ENGINES, Engine, EngineError, eager_forward, first_line
from .export import ONNX_HINT, _label
from .precision import INT8_HINT, TOLERANCE, Agreement, agreement, check_requested, machine, native

if TYPE_CHECKING:
    from .quantize import QuantizedModel

#: each candidate of ``auto`` is timed for about this long after one warm-up batch (at least one run)
MEASURE_SECONDS = 1.0
ENGINE_HELP = ("the forward pass: eager PyTorch, torch.compile, ONNX Runtime, OpenVINO, or auto (measures them on "
               "one batch and keeps the fastest; the choice and the exported graph are cached)")
PRECISION_HELP = ("the arithmetic: fp32, bf16 or fp16 (where the device computes it), int8 (an int8 file of "
                  "`cnnzoo quantize`), or auto (the fastest the device computes natively, measured, and checked "
                  "against fp32 on the first batch)")


class Candidate(NamedTuple):
    engine: str
    precision: str

    def __str__(self) -> str:
        return f"{self.engine} {self.precision}"


def to_stderr(message: str) -> None:
    """The ``log`` of the commands: engine lines go to stderr, so that results on stdout stay clean."""
    print(message, file=sys.stderr, flush=True)


def build_engine(model: nn.Module | "QuantizedModel", input_shape: tuple[int, ...] | None = None, *,
                 engine: str = "auto", precision: str = "fp32", device: torch.device | str = "cpu",
                 batch_size: int = 32, cache_dir: str | os.PathLike | None = None,
                 log: Callable[[str], None] | None = None) -> Engine:
    """The forward pass of ``model`` (a module, put in eval mode, or an int8 file) for batches of ``input_shape``.

    ``engine`` is one of :data:`ENGINES` and ``precision`` one of :data:`PRECISIONS`. Where they leave more
    than one candidate, each is timed on a random batch of ``batch_size`` and the fastest kept, with one
    ``log`` line giving every candidate's images/s; a candidate that cannot take the model is skipped with
    a warning. An explicit engine and precision that cannot take the model raise :class:`EngineError`.
    """
    from .quantize import QuantizedModel

    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    device = torch.device(device)
    check_requested(precision, device)
    log = log or (lambda msg: None)
    cache = Path(cache_dir) if cache_dir is not None else cache_home()
    if isinstance(model, QuantizedModel):
        return _build_quantized(model, engine, precision, device, batch_size, cache, log)
    if precision == "int8":
        raise EngineError(f"--precision int8 needs an int8 model; {INT8_HINT}")
    model.eval()
    input_shape = tuple(int(s) for s in input_shape)
    if engine == "auto" and device.type == "cpu" and not onnx_available():
        log(f"engine auto: eager only (onnxruntime is not installed; {ONNX_HINT} for the faster CPU engines)")
    names = candidates(device, engine, precision)
    if len(names) == 1:
        built = _make(names[0], model, input_shape, device, cache)
        return _gated(built, model, log, lambda: _make(Candidate(names[0].engine, "fp32"), model, input_shape,
                                                          device, cache))
    return _auto(model, input_shape, device, batch_size, cache, log, names, engine, precision)


def candidates(device: torch.device, engine: str = "auto", precision: str = "auto") -> list[Candidate]:
    """The (engine, precision) pairs ``engine`` and ``precision`` allow on ``device``, most promising first."""
    if engine != "auto":
        if engine == "onnxruntime" and not onnx_available():
            raise EngineError(f"the onnxruntime engine needs onnx and onnxruntime; {ONNX_HINT}")
        if engine == "openvino":
            _require_openvino()
    lower = native(device)
    precisions = ["fp32", *lower] if precision == "auto" else [precision]
    if device.type == "cuda":
        order = ["compile", "eager"] + (["onnxruntime"] if _cuda_ort() else [])
        supports = {"compile": ("fp32", "bf16", "fp16"), "eager": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32",)}
    else:
        order = [e for e in ("openvino", "onnxruntime", "eager")
                 if e == "eager" or (e == "onnxruntime" and onnx_available()) or (e == "openvino" and openvino_ok())]
        order += ["compile"] if engine == "compile" else []
        supports = {"openvino": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32",), "eager": ("fp32", "bf16"),
                    "compile": ("fp32", "bf16")}
    if engine != "auto":
        order = [engine]
    found = [Candidate(e, p) for p in precisions for e in order if p in supports.get(e, ())]
    if not found:
        asked = f"--engine {engine}" if engine != "auto" else f"device {device.type}"
        can = sorted({p for e in order for p in supports.get(e, ())})
        raise EngineError(f"{asked} cannot run --precision {precision}; it runs {', '.join(can)}")
    return found


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def openvino_ok() -> bool:
    """OpenVINO is a candidate where it is installed and an ONNX export can be made for it."""
    from .engines import openvino

    return openvino.available() and onnx_available()


def _require_openvino() -> None:
    from .engines import openvino

    if not openvino_ok():
        missing = "openvino" if not openvino.available() else "onnx and onnxruntime"
        raise EngineError(f"the openvino engine needs {missing}; {openvino.OPENVINO_HINT}")


def _cuda_ort() -> bool:
    from .engines.onnxruntime import providers

    return onnx_available() and "CUDAExecutionProvider" in providers()


def _make(c: Candidate, module: nn.Module, input_shape: tuple[int, ...], device: torch.device, cache: Path) -> Engine:
    from .engines.eager import CompileEngine, EagerEngine

    try:
        if c.engine == "eager":
            return EagerEngine(module, input_shape, c.precision, device)
        if c.engine == "compile":
            engine: Engine = CompileEngine(module, input_shape, c.precision, device)
            x = torch.randn(2, *input_shape, device=device)
            _check_agrees(engine, x, eager_forward(module, x))  # compiles now, so a failure falls back here
            return engine
        path = onnx_file(module, input_shape, cache)
        if c.engine == "onnxruntime":
            from .engines.onnxruntime import OnnxRuntimeEngine

            return OnnxRuntimeEngine(module, input_shape, path, device, c.precision)
        if device.type != "cpu":
            raise EngineError(f"the openvino engine runs on the CPU here, not {device.type}")
        from .engines.openvino import OpenVinoEngine

        return OpenVinoEngine(module, input_shape, path, c.precision, cache / "openvino")
    except (EngineError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise EngineError(f"the {c} engine cannot run {_label(module)}: {first_line(exc)}") from exc


def _auto(module: nn.Module, input_shape: tuple[int, ...], device: torch.device, batch_size: int, cache: Path,
          log: Callable[[str], None], names: list[Candidate], engine: str, precision: str) -> Engine:
    what = f"engine {engine}, precision {precision}"
    h = architecture_key(module, input_shape)
    h.update(f"{device}|{batch_size}|{machine().line()}|{names}".encode())
    choice_file = cache / f"{_label(module)}-{h.hexdigest()[:20]}.choice.json"
    cached = read_choice(choice_file)
    fallback = lambda: _best_fp32(cached["rates"] if cached else {}, module, input_shape, device, cache)  # noqa: E731
    if cached and cached.get("choice") in map(str, names):
        c = Candidate(*cached["choice"].split())
        try:
            built = _make(c, module, input_shape, device, cache)
            log(f"{what}: {c} ({_rates_text(cached['rates'])}; measured before, cached in {choice_file.name})")
            return _gated(built, module, log, fallback)
        except EngineError as exc:
            warnings.warn(f"{exc}; measuring again", stacklevel=3)
    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    reference = eager_forward(module, x[:2])
    built_engines: dict[str, Engine] = {}
    rates: dict[str, float] = {}
    for c in names:
        try:
            candidate = built_engines.get(str(c)) or _make(c, module, input_shape, device, cache)
            found = agreement(c.precision, candidate(x[:2]), reference)
            if found.rel_error > _random_batch_limit(c.precision):
                raise EngineError(f"the {c} engine differs from eager fp32 by {100 * found.rel_error:.3g}% "
                                  f"on this model")
            rates[str(c)] = measure(candidate, x)
            built_engines[str(c)] = candidate
        except EngineError as exc:
            warnings.warn(f"{exc}; trying the next candidate", stacklevel=3)
    if not rates:  # every candidate failed its check: eager fp32 is always right
        log(f"{what}: eager fp32 (no other candidate could take this model)")
        return _make(Candidate("eager", "fp32"), module, input_shape, device, cache)
    best = max(rates, key=rates.__getitem__)
    log(f"{what}: {best} ({_rates_text(rates)} at batch {batch_size} of {'x'.join(map(str, input_shape))} "
        f"on {device.type})")
    write_choice(choice_file, {"choice": best, "rates": rates, "batch_size": batch_size, "machine": machine().line()})

    def fp32() -> Engine:
        kept = [n for n in rates if n.endswith(" fp32")]
        return built_engines[max(kept, key=rates.__getitem__)] if kept else fallback()

    return _gated(built_engines[best], module, log, fp32)


def _random_batch_limit(precision: str) -> float:
    """On random inputs a lower precision is only screened for being broken; the real check is the first batch."""
    return TOLERANCE[precision] if precision == "fp32" else 4 * TOLERANCE[precision]


def _best_fp32(rates: dict[str, float], module: nn.Module, input_shape: tuple[int, ...], device: torch.device,
               cache: Path) -> Engine:
    kept = sorted((n for n in rates if n.endswith(" fp32")), key=lambda n: -rates[n])
    for name in kept:
        try:
            return _make(Candidate(*name.split()), module, input_shape, device, cache)
        except EngineError:
            continue
    return _make(Candidate("eager", "fp32"), module, input_shape, device, cache)


class GatedEngine(Engine):
    """A lower-precision engine checked against eager fp32 on the first batch it runs; fp32 if it fails."""

    def __init__(self, inner: Engine, module: nn.Module, log: Callable[[str], None],
                 fallback: Callable[[], Engine]) -> None:
        super().__init__(module, inner.input_shape, inner.precision)
        self.inner, self.log, self.fallback = inner, log, fallback
        self.name = inner.name
        self.checked: Agreement | None = None

    def __call__(self, x: Tensor) -> Tensor:
        if self.checked is not None or tuple(x.shape[1:]) != self.input_shape or x.dtype != torch.float32 \
                or x.shape[0] == 0:
            return self.inner(x)
        got = self.inner(x)
        self.checked = agreement(self.inner.precision, got, eager_forward(self.module, x))
        if self.checked.ok:
            self.log(f"{self.inner.label} checked against fp32 on the first batch: {self.checked.text()}")
            return got
        self.inner = self.fallback()
        self.name, self.precision = self.inner.name, self.inner.precision
        self.log(f"{self.checked.precision} failed its check against fp32 on the first batch "
                 f"({self.checked.text()}): running {self.inner.label} instead")
        return self.inner(x)


def _gated(engine: Engine, module: nn.Module, log: Callable[[str], None], fallback: Callable[[], Engine]) -> Engine:
    return engine if engine.precision == "fp32" else GatedEngine(engine, module, log, fallback)


def _build_quantized(model: "QuantizedModel", engine: str, precision: str, device: torch.device, batch_size: int,
                     cache: Path, log: Callable[[str], None]) -> Engine:
    from .engines.onnxruntime import OnnxRuntimeEngine
    from .engines.openvino import OpenVinoEngine

    if precision not in ("auto", "int8"):
        raise EngineError(f"{model.path} is an int8 model; it runs at --precision int8 (or auto), not {precision}")
    if engine in ("eager", "compile"):
        raise EngineError(f"{model.path} is an int8 ONNX model: it runs in --engine onnxruntime or openvino, "
                          f"not {engine}")
    names = [e for e in ("openvino", "onnxruntime") if engine in ("auto", e)
             and (onnx_available() if e == "onnxruntime" else openvino_ok())]
    if engine == "openvino":
        _require_openvino()
    if not names:
        raise EngineError(f"an int8 model needs onnxruntime or openvino; {ONNX_HINT}")

    def make(name: str) -> Engine:
        try:
            if name == "onnxruntime":
                return OnnxRuntimeEngine(None, model.input_shape, model.path, device, "int8", model.output)
            return OpenVinoEngine(None, model.input_shape, model.path, "int8", cache / "openvino", model.output)
        except Exception as exc:
            raise EngineError(f"the {name} engine cannot run {model.path}: {first_line(exc)}") from exc

    if len(names) == 1:
        return make(names[0])
    x = torch.randn(batch_size, *model.input_shape, generator=torch.Generator().manual_seed(0))
    built = {name: make(name) for name in names}
    rates = {f"{name} int8": measure(e, x) for name, e in built.items()}
    best = max(rates, key=rates.__getitem__)
    log(f"engine {engine}, precision int8: {best} ({_rates_text(rates)} at batch {batch_size})")
    return built[best.split()[0]]


def measure(engine: Callable[[Tensor], Tensor], x: Tensor, seconds: float = MEASURE_SECONDS, max_runs: int = 5) -> float:
    """Images per second of ``engine`` on ``x``: the fastest of a few timed runs after one warm-up."""
    engine(x)
    _sync(x.device)
    times: list[float] = []
    start = time.perf_counter()
    while not times or (len(times) < max_runs and time.perf_counter() - start < seconds):
        t0 = time.perf_counter()
        engine(x)
        _sync(x.device)
        times.append(time.perf_counter() - t0)
    return x.shape[0] / min(times)


def _check_agrees(engine: Engine, x: Tensor, reference: Tensor) -> None:
    got = engine(x)
    diff = (got.float() - reference.float()).abs().max().item()
    limit = 1e-4 if engine.precision == "fp32" else 0.2
    if not diff <= limit * max(1.0, reference.abs().max().item()):
        raise EngineError(f"the {engine.label} engine differs from eager by {diff:.3g} on this model")


def _rates_text(rates: dict[str, float]) -> str:
    return ", ".join(f"{name} {rate:,.1f} img/s" for name, rate in sorted(rates.items(), key=lambda kv: -kv[1]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
