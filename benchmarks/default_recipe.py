"""A model's default recipe against the plain PyTorch loop it replaces, at the same number of epochs.

The plain loop is what people write first: SGD lr 0.05, momentum 0.9, weight decay 5e-4, batch 128, a
constant rate, no augmentation, every training image (or the first ``--limit-train``), shuffled each
epoch. It trains on the same in-memory data, shaped as cnnzoo shapes it (LeNet's 28x28 zero-padded to
32x32, the dataset's mean and std), from the same seed. cnnzoo's side is ``cnnzoo train MODEL --epochs E``
itself: the model's default recipe, its validation split taken out of the same images. Both print the
test top-1 of their final weights.

    .venv/bin/python benchmarks/default_recipe.py                       # lenet5 and resnet20_cifar
    .venv/bin/python benchmarks/default_recipe.py --models lenet5 --epochs 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.cli import main as cnnzoo_main
from cnnzoo.datasets.readers import load_dataset
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.recipes import default_recipe
from cnnzoo.training.trainer import resolve_model

# Training images per model: all of Fashion-MNIST for LeNet-5; ResNet-20's convolutions cost ~75x more
# per image, so it trains on the first 5,000 to keep the benchmark to minutes.
LIMITS = {"lenet5": None, "resnet20_cifar": 5000}


def plain_loop(model_name: str, epochs: int, limit: int | None, seed: int = 0) -> float:
    """Test top-1 of the plain loop after ``epochs`` epochs."""
    data = load_dataset("fashion-mnist")
    _, pipeline = resolve_model(TrainConfig(model=model_name, augment=()), data)
    images, labels = data.train_images[:limit], data.train_labels[:limit]
    torch.manual_seed(seed)
    model = cnnzoo.create_model(model_name, num_classes=data.num_classes, in_chans=data.image_shape[0])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(labels)).split(128):
            loss = F.cross_entropy(model(pipeline(images[batch])), labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(pipeline(x)).argmax(1) for x in data.test_images.split(1000)])
    return (pred == data.test_labels).float().mean().item()


def cnnzoo_default(model_name: str, epochs: int, limit: int | None) -> float:
    """Test top-1 of ``cnnzoo train MODEL --epochs E [--limit-train N]``."""
    with tempfile.TemporaryDirectory() as out:
        argv = ["train", model_name, "--epochs", str(epochs), "--out", out, "--no-progress"]
        if limit:
            argv += ["--limit-train", str(limit)]
        with contextlib.redirect_stdout(io.StringIO()):
            if cnnzoo_main(argv) != 0:
                raise SystemExit(f"cnnzoo {' '.join(argv)} failed")
        return json.loads((Path(out) / "report.json").read_text())["test_top1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(LIMITS))
    ap.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--limit-train", type=int, help="train on the first N images (default: all for lenet5, "
                                                    "5000 for resnet20_cifar)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPU threads, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")
    print(f"{'model':<16}{'recipe':<18}{'epochs':>6}{'images':>8}{'plain loop':>12}{'cnnzoo':>9}{'difference':>12}"
          f"{'time':>8}")
    for name in args.models:
        limit = args.limit_train or LIMITS.get(name)
        for epochs in args.epochs:
            t0 = time.perf_counter()
            base, ours = plain_loop(name, epochs, limit), cnnzoo_default(name, epochs, limit)
            print(f"{name:<16}{default_recipe(name):<18}{epochs:>6}{limit or 60000:>8}{base:>12.4f}{ours:>9.4f}"
                  f"{100 * (ours - base):>+11.2f}%{time.perf_counter() - t0:>7.0f}s", flush=True)


if __name__ == "__main__":
    main()
