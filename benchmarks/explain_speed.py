"""Speed of cnnzoo explain and visualize, each beside its baseline timed in the same run.

1. Grad-CAM (pytorch-grad-cam through cnnzoo.explain) for 32 images at 224 px on EfficientNet-Lite0, against one
   forward + backward of the same batch in plain PyTorch (the issue's target: at most 3x).
2. Top-9 patches for 8 units over the 10,000 Fashion-MNIST test images: cnnzoo's one pass against one pass per unit
   (the naive loop). Needs a trained LeNet-5 file (--lenet), else runs at random initialisation.

    python benchmarks/explain_speed.py [--runs 3] [--lenet runs/lenet5/best.pt]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import cnnzoo
from cnnzoo.explain import Explainer
from cnnzoo.explain.visualize import top_patches


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gradcam(runs: int) -> None:
    model = cnnzoo.create_model("efficientnet_lite0").eval()
    x = torch.randn(32, 3, 224, 224)
    targets = list(range(32))

    def forward_backward() -> None:
        xi = x.clone().requires_grad_(True)
        model(xi)[torch.arange(32), targets].sum().backward()
        model.zero_grad(set_to_none=True)

    ex = Explainer(model, "gradcam", (3, 224, 224))
    ex(x[:2], targets[:2])  # warm-up
    base = best_of(runs, forward_backward)
    ours = best_of(runs, lambda: ex(x, targets))
    print(f"Grad-CAM, Lite0, 32 x 224 px: forward+backward {base:.2f} s, Grad-CAM {ours:.2f} s, "
          f"ratio {ours / base:.2f} (target <= 3)")


def patches(runs: int, lenet: str | None) -> None:
    from cnnzoo.datasets.readers import load_dataset

    model = (cnnzoo.load(lenet) if lenet else cnnzoo.create_model("lenet5")).eval()
    images = load_dataset("fashion-mnist").test_images
    pad = lambda u8: torch.nn.functional.pad(u8.float().div(255), (2, 2, 2, 2))  # 28 -> LeNet's 32
    units = list(range(8))

    def per_unit() -> None:
        for u in units:
            top_patches(model, "conv2", images, pad, [u])

    base = best_of(runs, per_unit)
    ours = best_of(runs, lambda: top_patches(model, "conv2", images, pad, units))
    print(f"top-9 patches, 8 units of LeNet-5 conv2, 10,000 Fashion-MNIST images: one pass per unit {base:.2f} s, "
          f"one pass {ours:.2f} s, ratio {ours / base:.2f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--lenet")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; best of {args.runs} runs")
    gradcam(args.runs)
    patches(args.runs, args.lenet)
