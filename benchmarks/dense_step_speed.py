"""The cost of an FCN training step on fashion-scenes' 96-px images: input scale and memory layout, in one run.

For each ``BACKBONE:SCALE`` (``--cases``), one training step (AdamW, batch ``--batch-size``, per-pixel
cross-entropy at 96 x 96) of FCN-8s is timed in the layout PyTorch gives by default (NCHW) and channels-last
(NHWC, ``cnnzoo segment train``'s default), alternating, the fastest of ``--steps`` after a warm-up, as process
CPU time per image on ``--threads`` threads. It prints both and the ratio NCHW / NHWC, and the machine's
capability line.

    .venv/bin/python benchmarks/dense_step_speed.py [--cases efficientnet_lite0:1,efficientnet_lite0:1.5,resnet18:1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F


def step_fn(backbone: str, scale: float, channels_last: bool, batch: int):
    """One training step of FCN-8s on ``backbone`` at ``scale``, on a fixed random batch of 96 x 96 scenes."""
    from cnnzoo.dense.segmentation import create_segmenter

    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = create_segmenter(backbone, 11, "fcn8s", input_scale=scale, in_chans=3).train().to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, 96, 96).contiguous(memory_format=layout)
    y = torch.randint(0, 11, (batch, 96, 96))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="efficientnet_lite0:1,efficientnet_lite0:1.5,resnet18:1")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    from cnnzoo.runtime import machine

    print(machine().line())
    print("| backbone | input scale | NCHW (ms/img CPU) | NHWC (ms/img CPU) | NCHW / NHWC |")
    print("|---|---|---|---|---|")
    for case in args.cases.split(","):
        backbone, scale = case.split(":")
        steps = {cl: step_fn(backbone, float(scale), cl, args.batch_size) for cl in (False, True)}
        best = dict.fromkeys(steps, float("inf"))
        for step in steps.values():
            step()
        for _ in range(args.steps):
            for cl, step in steps.items():
                t = time.process_time()
                step()
                best[cl] = min(best[cl], time.process_time() - t)
        ms = {cl: 1000 * t / args.batch_size for cl, t in best.items()}
        print(f"| {backbone} | {scale} | {ms[False]:.1f} | {ms[True]:.1f} | {ms[False] / ms[True]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
