"""Fast forward-only inference: one callable over eager PyTorch, ``torch.compile`` or ONNX Runtime.

:func:`build_engine` returns an :class:`Engine`: a function from a float32 ``N x C x H x W`` batch of
any size to the module's output, on the batch's device. ``engine="auto"`` measures the candidates for
the device on one batch and keeps the fastest; the choice is cached beside the exported graph, so a
second run neither exports nor measures again.

Why ONNX Runtime on CPU: on the 2-core machine of issue 14 it ran ResNet-50 at about the machine's
fp32 matmul rate, 2.7x eager PyTorch and 1.6x ``torch.compile``, and EfficientNet-Lite0 at 5.5x eager
(``benchmarks/inference_speed.py`` measures it again). ``torch.compile`` is therefore not a CPU
candidate of ``auto`` (it also costs a minute of compiling per model there); on CUDA it is.

Exported graphs are cached under ``cache_dir``, else ``$CNNZOO_CACHE/onnx``, else
``$XDG_CACHE_HOME/cnnzoo/onnx`` (``~/.cache/cnnzoo/onnx``), keyed by the module's class, its registry
name and arguments, a hash of its weights, the input shape and the torch and onnx versions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .errors import CnnzooError
from .export import ONNX_HINT, LogitsOnly, _label, export_onnx, first_tensor, ort_session, verify

ENGINES = ("auto", "eager", "compile", "onnxruntime")
#: bumped when the export or the cache layout changes, so old cached graphs are not reused
CACHE_VERSION = "1"
#: each candidate of ``auto`` is timed for about this long after one warm-up batch (at least one run)
MEASURE_SECONDS = 1.0


ENGINE_HELP = ("the forward pass: eager PyTorch, torch.compile, ONNX Runtime, or auto (measures them on one batch "
               "and keeps the fastest; the choice and the exported graph are cached)")


class EngineError(CnnzooError):
    """An engine that cannot run here (not installed, no such engine, or it cannot take this model)."""


class Engine:
    """A forward pass: ``engine(x)`` is the module's output (logits) for the float32 batch ``x``."""

    name: str = ""

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...]) -> None:
        self.module = module
        self.input_shape = tuple(input_shape)

    def __call__(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.input_shape or x.dtype != torch.float32 or x.shape[0] == 0:
            return _eager(self.module, x)  # what it was not built for: eager gives the answer (or the error)
        return self._run(x)

    def _run(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape})"


class EagerEngine(Engine):
    name = "eager"

    def _run(self, x: Tensor) -> Tensor:
        return _eager(self.module, x)


