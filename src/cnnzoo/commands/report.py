"""``cnnzoo report``: one self-contained HTML page per model (diagram, layer table, charts), or a comparison."""

from __future__ import annotations

import argparse
import html
import os
from pathlib import Path
from typing import Any

from ..analysis import DTYPE_BYTES, OPTIMIZER_STATES, Analysis
from ..errors import CnnzooError
from .summary import EXERCISE_PREFIX, _analyse, _input, _positive, is_model_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="one HTML page per model: architecture diagram, layer table, the lecture's charts",
        description="Write one self-contained HTML page (no network needed to open it) drawn from the analyzer's "
                    "trace: the architecture as stages that open into blocks and layers, the sortable per-layer "
                    "table, memory and parameters per layer, MACs per stage, receptive field against depth and "
                    "training memory against batch size. --compare M1 M2 ... draws top-1 against GMACs and puts "
                    "the models' tables side by side.")
    p.add_argument("model", nargs="?", help="a registered model (or exercise:NAME), or a model file (a run's best.pt, "
                                            "a pruned one: its own widths)")
    p.add_argument("--compare", nargs="+", metavar="MODEL", help="compare these models on one page instead")
    p.add_argument("--input", type=_input, metavar="CxHxW", help="input size (default: the model's own)")
    p.add_argument("--weights", metavar="W",
                   help="a weights file (a model saved by cnnzoo is analysed with the arguments it records, "
                        "e.g. 10 classes) or a registered tag such as 'imagenet', named on the page")
    p.add_argument("--data", metavar="D",
                   help="with --weights: top-9 patches of 8 units of every stage over this dataset's test images "
                        "(ZFNet figure 2), beside the first-layer filters, in a 'what it learned' section; with "
                        "--compare of model files: each file's test top-1 on D and measured latency, drawn as the "
                        "lecture's chart (original -> pruned -> distilled -> int8, in the order given)")
    p.add_argument("--data-root", metavar="PATH", help="folder holding --data's files (default: the data cache)")
    p.add_argument("--dtype", choices=list(DTYPE_BYTES), default="fp32", help="bytes per value for memory figures")
    p.add_argument("--optimizer", choices=list(OPTIMIZER_STATES), default="momentum",
                   help="optimiser first shown in the training-memory chart (the page can switch)")
    p.add_argument("--training", action="store_true", help="analyse the training-mode graph (auxiliary heads)")
    p.add_argument("--out", metavar="FILE.html", help="where to write the page (default: MODEL.html, compare.html; "
                                                       "with --svg, only if given)")
    p.add_argument("--svg", metavar="FILE.svg", help="write the architecture diagram as an SVG file (drawn by the "
                                                      "page's script in headless Chromium)")
    p.add_argument("--expand", metavar="KEYS", default="",
                   help="with --svg, what is open: 'stages', 'blocks' (the page's first view), 'all', or "
                        "comma-separated container keys as in the page's #expand=")
    p.add_argument("--benchmark", metavar="RESULTS",
                   help="a `cnnzoo benchmark --out` results file: measured ms per image and images/s on the page "
                        "(with --compare, the complexity chart can use them as its x axis)")
    p.add_argument("--benchmark-batch", type=_positive, metavar="N",
                   help="the batch size to take from RESULTS (default: the smallest measured)")
    p.set_defaults(func=cmd_report)


#: the batch the compare page's trade-off is measured at (``cnnzoo compare --measure``'s default)
TRADEOFF_BATCH = 8


def tradeoff(results: list[Analysis], data: str, data_root: str | None, input_size: tuple[int, ...] | None) -> str:
    """The compare page's trade-off section for model files: each file's test top-1 on ``data`` (the same images
    for all) and its latency measured as ``cnnzoo compare --data D --measure`` does (eager fp32; an int8 file at
    int8), drawn as ``compare --plot`` draws it and tabled beside."""
    import tempfile

    from ..explain.page import data_uri
    from .benchmark import add_measure_options
    from .summary import _compare_text, _plot_files, compare_rows, measure_rows, test_rows

    rows = compare_rows(results)
    test_rows(rows, data, data_root)
    options = argparse.ArgumentParser(add_help=False)
    add_measure_options(options)
    measure = options.parse_args([])
    measure.measure_batch, measure.input = TRADEOFF_BATCH, input_size
    note = measure_rows(rows, measure)
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "tradeoff.png"
        _plot_files(rows, str(chart))
        png = chart.read_bytes()
    return (f"<section id='tradeoff'><h2>Accuracy against latency</h2><p>test top-1 on {html.escape(data)} (the same "
            f"test images for every file); {html.escape(note or '')}</p><figure><img src='{data_uri(png)}' "
            "alt='test top-1 against measured ms per image, bubble area = file size' style='max-width:100%'>"
            f"</figure><pre>{html.escape(_compare_text(rows, markdown=False))}</pre></section>")


