"""Time to 91% Fashion-MNIST test accuracy: the main job (``make run``) against the plain PyTorch loop.

Both train the main job's model with its settings (LeNet-5 with batch norm, SGD Nesterov, one-cycle,
batch 256, no augmentation, the same learning-rate schedule); the plain loop is torchvision's
``FashionMNIST`` + ``DataLoader`` + per-image transforms; both train on all 60,000 training images.
cnnzoo's figure is the whole job's wall time as ``cnnzoo run`` runs it (its thread count, data loading,
training, checkpoints, test, report and plots); the plain loop's is its training time until the epoch
whose test accuracy first reaches the target (its test evaluations are not counted).

    .venv/bin/python benchmarks/time_to_accuracy.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.commands.run import main_job_config, run_main_job
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.trainer import lr_factor
from train_speed import test_accuracy, torchvision_root


def plain_loop(cfg: TrainConfig, target: float, workers: int) -> dict:
    from torchvision import datasets, transforms

    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(Path(tmp))
        tf = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
        train = datasets.FashionMNIST(root, train=True, transform=tf)
        test = datasets.FashionMNIST(root, train=False, transform=tf)
        loader = torch.utils.data.DataLoader(train, batch_size=cfg.batch_size, shuffle=True, num_workers=workers)
        test_loader = torch.utils.data.DataLoader(test, batch_size=512, num_workers=workers)
        torch.manual_seed(cfg.seed)
        model = cnnzoo.create_model(cfg.model, num_classes=10, in_chans=1, **cfg.model_kwargs)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                              weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg, len(loader)))
        train_time, reached, history = 0.0, None, []
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            for x, y in loader:
                loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            train_time += time.perf_counter() - t0
            history.append(test_accuracy(model, test_loader))
            if reached is None and history[-1] >= target:
                reached = train_time
    return {"history": history, "train_time": train_time, "time_to_target": reached}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=0.91)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    args = ap.parse_args()
    cfg = TrainConfig.from_dict({**main_job_config().to_dict(), "progress": False})
    print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")
    print(f"{cfg.model} {cfg.model_kwargs}, batch {cfg.batch_size}, lr {cfg.lr}, {cfg.epochs} epochs, target {args.target:.0%}")

    base = plain_loop(cfg, args.target, args.workers)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        ours = run_main_job(TrainConfig.from_dict({**cfg.to_dict(), "out": out}), log=lambda *a: None)
        wall = time.perf_counter() - t0
    print("plain loop test accuracy by epoch: " + " ".join(f"{a:.4f}" for a in base["history"]))
    reached = base["time_to_target"]
    print(f"{'':<34}{'test top-1':>12}{'time to target':>16}")
    print(f"{'plain loop (training time only)':<34}{base['history'][-1]:>12.4f}"
          f"{f'{reached:.1f} s' if reached else 'not reached':>16}")
    ok = ours["test_top1"] >= args.target
    print(f"{'cnnzoo main job (whole wall time)':<34}{ours['test_top1']:>12.4f}{f'{wall:.1f} s' if ok else 'not reached':>16}")
    if reached and ok:
        print(f"time ratio (plain / cnnzoo): {reached / wall:.2f}x")


if __name__ == "__main__":
    main()
