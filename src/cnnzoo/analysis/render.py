"""An :class:`~cnnzoo.analysis.result.Analysis` as a text table, Markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from .ops import fmt_shape
from .receptive_field import ReceptiveField
from .result import Analysis, LayerRow, TrainingMemory

FORMATS = ("table", "json", "csv", "markdown")


def _axes(values: Sequence[Any]) -> str:
    values = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return values[0] if len(set(values)) == 1 else "x".join(values)


def rf_text(field: ReceptiveField | None) -> tuple[str, str]:
    """(size, jump) cells: ``"212"``, ``"32"``; ``"all"`` once every output sees the whole input."""
    if field is None or not field.spans:
        return "", ""
    if field.whole:
        return "all", ""
    return _axes(field.size) + ("*" if field.context else ""), _axes(field.jump)


def _n(value: int) -> str:
    return f"{value:,}" if value else "0"


def _cells(r: LayerRow, frozen: bool) -> list[str]:
    size, jump = rf_text(r.field)
    cells = [r.label, r.type, fmt_shape(r.output) if r.output is not None else "", r.kernel_text,
             _n(r.params)]
    if frozen:
        cells.append(_n(r.params_frozen))
    mem = _n(r.mem_elements) if r.mem_elements or not r.note else r.note
    cells += [mem, _n(r.macs), _n(r.flops) + ("" if r.counted else "?"), size, jump]
    return cells


def _header(frozen: bool) -> list[str]:
    head = ["layer", "type", "output", "kernel", "params"]
    if frozen:
        head.append("frozen")
    return head + ["memory", "MACs", "FLOPs", "RF", "jump"]


def _bytes(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _si(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3f} {unit}"
    return str(n)


def totals_lines(a: Analysis, memory: TrainingMemory) -> list[str]:
    t = a.totals
    size, jump = rf_text(t.field)
    lines = [
        f"parameters       {t.params:,}  (trainable {t.trainable:,}, frozen {t.frozen:,}; buffers {t.buffers:,})",
        f"MACs             {t.macs:,} = {_si(t.macs)}  (conv, linear and matmul: the papers' and torchvision's figure)",
        f"FLOPs            {t.flops:,} = 2·MACs + {t.other_flops:,} other  (norms, pooling, activations, adds)",
        f"activations      {t.activation_elements:,} values = {_bytes(t.activation_bytes)} per sample at {a.dtype}"
        "  (input + every allocated output)",
    ]
    if t.field is not None:
        start = _axes(t.field.start)
        lines.append(f"receptive field  {size}, jump {jump}, start {start}  (the largest feature map's field)")
    m = memory
    lines.append(
        f"training memory  ~{_bytes(m.total)} estimated at batch {m.batch_size}, {m.optimizer}, {m.dtype}: "
        f"weights {_bytes(m.weights)} + gradients {_bytes(m.gradients)} + optimiser {_bytes(m.optimizer_state)}"
        f" + activations {_bytes(m.activations)}")
    lines.append(f"                 = {m.formula}")
    if any(r.field is not None and r.field.context for r in a.rows):
        lines.append("                 * also sees the whole image through a globally pooled gate "
                     "(squeeze-and-excitation)")
    if t.uncounted_ops:
        lines.append(f"uncounted        operations without a FLOP rule (marked ?): {', '.join(t.uncounted_ops)}")
    return lines


def render_text(a: Analysis, depth: int | None = None, batch_size: int = 1, optimizer: str = "momentum") -> str:
    rows = a.collapse(depth)
    frozen = a.totals.frozen > 0
    table = [_header(frozen)] + [_cells(r, frozen) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    left = {0, 1, 2, 3}
    out = [f"{a.model} at {a.describe_input()}, per sample ({a.dtype}{', training graph' if a.training else ''})"]
    for k, row in enumerate(table):
        out.append("  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append("")
    out += totals_lines(a, a.training_memory(batch_size, optimizer))
    return "\n".join(line.rstrip() for line in out)


def render_markdown(a: Analysis, depth: int | None = None, batch_size: int = 1, optimizer: str = "momentum") -> str:
    rows = a.collapse(depth)
    frozen = a.totals.frozen > 0
    head = _header(frozen)
    align = ["---"] * 4 + ["---:"] * (len(head) - 4)
    lines = [f"**{a.model}** at {a.describe_input()}, per sample ({a.dtype})", "",
             "| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    for r in rows:
        cells = _cells(r, frozen)
        cells[0] = f"`{cells[0]}`"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines += [f"- {line}" for line in totals_lines(a, a.training_memory(batch_size, optimizer))]
    return "\n".join(lines)


def render_csv(a: Analysis, depth: int | None = None) -> str:
    buf = io.StringIO()
    rows = [r.to_dict() for r in a.collapse(depth)]
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "x".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                         for k, v in r.items()})
    return buf.getvalue().rstrip("\n")


def render_json(a: Analysis, depth: int | None = None, batch_size: int = 1, optimizer: str = "momentum") -> str:
    return json.dumps(a.to_dict(depth, batch_size, optimizer), indent=1)


def render(a: Analysis, fmt: str = "table", depth: int | None = None, batch_size: int = 1,
           optimizer: str = "momentum") -> str:
    """``a`` in one of :data:`FORMATS`."""
    if fmt == "csv":
        return render_csv(a, depth)
    renderer = {"table": render_text, "json": render_json, "markdown": render_markdown}[fmt]
    return renderer(a, depth, batch_size, optimizer)
