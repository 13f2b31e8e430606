"""Training speed: cnnzoo's trainer against the plain PyTorch loop people copy, in the same run.

The plain loop is torchvision's ``FashionMNIST`` + ``DataLoader`` + per-image transforms (the same
padding/crop/flip and normalisation), the same model, batch size, optimiser and epochs. Prints images/s
of both and the ratio and both test accuracies. It also measures this machine's fp32 matrix-multiply peak
and the model's training cost per image (3x its forward FLOPs: the backward pass costs two forwards), so
it prints the ceiling no trainer can pass here: peak / cost images/s, as a multiple of the plain loop.
Time to 91% test accuracy is ``benchmarks/time_to_accuracy.py``.

    .venv/bin/python benchmarks/train_speed.py --model lenet5 --epochs 3
    .venv/bin/python benchmarks/train_speed.py --model resnet20_cifar --epochs 1 --limit-train 10000
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.datasets.fetch import DEBIAN_FASHION_MNIST, data_home
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.fit import fit

MODEL_ARGS = {"lenet5": {"act": "relu", "pool": "max"}}


def torchvision_root(tmp: Path) -> Path:
    """torchvision wants the raw, uncompressed IDX files under ROOT/FashionMNIST/raw/."""
    src = DEBIAN_FASHION_MNIST if DEBIAN_FASHION_MNIST.is_dir() else data_home() / "fashion-mnist"
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in src.glob("*.gz"):
        with gzip.open(gz) as f, open(raw / gz.name[:-3], "wb") as out:
            shutil.copyfileobj(f, out)
    return tmp


def test_accuracy(model: torch.nn.Module, loader: torch.utils.data.DataLoader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def plain_loop(model_name: str, epochs: int, batch_size: int, lr: float, size: int, workers: int,
               limit: int | None = None) -> dict:
    from torchvision import datasets, transforms

    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(Path(tmp))
        pad = (size - 28) // 2
        train_tf = transforms.Compose([
            transforms.Pad(pad), transforms.RandomCrop(size, padding=2), transforms.RandomHorizontalFlip(),
            transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
        test_tf = transforms.Compose([transforms.Pad(pad), transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
        train = datasets.FashionMNIST(root, train=True, transform=train_tf)
        test = datasets.FashionMNIST(root, train=False, transform=test_tf)
        if limit:
            train = torch.utils.data.Subset(train, range(limit))
        loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers)
        test_loader = torch.utils.data.DataLoader(test, batch_size=512, num_workers=workers)
        torch.manual_seed(0)
        model = cnnzoo.create_model(model_name, num_classes=10, in_chans=1, **MODEL_ARGS.get(model_name, {}))
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        seen, t0 = 0, time.perf_counter()
        for _ in range(epochs):
            model.train()
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                seen += len(y)
        elapsed = time.perf_counter() - t0
        top1 = test_accuracy(model, test_loader)
    return {"images_per_s": seen / elapsed, "time": elapsed, "test_top1": top1}


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The best fp32 GFLOP/s of an n x n matrix product on this machine (all intra-op threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def training_gflop_per_image(model_name: str, size: int) -> float:
    model = cnnzoo.create_model(model_name, num_classes=10, in_chans=1, **MODEL_ARGS.get(model_name, {}))
    return 3 * analyze(model, (1, size, size), training=True).totals.flops / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    ap.add_argument("--limit-train", type=int, help="train on the first N images only (speed runs of big models)")
    args = ap.parse_args()
    info = cnnzoo.model_info(args.model)
    size = max(28, info.min_size)
    print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")
    print(f"model {args.model}, batch {args.batch_size}, {args.epochs} epochs, Fashion-MNIST at {size}x{size}")

    base = plain_loop(args.model, args.epochs, args.batch_size, args.lr, size, args.workers, args.limit_train)
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(model=args.model, data="fashion-mnist", epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, nesterov=True, schedule="onecycle", warmup_epochs=0.3, label_smoothing=0.1,
                          augment=("crop", "flip"), val_size=5000, out=out, progress=False,
                          limit_train=args.limit_train + 5000 if args.limit_train else None,
                          model_kwargs=MODEL_ARGS.get(args.model, {}))
        ours = fit(cfg, log=lambda *a: None)
    print(f"{'':<22}{'images/s':>12}{'train s':>10}{'test top-1':>12}")
    print(f"{'plain PyTorch loop':<22}{base['images_per_s']:>12,.0f}{base['time']:>10.1f}{base['test_top1']:>12.4f}")
    print(f"{'cnnzoo':<22}{ours['images_per_s']:>12,.0f}{ours['train_time_s']:>10.1f}{ours['test_top1']:>12.4f}")
    print(f"speed ratio (cnnzoo / plain): {ours['images_per_s'] / base['images_per_s']:.2f}x")
    peak, cost = matmul_peak_gflops(), training_gflop_per_image(args.model, size)
    ceiling = peak / cost
    print(f"ceiling: fp32 matmul peak {peak:.0f} GFLOP/s / {cost:.4f} GFLOP per training image = "
          f"{ceiling:,.0f} images/s = {ceiling / base['images_per_s']:.2f}x the plain loop "
          f"(plain loop at {base['images_per_s'] * cost:.0f} GFLOP/s, cnnzoo at {ours['images_per_s'] * cost:.0f})")


if __name__ == "__main__":
    main()
