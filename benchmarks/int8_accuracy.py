"""int8 accuracy on real data: fp32, bf16 and int8 top-1 of the same trained network, on Fashion-MNIST's test set.

Two networks, trained here with cnnzoo's own commands (their defaults, except where a flag is shown):

- EfficientNet-Lite0 from its ImageNet weights, fine-tuned on 1,000 Fashion-MNIST images per class
  (``--strategy linear``: the default ``auto`` picks full fine-tuning at 1,000 per class, hours on 2 cores);
- ``resnet20_cifar`` trained with its recipe (``resnet2015-cifar``) for ``--epochs`` epochs.

Each is then quantized with ``cnnzoo quantize`` (300 calibration images from the training split, the
default), which prints fp32 (the ONNX export, in ONNX Runtime) and int8 top-1 on the 10,000 test images;
bf16 top-1 comes from ``cnnzoo eval --precision bf16`` on the same checkpoint. The issue's target: the
int8 drop at most 0.5 point. Prints every figure, the drops, and the machine's capability line.

    .venv/bin/python benchmarks/int8_accuracy.py [--epochs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnzoo.runtime import machine

CLI = [sys.executable, "-m", "cnnzoo"]


def run(args: list[str]) -> str:
    t0 = time.perf_counter()
    done = subprocess.run(CLI + args, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): cnnzoo {' '.join(args)}\n{done.stderr[-2000:]}")
    print(f"  cnnzoo {' '.join(args)}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return done.stdout + done.stderr


def figures(name: str, checkpoint: Path, folder: Path) -> dict[str, float]:
    out = run(["quantize", str(checkpoint), "--out", str(folder / f"{name}-int8.onnx")])
    fp32, int8 = map(float, re.search(r"fp32 ([0-9.]+), int8 ([0-9.]+)", out).groups())
    bf16_out = run(["eval", str(checkpoint), "--precision", "bf16", "--engine", "eager"])
    bf16 = float(re.search(r"top-1 ([0-9.]+)", bf16_out.split(str(checkpoint), 1)[1]).group(1))
    return {"fp32": fp32, "bf16": bf16, "int8": int8}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="resnet20_cifar's epochs (default 3)")
    p.add_argument("--keep", help="a folder to keep the runs and int8 files in (default: a temporary one)")
    args = p.parse_args()
    print(machine().line())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = {}
        print("efficientnet_lite0, fine-tuned from ImageNet on 1,000 images per class:")
        run(["finetune", "efficientnet_lite0", "--weights", "imagenet", "--data", "fashion-mnist", "--limit-per-class", "1000",
             "--strategy", "linear", "--out", str(folder / "lite0")])
        rows["efficientnet_lite0 (linear, 1,000/class)"] = figures("lite0", folder / "lite0" / "best.pt", folder)
        print(f"resnet20_cifar, trained with its recipe for {args.epochs} epochs:")
        run(["train", "resnet20_cifar", "--epochs", str(args.epochs), "--out", str(folder / "r20")])
        rows[f"resnet20_cifar ({args.epochs} epochs)"] = figures("r20", folder / "r20" / "best.pt", folder)
    print(f"\n{'network':<44} {'fp32':>7} {'bf16':>7} {'int8':>7} {'int8 drop':>10} {'bf16 drop':>10}")
    for name, r in rows.items():
        print(f"{name:<44} {r['fp32']:7.4f} {r['bf16']:7.4f} {r['int8']:7.4f} "
              f"{100 * (r['fp32'] - r['int8']):+9.2f}pt {100 * (r['fp32'] - r['bf16']):+9.2f}pt")
    print("(top-1 on the 10,000 Fashion-MNIST test images; target: int8 drop <= 0.5 point)")


if __name__ == "__main__":
    main()