def model_facts(name: str) -> dict[str, Any]:
    """What the registry says about ``name`` that the trace does not: paper, year, reference top-1, notes."""
    if name.startswith(EXERCISE_PREFIX):
        from ..analysis.exercises import EXERCISES

        return {"paper": "lecture exercise: " + EXERCISES[name[len(EXERCISE_PREFIX):]].lecture}
    from ..registry import model_info
    from .summary import is_model_file

    if is_model_file(name):  # a model file (a pruned one's own widths): its model's facts, and the file named
        from ..runtime.quantize import is_quantized_file, load_quantized
        from ..weights import read_weights

        model = (load_quantized(name).meta if is_quantized_file(name) else read_weights(name)[1]).get("model_name")
        return {**model_facts(model), "weights": os.path.basename(name)}
    info = model_info(name)
    return {"paper": info.paper, "year": info.year, "top1": info.top1, "source": info.source, "notes": info.notes}


def _with_weights(name: str, weights: str, input_size: tuple[int, ...] | None, dtype: str,
                  training: bool) -> tuple[Analysis, str, Any]:
    """The analysis of ``name`` as ``weights`` builds it, how the page names the weights, and the model with
    them loaded (for a registered tag, None: its file is read only for the "what it learned" section)."""
    from ..analysis import analyze
    from ..registry import create_model, model_info

    if name.startswith(EXERCISE_PREFIX):
        raise CnnzooError("--weights applies to registered models, not to exercises")
    info = model_info(name)
    if not os.path.isfile(weights):
        tags = info.pretrained
        if weights not in tags:
            known = f"one of {', '.join(tags)}" if tags else "none registered for it"
            raise CnnzooError(f"--weights {weights!r} is neither a file nor a weights tag of {name} ({known})")
        return analyze(name, input_size, dtype=dtype, training=training), weights, None
    from ..weights import load_weights, read_weights

    state, meta = read_weights(weights)
    if meta.get("model_name", name) != name:
        raise CnnzooError(f"{weights} holds a {meta['model_name']}, not a {name}; "
                          f"run `cnnzoo report {meta['model_name']} --weights {weights}`")
    args = meta.get("model_args", {})
    model = create_model(name, **args)
    load_weights(model, state)  # the file must fit the model it describes
    label = Path(weights).name + (f" ({', '.join(f'{k}={v}' for k, v in args.items())})" if args else "")
    # The default input has the channels the file's model takes (a LeNet-5 trained on colour photos: 3).
    default = (args.get("in_chans", info.input_size[0]), *info.input_size[1:])
    result = analyze(model, input_size or default, dtype=dtype, training=training)
    result.model = name
    return result, label, model


def learned(name: str, weights: str, label: str, model: Any, data: str | None, data_root: str | None) -> str:
    """The page's "what it learned" section: the first-layer filters, and with ``data`` the top patches per
    stage. A registered tag's file that cannot be had here is one line on the page, not a failed report."""
    from ..errors import WeightsError
    from ..explain.learned import learned_section

    if data:
        from ..explain.inputs import trained_with_data

        dataset, model, pipeline = trained_with_data(name, weights, data, data_root)
        return learned_section(model, label, dataset.test_images, pipeline, data)
    if model is None:
        from ..registry import create_model

        try:
            model = create_model(name, weights=weights)
        except WeightsError as exc:
            return f"<section id='learned'><h2>What it learned</h2><p>not shown: {html.escape(str(exc))}</p></section>"
    return learned_section(model, label)


