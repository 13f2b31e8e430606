"""``cnnzoo list`` and ``cnnzoo info``: what the registry holds."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from ..errors import CnnzooError
from ..registry import list_models, model_info

PAPER_MIN = 16  # narrower than this, a title says too little to be worth its column
# Dropped in this order when the terminal is too narrow for them and a useful paper column.
DROP_ORDER = ("input", "GMACs", "top-1", "year", "params")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'resnet*'")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="describe one model: paper, inputs, reference figures")
    p.add_argument("model")
    p.set_defaults(func=cmd_info)


def cmd_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise CnnzooError(f"no registered model matches {args.pattern!r}; patterns are fnmatch-style, e.g. 'resnet*'")
    rows = []
    for name in names:
        i = model_info(name)
        rows.append({"model": name, "year": str(i.year), "input": "x".join(map(str, i.input_size)),
                     "params": short_params(i), "GMACs": gmacs_cell(name),
                     "top-1": f"{i.top1:g}" if i.top1 else "—", "paper": i.paper})
    width = shutil.get_terminal_size().columns
    lines = fit_table(rows, width)
    if any(r["GMACs"].endswith(COMPUTED) for r in rows) and "GMACs" in lines[0]:
        lines += textwrap.wrap(f"{COMPUTED} computed by cnnzoo at the model's own input (conv and linear MACs, as "
                               "`cnnzoo summary` counts them); the others are reference figures", max(40, width))
    print("\n".join(lines))
    return 0


#: the mark of a figure cnnzoo computed, beside the reference figures
COMPUTED = "*"


def gmacs_cell(name: str) -> str:
    """The reference GMACs, else cnnzoo's exact figure at the model's own input, marked :data:`COMPUTED`."""
    from ..computed import computed_macs

    i = model_info(name)
    if i.gmacs:
        return f"{i.gmacs:g}"
    return f"{computed_macs(name) / 1e9:.3g}{COMPUTED}"


def fit_table(rows: list[dict[str, str]], width: int) -> list[str]:
    """One line per row, at most ``width`` characters where that can be: the model's name is never cut (it
    is what a user types); the paper's title takes the room left, cut with "…", and columns are dropped
    (:data:`DROP_ORDER`) when even a short title would not fit; no line wraps."""
    columns = [c for c in rows[0] if c != "paper"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in rows[0]}

    def used(cols: list[str]) -> int:
        return sum(widths[c] for c in cols) + 2 * (len(cols) - 1)

    drops = [c for c in DROP_ORDER if c in columns]
    while used(columns) + 2 + PAPER_MIN > width and drops:
        columns.remove(drops.pop(0))
    room = width - used(columns) - 2
    if room >= PAPER_MIN:
        columns.append("paper")
        widths["paper"] = min(widths["paper"], room)
    left = {"model", "paper"}

    def cell(c: str, text: str) -> str:
        if len(text) > widths[c]:
            text = text[:widths[c] - 1] + "…"
        return text.ljust(widths[c]) if c in left else text.rjust(widths[c])

    lines = ["  ".join(cell(c, c) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(cell(c, r[c]) for c in columns) for r in rows]
    return [line.rstrip() for line in lines]


def cmd_info(args: argparse.Namespace) -> int:
    from ..training.recipes import recipe_choice

    i = model_info(args.model)
    rows = [
        ("paper", f"{i.paper} ({i.year})"), ("link", i.url or "—"), ("ILSVRC", i.ilsvrc or "—"),
        ("input", "x".join(map(str, i.input_size))), ("minimum size", f"{i.min_size}x{i.min_size}"),
        ("classes", str(i.num_classes)), ("params", fmt_params(i)),
        ("GMACs", f"{i.gmacs:g}" if i.gmacs else f"{gmacs_cell(i.name)[:-1]} (computed by cnnzoo at "
                                                 f"{'x'.join(map(str, i.input_size))}; no reference figure)"), ("ImageNet top-1", f"{i.top1:g}" if i.top1 else "—"),
        ("figures from", i.source or "—"), ("small-image variant", i.small_variant or "—"),
        ("torchvision twin", i.torchvision or "—"), ("pretrained", _pretrained_line(i)),
        ("default recipe", recipe_choice(args.model)[1]), ("notes", i.notes or "—"),
    ]
    from ..pretrained import mapping_notes

    rows[-2:-2] = [("weights mapped", note) for note in mapping_notes(i)]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def short_params(info) -> str:
    """Parameters in millions (3 significant figures), for a table row; ``info`` has the exact count."""
    n = info.params if info.params is not None else info.params_approx
    if not n:
        return "—"
    return f"{'~' if info.params is None else ''}{n / 1e6:.3g}M" if n >= 1e5 else f"{n / 1e3:.3g}k"


def fmt_params(info) -> str:
    if info.params is not None:
        return f"{info.params:,}"
    return f"~{info.params_approx / 1e6:.2f}M" if info.params_approx else "—"


def _pretrained_line(info) -> str:
    """The weights by name, without importing torchvision just to list its enums (that costs an import of torch)."""
    if info.torchvision:
        from ..pretrained import mapping_notes

        more = " and timm's" if mapping_notes(info) else ""
        return f"torchvision's{more} ImageNet weights: --weights imagenet (all tags: `cnnzoo weights {info.name}`)"
    return ", ".join(info.pretrained) or "—"
