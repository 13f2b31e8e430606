"""``cnnzoo list`` and ``cnnzoo info``: what the registry holds."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..errors import CnnzooError
from ..registry import list_models, model_info


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
    table = Table("model", "paper", "year", "input", "params", "GMACs", "top-1")
    for name in names:
        i = model_info(name)
        table.add_row(name, i.paper, str(i.year), "x".join(map(str, i.input_size)), fmt_params(i),
                      f"{i.gmacs:g}" if i.gmacs else "—", f"{i.top1:g}" if i.top1 else "—")
    Console().print(table)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    i = model_info(args.model)
    rows = [
        ("paper", f"{i.paper} ({i.year})"), ("link", i.url or "—"), ("ILSVRC", i.ilsvrc or "—"),
        ("input", "x".join(map(str, i.input_size))), ("minimum size", f"{i.min_size}x{i.min_size}"),
        ("classes", str(i.num_classes)), ("params", fmt_params(i)),
        ("GMACs", f"{i.gmacs:g}" if i.gmacs else "—"), ("ImageNet top-1", f"{i.top1:g}" if i.top1 else "—"),
        ("figures from", i.source or "—"), ("small-image variant", i.small_variant or "—"),
        ("torchvision twin", i.torchvision or "—"), ("pretrained", ", ".join(i.pretrained) or "—"),
        ("notes", i.notes or "—"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def fmt_params(info) -> str:
    if info.params is not None:
        return f"{info.params:,}"
    return f"~{info.params_approx / 1e6:.2f}M" if info.params_approx else "—"