def measured(path: str, result: Analysis, batch: int | None) -> dict[str, Any] | None:
    """The inference row of ``result``'s model and input in a benchmark results file (at ``batch``, else the
    smallest batch measured), as the page shows it; ``None`` if the file has none."""
    from ..runtime.results import read_results

    if not os.path.isfile(path):
        raise CnnzooError(f"--benchmark {path!r} does not exist; "
                          f"write one with `cnnzoo benchmark MODEL ... --out {path}`")
    rows = [r for r in read_results(path) if r.get("model") == result.model and r.get("infer_img_ms")
            and str(r.get("input", result.describe_input())) == result.describe_input()]
    if batch is not None:
        rows = [r for r in rows if r.get("batch") == batch]
    if not rows:
        return None
    r = min(rows, key=lambda r: r["batch"])
    return {k: r.get(k) for k in ("batch", "infer_img_ms", "infer_samples_per_sec", "peak_mem_mb", "device_name",
                                  "precision", "engine", "threads")}


def build(args: argparse.Namespace) -> tuple[str, str]:
    """The page and its default file name for parsed ``report`` (or ``summary --format html``) arguments."""
    from ..report import report_html

    compare = getattr(args, "compare", None)
    names = compare or [args.model]
    weights = getattr(args, "weights", None)
    if weights and len(names) > 1:
        raise CnnzooError("--weights names the weights of one model; leave it out with --compare")
    optimizer = getattr(args, "optimizer", "momentum")
    training = getattr(args, "training", False)
    data = getattr(args, "data", None)
    if data and not weights and not compare:
        raise CnnzooError("--data shows what trained weights learned: give --weights too (a run's best.pt, or a tag)")
    if data and compare and not all(map(is_model_file, compare)):
        raise CnnzooError("--data with --compare measures model files (a run's best.pt, a pruned one, an int8 .onnx) "
                          "on that dataset; registered names have no test top-1 of their own: give files")
    appendix = ""
    if weights:
        result, label, model = _with_weights(names[0], weights, args.input, args.dtype, training)
        results = [result]
        appendix = learned(names[0], weights, label, model, data, getattr(args, "data_root", None))
    else:
        results = [_analyse(n, args.input, args.dtype, training) for n in names]
    facts = [model_facts(n) for n in names]  # after the analyses, which name an unknown model in one line
    if weights:
        facts[0]["weights"] = label
    if compare and data:
        appendix = tradeoff(results, data, getattr(args, "data_root", None), args.input)
    if getattr(args, "benchmark", None):
        for fact, result in zip(facts, results):
            fact["measured"] = measured(args.benchmark, result, getattr(args, "benchmark_batch", None))
    page = report_html(results, facts, compare=bool(compare), optimizer=optimizer, appendix=appendix)
    default = "compare.html" if compare else names[0].replace(EXERCISE_PREFIX, "exercise-") + ".html"
    return page, default


def cmd_report(args: argparse.Namespace) -> int:
    from ..weights import atomic_write

    if bool(args.model) == bool(args.compare):
        raise CnnzooError("give one MODEL, or --compare M1 M2 ... (not both)")
    if args.out and Path(args.out).suffix.lower() not in (".html", ".htm"):
        raise CnnzooError(f"--out {args.out!r} should end in .html: the page is HTML")
    if args.svg:
        if args.compare:
            raise CnnzooError("--svg draws one model's diagram; give one MODEL, not --compare")
        if Path(args.svg).suffix.lower() != ".svg":
            raise CnnzooError(f"--svg {args.svg!r} should end in .svg")
        from ..report.browser import find_chromium

        if find_chromium() is None:
            raise CnnzooError("--svg draws the diagram in headless Chromium and found none: install Debian's chromium "
                              "package (or set CNNZOO_CHROMIUM), or save the SVG from the page's 'Save SVG' button")
    elif args.expand:
        raise CnnzooError("--expand chooses what --svg draws; the page opens views from its own buttons")
    page, default = build(args)
    if args.out or not args.svg:
        out = Path(args.out or default)
        atomic_write(out, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
        print(f"wrote {out} ({len(page.encode()) / 1e3:,.0f} kB): open it in a browser, no network needed")
    if args.svg:
        from ..report import diagram_svg

        text = diagram_svg(page, args.expand)
        atomic_write(Path(args.svg), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        print(f"wrote {args.svg} ({len(text.encode()) / 1e3:,.0f} kB): the architecture diagram")
    return 0
