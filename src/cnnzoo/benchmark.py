"""Measured forward time, throughput, peak memory and power of registered models: ``cnnzoo benchmark``.

The measured half of the lecture's comparison (Canziani, Paszke and Culurciello 2016,
https://arxiv.org/abs/1605.07678: forward time per image, memory and power against batch size, accuracy
against images per second); :mod:`cnnzoo.analysis` gives the counted half (parameters, MACs).

How each figure is obtained:

- **time**: after ``warmup`` calls, calls are timed in blocks of ``n`` (``n`` chosen from one call's time so
  that a block is about 1/20 of the budget, as ``torch.utils.benchmark``'s ``blocked_autorange`` does), until
  the time budget is spent and at least ``min_runs`` blocks are in. Each block gives one sample, its time
  divided by ``n``; rows report the median and the interquartile range of the samples. CUDA is synchronised
  at both ends of every block.
- **peak memory**: on CUDA the caching allocator's peak (``max_memory_allocated``) over what was allocated
  before the model was built; on the CPU the process's peak resident memory (``VmHWM`` of
  ``/proc/self/status``, reset before each row through ``/proc/self/clear_refs``, after ``malloc_trim``) over
  the resident memory before the model was built. Both include the weights, the input, the activations
  and what the engine keeps (ONNX Runtime holds its own copy of the weights); the peak is reset after the
  engine is built, so an export's passing peak is left out, and the engine's libraries are imported
  before the baseline.
- **power**: :mod:`cnnzoo.power`, over the timed window of the forward passes.
- **training step** (``train=True``): forward in training mode, cross-entropy (+0.3 x each auxiliary head),
  backward, and an SGD step with momentum 0.9, always in eager PyTorch. The learning rate is 0 so that the
  weights stay those of the inference rows (the step does all its arithmetic all the same).
"""

from __future__ import annotations

import csv
import ctypes
import functools
import gc
import json
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .base import AuxOutputs
from .errors import CnnzooError, UnknownModelError
from .inference import ENGINES, EngineError
from .power import RAPL_ROOT, Energy, PowerMeter, power_meter

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)
MB = 1e6

#: Columns of a results file, in the spirit of timm's benchmark.py results.
FIELDS = [
    "model", "input", "img_size", "batch", "engine", "engine_requested", "device", "device_name", "threads",
    "precision", "channels_last", "infer_samples_per_sec", "infer_step_ms", "infer_step_ms_iqr", "infer_img_ms",
    "infer_runs", "peak_mem_mb", "watts", "joules_per_img", "power_method", "train_samples_per_sec",
    "train_step_ms", "train_step_ms_iqr", "train_peak_mem_mb", "params", "gmacs", "top1", "torch",
]
KEY_FIELDS = ("model", "input", "batch", "engine_requested", "device", "device_name", "precision", "channels_last",
              "threads")
TRAIN_FIELDS = ("train_samples_per_sec", "train_step_ms", "train_step_ms_iqr", "train_peak_mem_mb")


