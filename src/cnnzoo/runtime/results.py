"""Benchmark results: the columns, reading and writing them (resumable files), the table and Canziani's figures."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from ..errors import CnnzooError
from .precision import machine

#: Columns of a results file, in the spirit of timm's benchmark.py results.
FIELDS = [
    "model", "input", "img_size", "batch", "engine", "engine_requested", "device", "device_name", "threads",
    "precision", "precision_requested", "channels_last", "infer_samples_per_sec", "infer_step_ms", "infer_step_ms_iqr",
    "infer_img_ms", "infer_runs", "peak_mem_mb", "watts", "joules_per_img", "power_method", "train_samples_per_sec",
    "train_step_ms", "train_step_ms_iqr", "train_peak_mem_mb", "params", "gmacs", "top1", "torch",
]
KEY_FIELDS = ("model", "input", "batch", "engine_requested", "device", "device_name", "precision_requested",
              "channels_last", "threads")
TRAIN_FIELDS = ("train_samples_per_sec", "train_step_ms", "train_step_ms_iqr", "train_peak_mem_mb")


def row_key(row: dict[str, Any]) -> tuple:
    """What identifies a row for resuming: :data:`KEY_FIELDS` (the same measurement on the same machine)."""
    return (str(row["model"]), str(row["input"]), int(row["batch"]), str(row["engine_requested"]),
            str(row["device"]), str(row["device_name"]), str(row.get("precision_requested") or row["precision"]),
            _truthy(row["channels_last"]),
            int(row["threads"]))


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def is_complete(row: dict[str, Any], train: bool) -> bool:
    """A finished row; with ``train`` it must also hold the training-step figures."""
    return not train or all(row.get(k) not in (None, "") for k in TRAIN_FIELDS)


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
    from ..weights import atomic_write

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


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def render_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned text table, with the power note and the hardware underneath."""
    train = any(r.get("train_step_ms") not in (None, "") for r in rows)
    head = ["model", "input", "batch", "engine", "precision", "img/s", "ms/batch", "IQR ms", "ms/img", "peak MB", "W", "mJ/img"]
    head += ["train img/s", "train ms", "train MB"] if train else []
    table = [head]
    for r in rows:
        j = r.get("joules_per_img")
        cells = [r["model"], r["input"], str(r["batch"]), r["engine"], str(r["precision"]), _fmt(r["infer_samples_per_sec"], ",.1f"),
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
        lines.append("  ".join(c.ljust(w) if i < 2 or i in (3, 4) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = dict.fromkeys(str(r["watts"]) for r in rows if not isinstance(r["watts"], (int, float)))
    notes.update(dict.fromkeys(f"power: {r['power_method']}" for r in rows if r.get("power_method")))
    devices = dict.fromkeys(f"{r['device']}: {r['device_name']}, {threads_text(r['threads'])}"
                            f"{', channels_last' if r['channels_last'] else ''}, torch {r['torch']}" for r in rows)
    tail = [f"W: {n}" if n.startswith("n/a") else n for n in notes] + list(devices)
    if any(r["device"] == "cpu" for r in rows):
        tail.append(machine().line())
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
    from ..analysis.plots import save_figure

    save_figure(fig, path, dpi=110)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)
