"""``cnnzoo benchmark``: measured forward time, images/s, peak memory and power per model and batch size."""

from __future__ import annotations

import argparse
import sys

from .. import argtypes
from ..errors import CnnzooError


def _batches(text: str) -> list[int]:
    from ..runtime.benchmark import parse_batch_sizes

    try:
        return parse_batch_sizes(text)
    except CnnzooError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _input(text: str) -> tuple[int, ...]:
    from ..analysis import parse_input_size

    try:
        return parse_input_size(text)
    except CnnzooError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0 s, got {text}")
    return value


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _one_or_more(valid: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in valid]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"{(bad or [text])[0]!r} is not one of {', '.join(valid)} "
                                             "(give one, or several separated by commas)")
        return list(dict.fromkeys(values))

    return parse


def add_measure_options(p: argparse.ArgumentParser) -> None:
    """The options of how to measure, shared with ``cnnzoo compare --measure``."""
    from ..runtime import ENGINES, PRECISIONS

    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run (default: cpu)")
    p.add_argument("--engine", type=_one_or_more(ENGINES), default=["eager"], metavar="ENGINE[,ENGINE...]",
                   help=f"what runs the forward pass: {', '.join(ENGINES)}, or several separated by commas (default: "
                        "eager PyTorch; auto measures the others and keeps the fastest)")
    p.add_argument("--channels-last", action="store_true", help="weights and inputs in channels_last layout")
    p.add_argument("--time-budget", type=_seconds, default=1.0, metavar="SECONDS",
                   help="timed seconds per row after warm-up (default: 1; at least 3 timed runs whatever it is)")
    p.add_argument("--warmup", type=argtypes.non_negative_int, default=2, metavar="N", help="untimed calls first (default: 2)")
    p.add_argument("--threads", type=argtypes.positive_int, metavar="N",
                   help=f"CPU threads for torch (default: torch's own, {torch_threads()} here); on a shared "
                        "machine, fewer threads than cores keep the figures steady")
    p.add_argument("--precision", type=_one_or_more(PRECISIONS), default=["fp32"], metavar="PRECISION[,...]",
                   help=f"the arithmetic: {', '.join(PRECISIONS)}, or several separated by commas (default: fp32; "
                        "bf16 and fp16 are autocast where the device has them; int8 runs the int8 files of "
                        "`cnnzoo quantize` given as models; auto: the fastest the device computes natively)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark", help="measured forward time, images/s, peak memory and power per model and batch size",
        description="Measure models as Canziani et al. (2016) compare them: forward time per batch and per "
                    "image (median and IQR of timed runs after warm-up), images/s, peak memory, power where the "
                    "machine can measure it (NVML on NVIDIA GPUs, RAPL on CPUs), and with --train a training "
                    "step. Models are names, patterns ('resnet*') or 'all'.",
        epilog="With --out, rows already in the file (same model, input, batch, engine, device, precision, "
               "layout, threads) are kept and not measured again, so an interrupted run resumes.")
    p.add_argument("models", nargs="*", metavar="MODEL", help="names, fnmatch patterns ('resnet*'), or all")
    p.add_argument("--model-list", metavar="FILE", help="a file of model names or patterns, one a line")
    p.add_argument("--batch-sizes", type=_batches, default=None, metavar="1,2,4,...",
                   help="batch sizes to run (default: 1,2,4,8,16,32,64, as Canziani et al.)")
    p.add_argument("--input", type=_input, metavar="CxHxW", help="input size (default: each model's own)")
    add_measure_options(p)
    p.add_argument("--train", action="store_true",
                   help="also time a training step: forward, backward, SGD (eager PyTorch)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="what to print")
    p.add_argument("--out", metavar="FILE", help="results file, .json or .csv (kept after each row; resumes)")
    p.add_argument("--plot", type=argtypes.plot_file, metavar="FILE.png", help="draw Canziani's figures from the rows")
    p.set_defaults(func=cmd_benchmark)


def settings_list(args: argparse.Namespace, input_size: tuple[int, ...] | None) -> list:
    """One :class:`Settings` for each engine and precision asked, engines varying fastest."""
    from ..runtime.benchmark import Settings

    found = []
    for precision in args.precision:
        for engine in args.engine:
            settings = Settings(device=args.device, precision=precision, channels_last=args.channels_last,
                                engine=engine, train=getattr(args, "train", False), input_size=input_size,
                                budget_s=args.time_budget, warmup=args.warmup, threads=args.threads)
            settings.check()
            found.append(settings)
    return found


def settings_from(args: argparse.Namespace, input_size: tuple[int, ...] | None):
    """The one :class:`Settings` of a command that measures one way (``compare --measure``)."""
    found = settings_list(args, input_size)
    if len(found) > 1:
        raise CnnzooError("this command measures one engine at one precision; for several, use `cnnzoo benchmark`")
    return found[0]


def progress_bar():
    """A rich progress bar on a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from ..runtime.benchmark import DEFAULT_BATCHES, resolve_models, run_benchmark
    from ..runtime.results import render

    models = resolve_models(args.models, args.model_list)
    plain = [m for m in models if not m.lower().endswith(".onnx")]
    if "int8" in args.precision and plain:
        from ..runtime.precision import INT8_HINT

        raise CnnzooError(f"--precision int8 runs int8 files, and {plain[0]} is a model name; {INT8_HINT}")
    batches = args.batch_sizes or list(DEFAULT_BATCHES)
    rows, failures, resumed = [], [], 0
    for settings in settings_list(args, args.input):
        bar = progress_bar()
        log = (lambda msg: bar.console.print(msg)) if bar else (lambda msg: print(msg, file=sys.stderr))
        if bar:
            with bar:
                result = run_benchmark(models, batches, settings, out=args.out, progress=bar, log=log)
        else:
            result = run_benchmark(models, batches, settings, out=args.out, log=log)
        rows += result.rows
        failures += result.failures
        resumed += result.resumed
    if rows:
        print(render(rows, args.format))
    if resumed:
        print(f"{resumed} row(s) taken from {args.out}, not measured again", file=sys.stderr)
    if args.plot and rows:
        from ..runtime.results import plot_benchmark

        plot_benchmark(rows, args.plot)
    return 1 if failures else 0
