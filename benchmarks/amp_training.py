"""Training at the CPU's limit: ``--amp auto`` against fp32, and cnnzoo's loop against the bare step, in one run.

For each model, on Fashion-MNIST (the first ``--limit-train`` training images, the full 10,000-image test set):

- the bare step: one SGD step of batch ``--batch-size`` on a random batch, eager, fp32 and bf16 autocast with
  channels_last (the issue's measurement), the fastest of a few after a warm-up;
- ``cnnzoo train`` through ``fit``, with ``amp="off"`` (fp32) and with the default ``amp="auto"`` (which measures
  and picks on this machine), the same recipe, epochs, seed and data;

and prints images/s of each, the ratios (auto against fp32; the loop against the bare step at the same precision),
both test top-1 figures and their difference, and the machine's capability line. The issue's targets on a CPU with
AMX: auto >= 1.8x fp32 at equal accuracy (within 0.3 point), the loop within 10 % of the bare step.

    .venv/bin/python benchmarks/amp_training.py [--models resnet20_cifar,resnet18_cifar,densenet_bc_100_12_cifar]
        [--epochs 3] [--limit-train 6000] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import tempfile

import torch

import cnnzoo
from cnnzoo.runtime import machine
from cnnzoo.training.amp import _rate
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.fit import fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="resnet20_cifar,resnet18_cifar,densenet_bc_100_12_cifar")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit-train", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    print(machine().line())
    print(f"Fashion-MNIST, first {args.limit_train:,} training images, {args.epochs} epochs, batch {args.batch_size}, "
          "each model's default recipe; test top-1 on 10,000 images")
    rows = []
    for name in args.models.split(","):
        model = cnnzoo.create_model(name, num_classes=10, in_chans=1)
        shape = (1, 28, 28)
        bare = {amp: _rate(model, shape, args.batch_size, torch.device("cpu"), amp, amp == "bf16")
                for amp in ("off", "bf16")}
        runs = {}
        for amp in ("off", "auto"):
            with tempfile.TemporaryDirectory() as out:
                cfg = TrainConfig(model=name, data="fashion-mnist", epochs=args.epochs, batch_size=args.batch_size,
                                  limit_train=args.limit_train, val_size=0, out=out, progress=False, amp=amp,
                                  channels_last=False if amp == "off" else None)
                lines: list[str] = []
                report = fit(cfg, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
                chosen = next((line for line in lines if line.startswith("amp auto:")), "amp off")
                runs[amp] = (report["images_per_s"], report["test_top1"], chosen)
        rows.append((name, bare, runs))
        print(f"\n{name}: {runs['auto'][2]}")
        print(f"  bare step    fp32 {bare['off']:8,.0f} img/s   bf16+cl {bare['bf16']:8,.0f} img/s   "
              f"({bare['bf16'] / bare['off']:.2f}x)")
        picked = "bf16" if "auto: bf16" in runs["auto"][2] else "off"
        print(f"  cnnzoo train fp32 {runs['off'][0]:8,.0f} img/s   auto    {runs['auto'][0]:8,.0f} img/s   "
              f"({runs['auto'][0] / runs['off'][0]:.2f}x)")
        print(f"  loop / bare step: fp32 {runs['off'][0] / bare['off']:.2f}, auto {runs['auto'][0] / bare[picked]:.2f}")
        print(f"  test top-1   fp32 {runs['off'][1]:.4f}   auto {runs['auto'][1]:.4f}   "
              f"({100 * (runs['auto'][1] - runs['off'][1]):+.2f} points)")


if __name__ == "__main__":
    main()
