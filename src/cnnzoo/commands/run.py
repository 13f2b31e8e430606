"""``cnnzoo run``: the main job of ``make run``."""

from __future__ import annotations

import argparse
import time

import torch

from ..registry import create_model, list_models, model_info


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job: list the zoo and check a forward pass of every model")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    names = list_models()
    print(f"cnnzoo: {len(names)} registered models")
    t0 = time.perf_counter()
    for name in names:
        info = model_info(name)
        size = max(info.min_size, min(info.input_size[1], 64))
        model = create_model(name).eval()
        with torch.no_grad():
            out = model(torch.randn(1, info.input_size[0], size, size))
        n = sum(p.numel() for p in model.parameters())
        print(f"  {name:<28} {n:>13,} params  {info.input_size[0]}x{size}x{size} -> {tuple(out.shape)}")
    print(f"forward pass checked for every model in {time.perf_counter() - t0:.1f} s")
    return 0
