"""``cnnzoo run`` (the main job of ``make run``) and ``cnnzoo check`` (a forward pass through every model)."""

from __future__ import annotations

import argparse
import time

import torch

from .. import argtypes
from ..errors import CnnzooError
from ..registry import create_model, list_models, model_info

# The main job: a classic CNN trained on Fashion-MNIST end to end in under a minute on two CPU cores.
# LeNet-5 with ReLU, max pooling and batch norm (plain LeNet-5 stalls near 90.5% in that time), the
# fast recipe without its regularisers: six epochs are too few for LeNet's 62k weights to overfit, and
# label smoothing and augmentation cost accuracy at this length (measured).
MAIN_JOB = dict(model="lenet5", data="fashion-mnist", recipe="fast", epochs=6, batch_size=256, lr=0.2,
                label_smoothing=0.0, model_kwargs={"act": "relu", "pool": "max", "norm": "bn"}, augment=(),
                val_size=5000, out="runs/main")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job: train LeNet-5 (with batch norm) on Fashion-MNIST and report test accuracy")
    p.add_argument("--out", default=MAIN_JOB["out"], help="run folder (default: %(default)s)")
    p.add_argument("--epochs", type=argtypes.positive_int, default=MAIN_JOB["epochs"],
                   help="passes over the training set (default: %(default)s)")
    p.set_defaults(func=cmd_run)
    c = sub.add_parser("check", help="build every registered model and run one forward pass")
    c.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'resnet*'")
    c.set_defaults(func=cmd_check)


def cmd_run(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfig
    from ..training.fit import fit
    from ..training.recipes import recipe_overrides

    cfg = TrainConfig(**{**recipe_overrides(MAIN_JOB["recipe"]), **MAIN_JOB, "out": args.out, "epochs": args.epochs})
    t0 = time.perf_counter()
    report = fit(cfg)
    print(f"main job done in {time.perf_counter() - t0:.0f} s: {report['model']} reaches "
          f"{100 * report['test_top1']:.2f}% test accuracy on Fashion-MNIST")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise CnnzooError(f"no registered model matches {args.pattern!r}; patterns are fnmatch-style, e.g. 'resnet*'")
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
