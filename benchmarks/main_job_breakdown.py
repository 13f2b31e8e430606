"""Where the main job's time goes: each phase of ``cnnzoo run`` timed on its own, wall and CPU seconds.

Phases: starting Python and importing torch (a fresh interpreter), importing the trainer, reading
Fashion-MNIST, one training epoch (``train_one_epoch``: data pipeline, model, optimiser) and the same
number of bare training steps on pre-shaped tensors (the model and optimiser alone), the bare steps
again with ``nn.MaxPool2d`` in place of LeNet-5's ``MaxPool2x2`` (the baseline of its fast CPU path),
one validation pass (5,000 images), the test pass (10,000), a checkpoint and the two plots. Training
phases run at each intra-op thread count asked for, interleaved, best of ``--repeats``. On a shared
machine the wall time of a one-thread phase can exceed its CPU time (the process waited for a core);
with several threads CPU time also counts the threads' spinning.

    .venv/bin/python benchmarks/main_job_breakdown.py
    .venv/bin/python benchmarks/main_job_breakdown.py --threads 1 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, float]:
    """Best wall seconds and best CPU seconds of ``repeats`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), cpu_seconds()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, cpu_seconds() - c)
    return wall, cpu


class Rows:
    """Prints each phase's row as soon as it is measured."""

    def __init__(self) -> None:
        print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
        print(f"{'phase':<62}{'wall s':>8}{'CPU s':>8}", flush=True)

    def append(self, row: tuple[str, float, float]) -> None:
        label, wall, cpu = row
        print(f"{label:<62}{wall:>8.2f}{cpu:>8.2f}", flush=True)


def bare_steps(model: nn.Module, cfg, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One epoch of forward, loss, backward and SGD step on ready tensors: no data pipeline, no metrics."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)

    def run() -> None:
        model.train()
        for xb, yb in zip(x.split(cfg.batch_size), y.split(cfg.batch_size)):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    rows = Rows()

    python = [sys.executable, "-c", "import torch"]
    rows.append(("python + import torch (fresh process)", *timed(lambda: subprocess.run(python, check=True), 3)))
    w, c = time.perf_counter(), cpu_seconds()
    from cnnzoo.commands.run import main_job_config
    from cnnzoo.training.checkpoint import save_checkpoint
    from cnnzoo.training.fit import build_model, prepare_data
    from cnnzoo.training.outputs import plot_confusion, plot_curves
    from cnnzoo.training.trainer import (Dist, build_optimizer, build_scheduler, metrics_from_probs, predict,
                                         split_validation, train_one_epoch)
    rows.append(("import cnnzoo's trainer", time.perf_counter() - w, cpu_seconds() - c))

    cfg = main_job_config(out=None)
    cfg.progress = False
    data = prepare_data(cfg)
    rows.append(("read Fashion-MNIST", *timed(lambda: prepare_data(cfg), 2)))
    device = torch.device("cpu")
    model, _, pipeline, _, cfg = build_model(cfg, data, device, lambda *a: None)
    # The main job trains on every image; the validation pass is timed on the 5,000 it used to hold out.
    train_idx = torch.arange(len(data.train_labels))
    val_idx = split_validation(len(data.train_labels), 5000, cfg.seed)[1]
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, -(-len(train_idx) // cfg.batch_size))
    g = torch.Generator().manual_seed(1)
    x = pipeline(data.train_images[train_idx])
    y = data.train_labels[train_idx]
    slow = build_model(cfg, data, device, lambda *a: None)[0]
    slow.pool1, slow.pool2 = nn.MaxPool2d(2), nn.MaxPool2d(2)
    n = len(train_idx)
    epoch_runs = {
        f"training epoch ({n:,} images, train_one_epoch)": lambda: train_one_epoch(
            model, data, train_idx, pipeline, optimizer, scheduler, cfg, g, device, Dist(), 1),
        "  bare steps, MaxPool2x2 (the model alone)": bare_steps(model, cfg, x, y),
        "  bare steps, nn.MaxPool2d (baseline)": bare_steps(slow, cfg, x, y),
    }
    default_threads = torch.get_num_threads()
    for label, run in epoch_runs.items():
        for threads in args.threads:
            torch.set_num_threads(threads)
            rows.append((f"{label}, {threads} thread{'s' * (threads > 1)}", *timed(run, args.repeats)))
    torch.set_num_threads(default_threads)

    val_images, val_labels = data.train_images[val_idx], data.train_labels[val_idx]
    rows.append((f"validation pass ({len(val_idx):,} images)",
                 *timed(lambda: metrics_from_probs(predict(model, val_images, pipeline), val_labels, 10), 2)))
    rows.append(("test pass (10,000 images)",
                 *timed(lambda: metrics_from_probs(predict(model, data.test_images, pipeline), data.test_labels, 10), 2)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        rows.append(("checkpoint (last.pt)", *timed(lambda: save_checkpoint(out / "last.pt", state), 2)))
        history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e, "train_acc": 0.9, "val_acc": 0.9}
                   for e in range(1, cfg.epochs + 1)]
        confusion = metrics_from_probs(predict(model, data.test_images, pipeline), data.test_labels, 10)["confusion"]
        rows.append(("plots (first: imports matplotlib)",
                     *timed(lambda: (plot_curves(out / "c.png", history),
                                     plot_confusion(out / "m.png", confusion, list(data.classes))))))
        rows.append(("plots (again)", *timed(lambda: (plot_curves(out / "c.png", history),
                                                      plot_confusion(out / "m.png", confusion, list(data.classes))))))

    print(f"load average at the end {os.getloadavg()[0]:.1f}; main job: {cfg.epochs} epochs of {n:,} images, "
          f"batch {cfg.batch_size}")


if __name__ == "__main__":
    main()
