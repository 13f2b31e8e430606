"""``cnnzoo transfer-study``: every transfer strategy at several data sizes, one table and one plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import csv
from .train import add_config_flags, check_weights, print_config, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.recipes import FINETUNE

    p = sub.add_parser("transfer-study", help="accuracy of scratch / linear / top:K / full against data size",
                       description="Train MODEL on --data with each of --strategies at each of --per-class "
                                   "training images per class, all with the same epochs and batch size; "
                                   "writes study.csv, study.md and study.png to --out.")
    add_config_flags(p, skip=frozenset({"strategy", "limit_per_class"}), defaults=FINETUNE, scope="finetune")
    p.add_argument("--per-class", type=csv(int), required=True, metavar="N,M",
                   help="training images per class, e.g. 10,100,1000")
    p.add_argument("--strategies", type=csv(str), default=("scratch", "linear", "top:1", "full"), metavar="A,B",
                   help="from scratch, linear, top:K, full, auto, logreg (default scratch,linear,top:1,full)")
    p.set_defaults(func=cmd_transfer_study)


def cmd_transfer_study(args: argparse.Namespace) -> int:
    import dataclasses

    from ..errors import CnnzooError
    from ..registry import model_info
    from ..training.recipes import FINETUNE
    from ..training.study import run_study

    model_info(args.model)
    if args.print_config:
        return print_config(args, "transfer-study", FINETUNE)
    cfg = resolve_config(args, FINETUNE)
    if not cfg.weights:
        raise CnnzooError("transfer-study needs --weights: the pretrained weights to study")
    check_weights(cfg.model, cfg.weights)
    if not args.per_class or min(args.per_class) < 1:
        raise CnnzooError("--per-class takes positive sizes, e.g. 10,100,1000")
    out = Path(cfg.out or f"runs/study-{cfg.model}-{cfg.data.replace(':', '_').replace('/', '_')}")
    run_study(dataclasses.replace(cfg, out=None), list(args.per_class), list(args.strategies), out)
    return 0
