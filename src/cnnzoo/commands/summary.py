"""``cnnzoo summary`` (the per-layer table) and ``cnnzoo compare`` (one row per model)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import warnings

from ..analysis import CONVENTIONS, DTYPE_BYTES, FORMATS, OPTIMIZER_STATES, Analysis, analyze, parse_input_size, render
from ..analysis.exercises import EXERCISES
from ..analysis.render import rf_text
from .. import argtypes
from ..errors import CnnzooError
from ..registry import model_info

EXERCISE_PREFIX = "exercise:"


_positive = argtypes.positive_int


def _input(text: str) -> tuple[int, ...]:
    try:
        return parse_input_size(text)
    except CnnzooError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    epilog = "counting rules:\n" + "\n".join(f"  {k}: {v}" for k, v in CONVENTIONS.items())
    p = sub.add_parser(
        "summary", help="per-layer table: output volume, params, memory, MACs, receptive field",
        description="The cs231n per-layer table of a registered model (or of a lecture exercise, "
                    f"'{EXERCISE_PREFIX}NAME' with NAME one of {', '.join(EXERCISES)}), traced on the meta device.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a registered model, exercise:NAME, or a model file (a run's best.pt, a pruned one): "
                                  "its own widths and the input it was trained on")
    _common(p, (*FORMATS, "html"))
    p.add_argument("--depth", type=_positive, help="collapse modules deeper than N name components into one row")
    p.add_argument("--batch-size", type=_positive, default=1, help="batch size of the training-memory estimate")
    p.add_argument("--optimizer", choices=list(OPTIMIZER_STATES), default="momentum",
                   help="optimiser of the training-memory estimate (default: momentum, as the papers)")
    p.add_argument("--training", action="store_true", help="analyse the training-mode graph (auxiliary heads, dropout)")
    p.add_argument("--plot", type=argtypes.plot_file, metavar="FILE.png",
                   help="also draw per-layer memory and parameters")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compare", help="one row per model: params, GMACs, memory, receptive field, top-1",
                       description="Compare models side by side; --plot draws the lecture's complexity chart. "
                                   "Files (a run's best.pt, a pruned or distilled one, an int8 .onnx of `cnnzoo "
                                   "quantize`) compare as well as names: with --data their test top-1 on the same "
                                   "images, with --measure their speed, and their size on disk.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered names or model files")
    _common(p)
    p.add_argument("--plot", type=argtypes.plot_file, metavar="FILE.png",
                   help="also draw top-1 against GMACs, bubble area = parameters; for files, test top-1 (--data) "
                        "against measured ms per image (--measure), bubble area = file size, each file joined to "
                        "the next by an arrow (give them in order: original, pruned, distilled, int8)")
    p.add_argument("--data", help="files: measure test top-1 on this dataset (the same images for every file)")
    p.add_argument("--data-root", help="folder holding the dataset's files (default: the data cache)")
    m = p.add_argument_group("measured columns (--measure; see `cnnzoo benchmark` for whole batch-size sweeps)")
    m.add_argument("--measure", action="store_true",
                   help="also run each model: images/s, ms per image, peak memory, watts where measurable")
    m.add_argument("--measure-batch", type=_positive, default=8, metavar="N", help="batch size to measure at (default: 8)")
    from .benchmark import add_measure_options

    add_measure_options(m)
    p.set_defaults(func=cmd_compare)


def _common(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    p.add_argument("--input", type=_input, metavar="CxHxW", help="input size (default: the model's own)")
    p.add_argument("--dtype", choices=list(DTYPE_BYTES), default="fp32", help="bytes per value for memory figures")
    p.add_argument("--format", choices=formats, default="table",
                   help="html: the page of `cnnzoo report`, on stdout" if "html" in formats else None)


def is_model_file(name: str) -> bool:
    return os.path.isfile(name)


def _analyse(name: str, input_size: tuple[int, ...] | None, dtype: str, training: bool = False) -> Analysis:
    if is_model_file(name):  # its own network (a pruned one's widths), at the input it was trained on
        from ..runtime.benchmark import load_model_file
        from ..runtime.quantize import is_quantized_file, load_quantized
        from ..registry import create_model

        if is_quantized_file(name):
            q = load_quantized(name)
            model, input_size = create_model(q.meta["model_name"], **q.meta["model_args"]), input_size or q.input_shape
        else:
            model = load_model_file(name)
        result = analyze(model, input_size, dtype=dtype, training=training)
        result.model = name
        return result
    if name.startswith(EXERCISE_PREFIX):
        key = name[len(EXERCISE_PREFIX):]
        if key not in EXERCISES:
            raise CnnzooError(f"unknown exercise {key!r}: choose one of {', '.join(EXERCISES)}")
        ex = EXERCISES[key]
        model = ex.build() if callable(ex.build) else ex.build
        result = analyze(model, input_size or ex.input_size, dtype=dtype, training=training)
        result.model = name
        return result
    return analyze(name, input_size, dtype=dtype, training=training)


def cmd_summary(args: argparse.Namespace) -> int:
    if args.format == "html":
        from .report import build

        print(build(args)[0])
        return 0
    result = _analyse(args.model, args.input, args.dtype, args.training)
    print(render(result, args.format, args.depth, args.batch_size, args.optimizer))
    if args.model.startswith(EXERCISE_PREFIX) and args.format == "table":
        print(f"the lecture says  {EXERCISES[args.model[len(EXERCISE_PREFIX):]].lecture}")
    if args.plot:
        from ..analysis.plots import plot_layers

        plot_layers(result, args.plot, args.depth)
    return 0


def _top1(name: str) -> float | None:
    return None if name.startswith(EXERCISE_PREFIX) or is_model_file(name) else model_info(name).top1


def compare_rows(results: list[Analysis]) -> list[dict]:
    rows = []
    for a in results:
        t = a.totals
        size, jump = rf_text(t.field)
        rows.append({"model": a.model, "input": a.describe_input(), "params": t.params, "gmacs": round(t.gmacs, 3),
                     "macs": t.macs, "activation_elements": t.activation_elements,
                     "activation_mb": round(t.activation_bytes / 1e6, 2), "rf": size, "rf_jump": jump,
                     "top1": _top1(a.model), "file_mb": round(os.path.getsize(a.model) / 1e6, 3)
                     if is_model_file(a.model) else None})
    return rows


def test_rows(rows: list[dict], data: str, data_root: str | None) -> None:
    """Add each file's ``test_top1`` on ``data`` (the same test images for all; a name's is None)."""
    from pathlib import Path

    from ..training.evaluate import evaluate_checkpoints

    for r in rows:
        r["test_top1"] = None
        if is_model_file(r["model"]):
            (result,) = evaluate_checkpoints([Path(r["model"])], data=data, data_root=data_root, engine="eager",
                                             precision="fp32" if not r["model"].lower().endswith(".onnx") else "auto")
            r["test_top1"] = result["top1"]


MEASURED = ("measure_batch", "engine", "precision", "infer_samples_per_sec", "infer_img_ms", "peak_mem_mb", "watts")


def measure_rows(rows: list[dict], args: argparse.Namespace) -> str | None:
    """Add :data:`MEASURED` columns to each row, from one ``cnnzoo benchmark`` row per model at ``--measure-batch``.

    Returns the line that says how power and memory were measured, printed under the table. An int8 file of
    ``cnnzoo quantize`` runs at int8 (in ONNX Runtime or OpenVINO, the fastest measured, where the engine asked is
    eager), whatever the others run at; the engine column says which.
    """
    import dataclasses

    from ..runtime.benchmark import benchmark_model
    from ..runtime.quantize import is_quantized_file
    from ..runtime.results import threads_text
    from .benchmark import settings_from

    settings = settings_from(args, args.input)
    notes: list[str] = []
    for r in rows:
        if r["model"].startswith(EXERCISE_PREFIX):
            r.update(dict.fromkeys(MEASURED))
            continue
        own = settings
        if is_quantized_file(r["model"]) and settings.precision not in ("int8", "auto"):
            own = dataclasses.replace(settings, precision="int8",
                                      engine="auto" if settings.engine == "eager" else settings.engine)
        (b,) = benchmark_model(r["model"], [args.measure_batch], own)
        r.update({k: b[k] for k in MEASURED if k != "measure_batch"}, measure_batch=args.measure_batch)
        notes.append(b["power_method"] or str(b["watts"]))
        device = f"{b['device_name']}, {threads_text(b['threads'])}"
    return f"measured at batch {args.measure_batch} on {device}; power: {notes[0]}" if notes else None


def _measured_cells(r: dict) -> list[str]:
    def num(value, spec: str) -> str:
        return format(value, spec) if isinstance(value, (int, float)) else "n/a" if value else "—"

    engine = f"{r['engine']} {r['precision']}" if r.get("engine") else "—"
    return [engine, num(r["infer_samples_per_sec"], ",.1f"), num(r["infer_img_ms"], ".3f"), num(r["peak_mem_mb"], ",.0f"),
            num(r["watts"], ".1f")]


def _compare_text(rows: list[dict], markdown: bool) -> str:
    head = ["model", "input", "params", "GMACs", "activations / sample", "RF", "jump", "ImageNet top-1"]
    table = [head] + [[r["model"], r["input"], f"{r['params']:,}", f"{r['gmacs']:.3f}",
                       f"{r['activation_elements']:,} ({r['activation_mb']:.1f} MB)", r["rf"], r["rf_jump"],
                       "—" if r["top1"] is None else f"{r['top1']:g}"] for r in rows]
    if any(r["file_mb"] is not None for r in rows):
        head.append("file MB")
        for line, r in zip(table[1:], rows):
            line.append("—" if r["file_mb"] is None else f"{r['file_mb']:.3f}")
    if rows and "test_top1" in rows[0]:
        head.append("test top-1")
        for line, r in zip(table[1:], rows):
            line.append("—" if r["test_top1"] is None else f"{r['test_top1']:.4f}")
    if rows and "infer_samples_per_sec" in rows[0]:
        batch = next((r["measure_batch"] for r in rows if r["measure_batch"]), "")
        head += ["engine", f"img/s @{batch}", "ms/img", "peak MB", "W"]
        for line, r in zip(table[1:], rows):
            line += _measured_cells(r)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table[1:]]
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    lines = []
    for k, row in enumerate(table):
        cells = (str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def cmd_compare(args: argparse.Namespace) -> int:
    for name in args.models:  # every name is checked before the first is analysed
        _top1(name)
    if args.plot and all(map(is_model_file, args.models)) and not (args.data and args.measure):
        raise CnnzooError("--plot of files draws test top-1 against measured latency: add --data D and --measure")
    results = [_analyse(name, args.input, args.dtype) for name in args.models]
    rows = compare_rows(results)
    if args.data:
        test_rows(rows, args.data, args.data_root)
    note = measure_rows(rows, args) if args.measure else None
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    elif args.format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
        print(buf.getvalue().rstrip("\n"))
    else:
        print(_compare_text(rows, markdown=args.format == "markdown"))
        if note:
            print(note)
    if args.plot and all(is_model_file(r["model"]) for r in rows):
        _plot_files(rows, args.plot)
    elif args.plot:
        from ..analysis.plots import Point, plot_complexity

        points = [Point(r["model"], r["macs"] / 1e9, r["top1"], r["params"]) for r in rows if r["top1"] is not None]
        skipped = [r["model"] for r in rows if r["top1"] is None]
        if not points:
            raise CnnzooError("none of these models has a reference ImageNet top-1 to plot")
        if skipped:
            warnings.warn(f"no reference top-1, left off the chart: {', '.join(skipped)}")
        plot_complexity(points, args.plot)
    return 0


def _plot_files(rows: list[dict], path: str) -> None:
    """The lecture's chart for the user's own models: test top-1 against measured latency, bubble = file size,
    each file joined to the next by an arrow."""
    from ..analysis.plots import Point, plot_complexity

    engines = [f"{r['engine']} {r['precision']}" for r in rows]
    mixed = len(set(engines)) > 1  # an int8 file runs in another engine than the checkpoints: say which ran each
    points = [Point(os.path.join(os.path.basename(os.path.dirname(r["model"])), os.path.basename(r["model"]))
                    + (f" ({engine})" if mixed else ""), r["infer_img_ms"], 100 * r["test_top1"],
                    round(r["file_mb"] * 1e6)) for r, engine in zip(rows, engines)]
    where = "each file's engine in its label" if mixed else engines[0]
    plot_complexity(points, path, x_label=f"measured ms per image (batch {rows[0]['measure_batch']}, {where})",
                    y_label="test top-1 (%)", title="Accuracy against latency; bubble area = file size",
                    chain=True)