@dataclass(frozen=True)
class Settings:
    """How to run every row of a benchmark; ``input_size`` ``None`` means each model's own."""

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    engine: str = "eager"
    train: bool = False
    input_size: tuple[int, ...] | None = None
    budget_s: float = 1.0
    warmup: int = 2
    min_runs: int = 3
    threads: int | None = None
    cache_dir: str | None = None
    rapl_root: Path | None = None  # None: RAPL_ROOT

    def check(self) -> None:
        """Refuse settings this machine cannot run, one line each."""
        if self.engine not in ENGINES:
            raise CnnzooError(f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.precision not in PRECISIONS:
            raise CnnzooError(f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise CnnzooError("--device cuda: no CUDA GPU is usable here (torch.cuda.is_available() is False); "
                              "use --device cpu")
        if dev.type == "cpu" and self.precision == "fp16":
            raise CnnzooError("--precision fp16 is not supported on the CPU (half-precision convolutions are "
                              "missing or slow there); use fp32 or bf16, or --device cuda")
        if self.precision != "fp32" and self.engine != "eager":
            raise CnnzooError(f"--engine {self.engine} runs fp32 only; use --engine eager for --precision "
                              f"{self.precision}")
        if self.channels_last and self.engine == "onnxruntime":
            raise CnnzooError("--channels-last does not apply to --engine onnxruntime (ONNX Runtime picks its "
                              "own layout); leave it out, or use --engine eager or compile")
        if self.channels_last and self.input_size is not None and len(self.input_size) != 3:
            raise CnnzooError("--channels-last needs an image input CxHxW")
        if self.threads is not None and self.threads < 1:
            raise CnnzooError(f"--threads must be 1 or more, got {self.threads}")
        if self.budget_s <= 0 or self.warmup < 0 or self.min_runs < 2:
            raise CnnzooError("the time budget must be above 0 s, warm-up 0 or more calls, min_runs 2 or more")


# --- models and batch sizes -------------------------------------------------------------------------------

def parse_batch_sizes(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``: whole numbers of 1 or more, duplicates dropped, in the order given."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise CnnzooError(f"batch sizes {text!r} are not whole numbers of 1 or more, e.g. 1,2,4,8")
    return list(dict.fromkeys(values))


def resolve_models(names: Iterable[str], model_list: str | os.PathLike | None = None) -> list[str]:
    """Names, fnmatch patterns (``'resnet*'``) and ``all``, plus a file of them, one a line (``#`` comments)."""
    from .registry import list_models, model_info

    wanted = list(names)
    if model_list is not None:
        try:
            lines = Path(model_list).read_text().splitlines()
        except OSError as exc:
            raise CnnzooError(f"cannot read the model list {str(model_list)!r} ({exc.strerror or exc})") from None
        wanted += [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    if not wanted:
        raise CnnzooError("no models given: name some, a pattern such as 'resnet*', 'all', or --model-list FILE")
    found: list[str] = []
    for item in wanted:
        if item == "all":
            found += list_models()
        elif any(c in item for c in "*?["):
            matches = list_models(item)
            if not matches:
                raise UnknownModelError(f"no registered model matches {item!r}; run `cnnzoo list` to see them")
            found += matches
        else:
            model_info(item)  # raises with a suggestion
            found.append(item)
    return list(dict.fromkeys(found))


# --- timing --------------------------------------------------------------------------------------------

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

    def peak_mb(self, baseline: float) -> float | None:
        return None if self.reason else round((_status_kb("VmHWM") * 1024 - baseline) / MB, 1)


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


# --- engines -------------------------------------------------------------------------------------------

def build_engine(module: torch.nn.Module, input_shape: tuple[int, ...], settings: Settings, batch: int,
                 log: Callable[[str], None] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The engine of ``settings.engine`` for ``module`` (:func:`cnnzoo.inference.build_engine`), built for ``batch``."""
    from . import inference

    return inference.build_engine(module, input_shape, engine=settings.engine, device=settings.device, batch_size=batch,
                        cache_dir=settings.cache_dir, log=log)


# --- one model -----------------------------------------------------------------------------------------

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


def row_key(row: dict[str, Any]) -> tuple:
    """What identifies a row for resuming: :data:`KEY_FIELDS` (the same measurement on the same machine)."""
    return (str(row["model"]), str(row["input"]), int(row["batch"]), str(row["engine_requested"]),
            str(row["device"]), str(row["device_name"]), str(row["precision"]), _truthy(row["channels_last"]),
            int(row["threads"]))


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def is_complete(row: dict[str, Any], train: bool) -> bool:
    """A finished row; with ``train`` it must also hold the training-step figures."""
    return not train or all(row.get(k) not in (None, "") for k in TRAIN_FIELDS)


def _logits(out: Any) -> torch.Tensor:
    return out.logits if isinstance(out, AuxOutputs) else out


def _train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(_logits(out), y)
        if isinstance(out, AuxOutputs):
            for aux in out.aux:
                loss = loss + 0.3 * F.cross_entropy(aux, y)
        loss.backward()
        optimizer.step()

    return step


def _input(batch: int, size: tuple[int, ...], settings: Settings, device: torch.device) -> torch.Tensor:
    x = torch.randn(batch, *size, device=device, dtype=PRECISIONS[settings.precision])
    return x.contiguous(memory_format=torch.channels_last) if settings.channels_last else x


def benchmark_model(name: str, batches: Sequence[int], settings: Settings, *,
                    log: Callable[[str], None] | None = None,
                    on_row_start: Callable[[int], None] = lambda batch: None) -> Iterator[dict[str, Any]]:
    """Measure ``name`` at each batch size of ``batches`` and yield one row (a dict of :data:`FIELDS`) per batch.

    Rows come out as they are finished, so a caller can save each one. On CUDA, running out of memory at
    one batch size ends the model's run with a warning (the larger sizes would not fit either).
    """
    settings.check()
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        yield from _benchmark_model(name, batches, settings, log, on_row_start)
    finally:
        torch.set_num_threads(threads)


def _benchmark_model(name: str, batches: Sequence[int], settings: Settings, log: Callable[[str], None] | None,
                     on_row_start: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    from .analysis import analyze
    from .registry import create_model, model_info

    device = torch.device(settings.device)
    analysis = analyze(name, settings.input_size)  # checks the input fits, one line if not
    size = tuple(analysis.input_size)
    if settings.channels_last and len(size) != 3:
        raise CnnzooError("--channels-last needs an image input CxHxW")
    _warm_up_process(device, settings.engine)
    memory = CudaMemory(device) if device.type == "cuda" else CpuMemory()
    meter: PowerMeter = power_meter(device, settings.rapl_root or RAPL_ROOT)
    base = memory.baseline()
    model = create_model(name, in_chans=size[0]).to(device=device, dtype=PRECISIONS[settings.precision]).eval()
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    common = {"model": name, "input": "x".join(map(str, size)),
              "img_size": size[-1] if len(size) < 3 or size[-1] == size[-2] else f"{size[-2]}x{size[-1]}",
              "engine_requested": settings.engine, "device": device.type, "device_name": device_name(device),
              "threads": torch.get_num_threads(), "precision": settings.precision,
              "channels_last": settings.channels_last, "params": analysis.totals.params,
              "gmacs": round(analysis.totals.gmacs, 6), "top1": model_info(name).top1, "torch": torch.__version__}
    try:
        for batch in batches:
            on_row_start(batch)
            try:
                row = _measure_row(model, batch, size, settings, device, memory, base, meter, sync, log)
            except torch.cuda.OutOfMemoryError:
                warnings.warn(f"{name}: out of CUDA memory at batch {batch}; larger batch sizes skipped")
                break
            merged = {**common, **row}
            yield {k: merged[k] for k in FIELDS}
    finally:
        del model  # the next model's baseline collects it


#: what each engine imports when it first runs; imported before the baseline, as libraries are not the model's
ENGINE_MODULES = {"onnxruntime": ("onnx", "onnxruntime"), "compile": ("torch._dynamo", "torch._inductor")}


def _warm_up_process(device: torch.device, engine: str) -> None:
    """Import the engine's libraries and run one tiny convolution forward and backward, so one-time set-up
    (imports, thread pools, CUDA context, kernel caches) is not counted in the first row's memory."""
    import importlib

    names = ENGINE_MODULES.get(engine, ())
    if engine == "auto":
        names = ENGINE_MODULES["onnxruntime"] + (ENGINE_MODULES["compile"] if device.type == "cuda" else ())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the engine says so itself, in one line
    x = torch.randn(2, 3, 8, 8, device=device, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, device=device, requires_grad=True)
    F.linear(F.conv2d(x, w).flatten(1), torch.randn(5, 144, device=device)).sum().backward()


def _measure_row(model: torch.nn.Module, batch: int, size: tuple[int, ...], settings: Settings,
                 device: torch.device, memory: CpuMemory | CudaMemory, base: float, meter: PowerMeter,
                 sync: Callable[[], None], log: Callable[[str], None] | None) -> dict[str, Any]:
    x = _input(batch, size, settings, device)
    engine = build_engine(model, size, settings, batch, log)
    memory.reset()  # after building: an export's passing peak is not the engine's
    energy: list[Energy] = []
    timing = time_calls(functools.partial(engine, x), budget_s=settings.budget_s, warmup=settings.warmup,
                        min_runs=settings.min_runs, sync=sync, on_start=meter.start,
                        on_stop=lambda: energy.append(meter.stop()))
    peak = memory.peak_mb(base)
    row: dict[str, Any] = {
        "batch": batch, "engine": getattr(engine, "name", settings.engine),
        "infer_samples_per_sec": round(batch / timing.median, 2), "infer_step_ms": round(timing.median * 1e3, 4),
        "infer_step_ms_iqr": round(timing.iqr * 1e3, 4), "infer_img_ms": round(timing.median * 1e3 / batch, 5),
        "infer_runs": timing.calls, "peak_mem_mb": peak if peak is not None else f"n/a ({memory.reason})",
        **_power_columns(energy[0], timing.calls * batch),
        **{k: "" for k in TRAIN_FIELDS},
    }
    del engine  # freed before the training step, whose peak memory is its own
    if settings.train:
        row.update(_measure_train(model, batch, size, settings, device, memory, base, sync))
    return row


def _power_columns(energy: Energy, images: int) -> dict[str, Any]:
    if energy.watts is None:
        return {"watts": energy.note, "joules_per_img": "n/a", "power_method": ""}
    return {"watts": round(energy.watts, 2), "joules_per_img": round(energy.joules / images, 6),
            "power_method": energy.note}


def _measure_train(model: torch.nn.Module, batch: int, size: tuple[int, ...], settings: Settings,
                   device: torch.device, memory: CpuMemory | CudaMemory, base: float,
                   sync: Callable[[], None]) -> dict[str, Any]:
    """One SGD training step's time and peak memory; the weights and buffers are left as they were."""
    buffers = {k: v.clone() for k, v in model.named_buffers()}  # BN running statistics move in training
    x = _input(batch, size, settings, device)
    y = torch.randint(0, model.num_classes, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    memory.reset()
    model.train()
    try:
        timing = time_calls(_train_step(model, optimizer, x, y), budget_s=settings.budget_s,
                            warmup=settings.warmup, min_runs=settings.min_runs, sync=sync)
        peak = memory.peak_mb(base)
    finally:
        model.eval()
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
    return {"train_samples_per_sec": round(batch / timing.median, 2), "train_step_ms": round(timing.median * 1e3, 4),
            "train_step_ms_iqr": round(timing.iqr * 1e3, 4),
            "train_peak_mem_mb": peak if peak is not None else f"n/a ({memory.reason})"}


# --- a whole run: resume, save, render ------------------------------------------------------------------

def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a results file (JSON if it ends in ``.json``, else CSV); none if it does not exist."""
    p = Path(path)
    if not p.exists():
        return []
    try:
        if p.suffix == ".json":
            rows = json.loads(p.read_text())
        else:
            with open(p, newline="") as f:
                rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("not a list of rows")
        for r in rows:
            r["channels_last"] = _truthy(r.get("channels_last"))
            row_key(r)
    except OSError as exc:
        raise CnnzooError(f"cannot read {p} ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError):
        raise CnnzooError(f"{p} is not a cnnzoo benchmark results file (rows with the columns "
                          f"{', '.join(KEY_FIELDS)}, ...); give another --out or move it away") from None
    return rows


def write_results(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """All ``rows`` to ``path`` (JSON if it ends in ``.json``, else CSV), atomically."""
    from .weights import atomic_write

    text = json.dumps(rows, indent=1) + "\n" if Path(path).suffix == ".json" else to_csv(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def to_csv(rows: list[dict[str, Any]]) -> str:
    import io

    extra = [k for r in rows for k in r if k not in FIELDS]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS + list(dict.fromkeys(extra)), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


@dataclass
class RunResult:
    """The rows of this run (resumed ones included, in the order asked), how many were resumed, what failed."""

    rows: list[dict[str, Any]]
    resumed: int
    failures: list[str]


def run_benchmark(models: Sequence[str], batches: Sequence[int], settings: Settings, *,
                  out: str | os.PathLike | None = None, progress: Any = None,
                  log: Callable[[str], None] | None = None) -> RunResult:
    """Measure every model at every batch size; rows already in ``out`` are kept and not measured again.

    ``out`` is rewritten after each new row, so an interrupted run loses at most the row it was on. A model
    that fails (an engine that cannot take it, a runtime error) is reported in ``failures`` and the run goes on.
    ``progress`` is a ``rich.progress.Progress`` or ``None``.
    """
    settings.check()
    saved = read_results(out) if out is not None else []
    done = {row_key(r): r for r in saved if is_complete(r, settings.train)}
    size_of = {m: "x".join(map(str, settings.input_size or _default_input(m))) for m in models}
    device = torch.device(settings.device)
    machine = device_name(device)

    def key(m: str, b: int) -> tuple:
        return (m, size_of[m], b, settings.engine, device.type, machine, settings.precision, settings.channels_last,
                settings.threads or torch.get_num_threads())

    todo = {m: [b for b in batches if key(m, b) not in done] for m in models}
    task = progress.add_task("benchmark", total=sum(map(len, todo.values()))) if progress else None
    fresh: dict[tuple, dict[str, Any]] = {}
    failures: list[str] = []
    for m in models:
        if not todo[m]:
            continue

        def started(batch: int, m: str = m) -> None:
            if progress:
                progress.update(task, description=f"{m} batch {batch}")

        try:
            for row in benchmark_model(m, todo[m], settings, log=log, on_row_start=started):
                fresh[row_key(row)] = row
                if out is not None:
                    saved = [r for r in saved if row_key(r) != row_key(row)] + [row]
                    write_results(out, saved)
                if progress:
                    progress.advance(task)
        except (EngineError, RuntimeError) as exc:  # one model the engine cannot take; user errors stop the run
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            failures.append(f"{m}: {message}")
            warnings.warn(f"{m} skipped: {message}")
    rows = [fresh.get(key(m, b)) or done.get(key(m, b)) for m in models for b in batches]
    return RunResult([r for r in rows if r is not None], sum(len(batches) - len(todo[m]) for m in models), failures)


def _default_input(name: str) -> tuple[int, ...]:
    from .registry import model_info

    return model_info(name).input_size


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def render_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table, with the power note and the hardware underneath."""
    train = any(r.get("train_step_ms") not in (None, "") for r in rows)
    head = ["model", "input", "batch", "engine", "img/s", "ms/batch", "IQR ms", "ms/img", "peak MB", "W", "mJ/img"]
    head += ["train img/s", "train ms", "train MB"] if train else []
    table = [head]
    for r in rows:
        j = r.get("joules_per_img")
        cells = [r["model"], r["input"], str(r["batch"]), r["engine"], _fmt(r["infer_samples_per_sec"], ",.1f"),
                 _fmt(r["infer_step_ms"], ".2f"), _fmt(r["infer_step_ms_iqr"], ".2f"), _fmt(r["infer_img_ms"], ".3f"),
                 _fmt(r["peak_mem_mb"], ",.0f"), _fmt(r["watts"], ".1f"),
                 _fmt(j * 1e3 if isinstance(j, (int, float)) else j, ".2f")]
        if train:
            cells += [_fmt(r.get("train_samples_per_sec"), ",.1f"), _fmt(r.get("train_step_ms"), ".2f"),
                      _fmt(r.get("train_peak_mem_mb"), ",.0f")]
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = []
    for k, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) if i < 2 or i == 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = dict.fromkeys(str(r["watts"]) for r in rows if not isinstance(r["watts"], (int, float)))
    notes.update(dict.fromkeys(f"power: {r['power_method']}" for r in rows if r.get("power_method")))
    devices = dict.fromkeys(f"{r['device']}: {r['device_name']}, {threads_text(r['threads'])}, {r['precision']}"
                            f"{', channels_last' if r['channels_last'] else ''}, torch {r['torch']}" for r in rows)
    tail = [f"W: {n}" if n.startswith("n/a") else n for n in notes] + list(devices)
    return "\n".join([line.rstrip() for line in lines] + tail)


def threads_text(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if fmt == "csv":
        return to_csv(rows).rstrip("\n")
    return render_table(rows)


# --- Canziani's figures ---------------------------------------------------------------------------------

def _series(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = f"{r['model']} ({r['engine']}, {r['device']}, {r['precision']})"
        groups.setdefault(label, []).append(r)
    return {k: sorted(v, key=lambda r: int(r["batch"])) for k, v in groups.items()}


def _measured(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_benchmark(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Canziani et al.'s figures from benchmark rows: forward time per image, peak memory and power against
    batch size (log-log), and reference top-1 against images per second (each model at its best batch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    if not rows:
        raise CnnzooError("no benchmark rows to plot")
    fig = Figure(figsize=(12.0, 9.0), layout="constrained")
    FigureCanvasAgg(fig)
    (ax_t, ax_m), (ax_p, ax_a) = fig.subplots(2, 2)
    series = _series(rows)
    colour = {label: f"C{k % 10}" for k, label in enumerate(series)}
    batches = sorted({int(r["batch"]) for r in rows})
    for label, rs in series.items():
        b = [int(r["batch"]) for r in rs]
        ax_t.plot(b, [r["infer_img_ms"] for r in rs], marker="o", label=label, color=colour[label])
        for ax, key in ((ax_m, "peak_mem_mb"), (ax_p, "watts")):
            points = [(int(r["batch"]), r[key]) for r in rs if _measured(r[key])]
            if points:
                ax.plot(*zip(*points), marker="o", label=label, color=colour[label])
    for ax, ylabel, title in ((ax_t, "forward time per image (ms)", "Forward time per image"),
                              (ax_m, "peak memory (MB)", "Memory"), (ax_p, "power (W)", "Power")):
        ax.set_xscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    ax_t.set_yscale("log")
    ax_m.set_yscale("log")
    ax_t.legend(fontsize=7)
    if not any(_measured(r["watts"]) for r in rows):
        ax_p.set_yticks([])
        ax_p.text(0.5, 0.5, "\n".join(_wrap(str(rows[0]["watts"]), 48)), transform=ax_p.transAxes,
                  ha="center", va="center", fontsize=9)
    best: dict[str, dict[str, Any]] = {}
    for label, rs in series.items():
        r = max(rs, key=lambda r: r["infer_samples_per_sec"])
        if _measured(r.get("top1")):
            best[label] = r
    for label, r in best.items():
        ax_a.scatter(r["infer_samples_per_sec"], r["top1"], s=40, color=colour[label])
        ax_a.annotate(f"{r['model']} (batch {r['batch']})", (r["infer_samples_per_sec"], r["top1"]),
                      xytext=(4, 4), textcoords="offset points", fontsize=8)
    if not best:
        ax_a.text(0.5, 0.5, "no model here has a reference top-1", transform=ax_a.transAxes, ha="center")
    ax_a.set_xscale("log")
    ax_a.xaxis.set_major_formatter(ScalarFormatter())
    ax_a.xaxis.set_minor_formatter(NullFormatter())
    ax_a.margins(0.25)
    ax_a.set_xlabel("images per second (each model at its fastest batch size)")
    ax_a.set_ylabel("ImageNet top-1 (%, registry reference)")
    ax_a.set_title("Accuracy against throughput")
    ax_a.grid(alpha=0.3, which="both")
    r0 = rows[0]
    fig.suptitle(f"{r0['device_name']}, {threads_text(r0['threads'])}, {r0['precision']}, torch {r0['torch']}", fontsize=10)
    from .analysis.plots import save_figure

    save_figure(fig, path, dpi=110)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)