class CompileEngine(Engine):
    """``torch.compile`` of the module, compiled (and checked) on the first batch at build time."""

    name = "compile"

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...]) -> None:
        super().__init__(module, input_shape)
        self.compiled = torch.compile(LogitsOnly(module))

    def _run(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.compiled(x).float()


class OnnxRuntimeEngine(Engine):
    """An ONNX Runtime session on the module exported with a dynamic batch axis."""

    name = "onnxruntime"

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...], path: Path, device: torch.device) -> None:
        super().__init__(module, input_shape)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else None
        self.path = path
        self.session = ort_session(str(path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def _run(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


class EngineModule(nn.Module):
    """An engine as an ``nn.Module``, for code that calls ``.eval()`` and ``forward`` on what it is given."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, x: Tensor) -> Tensor:
        return self.engine(x)


def to_stderr(message: str) -> None:
    """The ``log`` of the commands: engine lines go to stderr, so that results on stdout stay clean."""
    import sys

    print(message, file=sys.stderr, flush=True)


def build_engine(module: nn.Module, input_shape: tuple[int, int, int], *, engine: str = "auto",
                 device: torch.device | str = "cpu", batch_size: int = 32,
                 cache_dir: str | os.PathLike | None = None, log: Callable[[str], None] | None = None) -> Engine:
    """The forward pass of ``module`` (put in eval mode) for batches of ``input_shape`` on ``device``.

    ``engine`` is one of :data:`ENGINES`. ``auto`` times each candidate for the device on a random batch
    of ``batch_size`` and keeps the fastest, saying which in one ``log`` line with each one's images/s;
    a candidate that cannot take the model is skipped with one warning. An explicit engine that cannot
    take the model raises :class:`EngineError`.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    device = torch.device(device)
    module.eval()
    input_shape = tuple(int(s) for s in input_shape)
    cache = Path(cache_dir) if cache_dir is not None else cache_home()
    if engine != "auto":
        if engine == "onnxruntime" and not onnx_available():
            raise EngineError(f"the onnxruntime engine needs onnx and onnxruntime; {ONNX_HINT}")
        return _make(engine, module, input_shape, device, cache)
    return _auto(module, input_shape, device, batch_size, cache, log or (lambda msg: None))


def candidates(device: torch.device) -> tuple[str, ...]:
    """The engines ``auto`` measures on ``device``, most promising first."""
    have_ort = onnx_available()
    if device.type == "cuda":
        cuda_ort = have_ort and "CUDAExecutionProvider" in _ort_providers()
        return ("compile", "eager", *(("onnxruntime",) if cuda_ort else ()))
    return ("onnxruntime", "eager") if have_ort else ("eager",)


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def cache_home() -> Path:
    """Where exported graphs live: ``$CNNZOO_CACHE/onnx``, else ``$XDG_CACHE_HOME/cnnzoo/onnx``."""
    if env := os.environ.get("CNNZOO_CACHE"):
        return Path(env) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnzoo" / "onnx"


def cache_key(module: nn.Module, input_shape: tuple[int, ...]) -> str:
    """A hex digest naming ``module`` with its weights at ``input_shape`` for this torch and onnx."""
    from importlib.metadata import version

    h = hashlib.sha256()
    named = next((m for m in module.modules() if getattr(m, "model_name", None)), None)
    parts: list[Any] = [CACHE_VERSION, f"{type(module).__module__}.{type(module).__qualname__}",
                        getattr(named, "model_name", None), _jsonable(getattr(named, "model_args", None)),
                        list(input_shape), torch.__version__, version("onnx")]
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    h.update(hashlib.sha256(repr(module).encode()).digest())  # the architecture, wrappers' settings included
    h.update(state_hash(module).encode())
    return h.hexdigest()


def state_hash(module: nn.Module) -> str:
    """A digest of every tensor of the state dict: names, dtypes, shapes and bytes."""
    h = hashlib.blake2b(digest_size=32)
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def onnx_file(module: nn.Module, input_shape: tuple[int, ...], cache: Path) -> Path:
    """The module's verified ONNX export in ``cache``, exporting it only when it is not there yet."""
    path = cache / f"{_label(module)}-{cache_key(module, input_shape)[:20]}.onnx"
    if path.is_file():
        return path
    example = torch.randn(2, *input_shape).to(_device_of(module))
    export_onnx(module, example, path)
    try:
        verify(module, _ort_runner(path), input_shape)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _make(name: str, module: nn.Module, input_shape: tuple[int, ...], device: torch.device, cache: Path) -> Engine:
    try:
        if name == "eager":
            return EagerEngine(module, input_shape)
        if name == "compile":
            engine: Engine = CompileEngine(module, input_shape)
            x = torch.randn(2, *input_shape, device=device)
            _check_agrees(engine, x, _eager(module, x))  # compiles now, so a failure falls back here
            return engine
        return OnnxRuntimeEngine(module, input_shape, onnx_file(module, input_shape, cache), device)
    except (EngineError, KeyboardInterrupt):
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"the {name} engine cannot run {_label(module)}: {reason}") from exc


def _auto(module: nn.Module, input_shape: tuple[int, ...], device: torch.device, batch_size: int, cache: Path,
          log: Callable[[str], None]) -> Engine:
    names = candidates(device)
    if names == ("eager",):
        log(f"engine auto: eager (onnxruntime is not installed; {ONNX_HINT} for a faster CPU engine)")
        return EagerEngine(module, input_shape)
    choice_file = None
    if onnx_available():
        threads = torch.get_num_threads()
        choice_file = cache / f"{_label(module)}-{cache_key(module, input_shape)[:20]}.auto-{device.type}-" \
                              f"b{batch_size}-t{threads}.json"
        cached = _read_choice(choice_file, names)
        if cached is not None:
            try:
                engine = _make(cached["engine"], module, input_shape, device, cache)
                log(f"engine auto: {cached['engine']} ({_rates_text(cached['rates'])}; measured before, "
                    f"cached in {choice_file.name})")
                return engine
            except EngineError as exc:
                warnings.warn(f"{exc}; measuring again", stacklevel=2)
    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    reference = _eager(module, x[:2])
    built: dict[str, Engine] = {}
    rates: dict[str, float] = {}
    for name in names:
        try:
            engine = _make(name, module, input_shape, device, cache)
            _check_agrees(engine, x[:2], reference)
            rates[name] = measure(engine, x)
            built[name] = engine
        except EngineError as exc:
            warnings.warn(f"{exc}; trying the next engine", stacklevel=2)
    if not rates:  # every candidate failed its check: eager is always right
        log("engine auto: eager (no other engine could take this model)")
        return EagerEngine(module, input_shape)
    best = max(rates, key=rates.__getitem__)
    log(f"engine auto: {best} ({_rates_text(rates)} at batch {batch_size} of {'x'.join(map(str, input_shape))} "
        f"on {device.type})")
    if choice_file is not None:
        _write_choice(choice_file, {"engine": best, "rates": rates, "batch_size": batch_size})
    return built[best]


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
    if not diff <= 1e-4 * max(1.0, reference.abs().max().item()):
        raise EngineError(f"the {engine.name} engine differs from eager by {diff:.3g} on this model")


def _rates_text(rates: dict[str, float]) -> str:
    return ", ".join(f"{name} {rate:,.1f} img/s" for name, rate in sorted(rates.items(), key=lambda kv: -kv[1]))


def _read_choice(path: Path, names: tuple[str, ...]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("engine") in names else None


def _write_choice(path: Path, data: dict[str, Any]) -> None:
    from .weights import atomic_write

    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))
    except OSError as exc:  # a read-only cache costs a re-measure next time, nothing else
        warnings.warn(f"cannot cache the engine choice in {path} ({exc})", stacklevel=3)


def _eager(module: nn.Module, x: Tensor) -> Tensor:
    with torch.inference_mode():
        return first_tensor(module(x)).float()


def _ort_runner(path: Path) -> Callable[[Tensor], Tensor]:
    session = ort_session(str(path))
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.detach().cpu().contiguous().numpy()})[0])


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _device_of(module: nn.Module) -> torch.device:
    for t in module.parameters():
        return t.device
    return torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str)) if value is not None else None
