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
- **power**: :mod:`cnnzoo.runtime.power`, over the timed window of the forward passes.
- **training step** (``train=True``): forward in training mode, cross-entropy (+0.3 x each auxiliary head),
  backward, and an SGD step with momentum 0.9, always in eager PyTorch. The learning rate is 0 so that the
  weights stay those of the inference rows (the step does all its arithmetic all the same).
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..base import AuxOutputs
from ..errors import CnnzooError, UnknownModelError
from .engines import ENGINES, EngineError
from .measure import CpuMemory, CudaMemory, device_name, time_calls
from .precision import DTYPES, check_requested
from .power import RAPL_ROOT, Energy, PowerMeter, power_meter
from .results import FIELDS, TRAIN_FIELDS, is_complete, read_results, row_key, write_results

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)



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
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise CnnzooError("--device cuda: no CUDA GPU is usable here (torch.cuda.is_available() is False); "
                              "use --device cpu")
        check_requested(self.precision, dev)
        if self.precision != "int8":
            from .build import candidates

            candidates(dev, self.engine, self.precision)  # an engine that cannot run the precision says so
        if self.channels_last and self.engine in ("onnxruntime", "openvino", "auto"):
            raise CnnzooError(f"--channels-last does not apply to --engine {self.engine} (ONNX Runtime and OpenVINO "
                              "pick their own layout); leave it out, or use --engine eager or compile")
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
    from ..registry import list_models, model_info

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
        elif item.lower().endswith(".onnx"):  # an int8 file of `cnnzoo quantize`
            from .quantize import load_quantized

            load_quantized(item)  # one line if it is missing or not one
            found.append(item)
        elif os.path.isfile(item):  # a model file that names its model: a run's best.pt, a pruned one
            load_model_file(item)  # one line if it does not
            found.append(item)
        else:
            model_info(item)  # raises with a suggestion
            found.append(item)
    return list(dict.fromkeys(found))


# --- engines -------------------------------------------------------------------------------------------

def build_engine(module: torch.nn.Module, input_shape: tuple[int, ...], settings: Settings, batch: int,
                 log: Callable[[str], None] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The engine of ``settings.engine`` for ``module`` (:func:`cnnzoo.runtime.build_engine`), built for ``batch``."""
    from .build import build_engine as build

    return build(module, input_shape, engine=settings.engine, precision=settings.precision, device=settings.device,
                 batch_size=batch, cache_dir=settings.cache_dir, log=log)


# --- one model -----------------------------------------------------------------------------------------

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
    x = torch.randn(batch, *size, device=device)
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
    from ..analysis import analyze
    from ..registry import create_model, model_info
    from .quantize import is_quantized_file, load_quantized

    device = torch.device(settings.device)
    quantized = load_quantized(name) if is_quantized_file(name) else None
    loaded = load_model_file(name) if not quantized and os.path.isfile(name) else None
    arch = quantized.meta["model_name"] if quantized else loaded.model_name if loaded is not None else name
    if quantized and settings.input_size not in (None, quantized.input_shape):
        raise CnnzooError(f"{name} is an int8 file for {'x'.join(map(str, quantized.input_shape))} inputs; "
                          "leave --input out")
    if quantized:  # the network the file was made from, with its own arguments (classes, channels)
        source = create_model(arch, **quantized.meta.get("model_args", {}))
        analysis = analyze(source, quantized.input_shape)
        del source
    elif loaded is not None:  # the file's own network (a pruned one's widths) at the input it was trained on
        analysis = analyze(loaded, settings.input_size)
    else:
        analysis = analyze(name, settings.input_size)  # one line if the input does not fit
    size = tuple(analysis.input_size)
    if settings.channels_last and len(size) != 3:
        raise CnnzooError("--channels-last needs an image input CxHxW")
    _warm_up_process(device, settings.engine)
    memory = CudaMemory(device) if device.type == "cuda" else CpuMemory()
    meter: PowerMeter = power_meter(device, settings.rapl_root or RAPL_ROOT)
    base = memory.baseline()
    if quantized is None:
        model = (loaded if loaded is not None else create_model(name, in_chans=size[0])).to(device=device).eval()
    else:
        model = quantized
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    common = {"model": name, "input": "x".join(map(str, size)),
              "img_size": size[-1] if len(size) < 3 or size[-1] == size[-2] else f"{size[-2]}x{size[-1]}",
              "engine_requested": settings.engine, "device": device.type, "device_name": device_name(device),
              "threads": torch.get_num_threads(), "precision": settings.precision, "precision_requested": settings.precision,
              "channels_last": settings.channels_last, "params": analysis.totals.params,
              "gmacs": round(analysis.totals.gmacs, 6), "top1": model_info(arch).top1, "torch": torch.__version__}
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
ENGINE_MODULES = {"onnxruntime": ("onnx", "onnxruntime"), "openvino": ("onnx", "openvino"),
                  "compile": ("torch._dynamo", "torch._inductor")}


def _warm_up_process(device: torch.device, engine: str) -> None:
    """Import the engine's libraries and run one tiny convolution forward and backward, so one-time set-up
    (imports, thread pools, CUDA context, kernel caches) is not counted in the first row's memory."""
    import importlib

    names = ENGINE_MODULES.get(engine, ())
    if engine == "auto":
        names = ENGINE_MODULES["onnxruntime"] + ENGINE_MODULES["openvino"] + \
            (ENGINE_MODULES["compile"] if device.type == "cuda" else ())
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
        "batch": batch, "engine": engine.name, "precision": engine.precision,
        "infer_samples_per_sec": round(batch / timing.median, 2), "infer_step_ms": round(timing.median * 1e3, 4),
        "infer_step_ms_iqr": round(timing.iqr * 1e3, 4), "infer_img_ms": round(timing.median * 1e3 / batch, 5),
        "infer_runs": timing.calls, "peak_mem_mb": peak if peak is not None else f"n/a ({memory.reason})",
        **_power_columns(energy[0], timing.calls * batch),
        **{k: "" for k in TRAIN_FIELDS},
    }
    del engine  # freed before the training step, whose peak memory is its own
    if settings.train and isinstance(model, torch.nn.Module):
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
        step = _train_step(model, optimizer, x, y)
        if settings.precision in ("bf16", "fp16"):  # the training step under autocast, as --amp runs it
            plain = step

            def step() -> None:
                with torch.autocast(device.type, dtype=DTYPES[settings.precision]):
                    plain()
        timing = time_calls(step, budget_s=settings.budget_s,
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
    name_of_device = device_name(device)

    def key(m: str, b: int) -> tuple:
        return (m, size_of[m], b, settings.engine, device.type, name_of_device, settings.precision, settings.channels_last,
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
    from ..registry import model_info
    from .quantize import is_quantized_file, load_quantized

    if is_quantized_file(name):
        return load_quantized(name).input_shape
    if os.path.isfile(name):
        model = load_model_file(name)
        own = model_info(model.model_name).input_size
        return getattr(model, "trained_input_shape", None) or (model.in_chans, *own[1:])
    return model_info(name).input_size


def load_model_file(path: str) -> torch.nn.Module:
    """The model of a file that names it (a training checkpoint, a cnnzoo safetensors file), in eval mode."""
    from ..registry import load

    return load(path).eval()
