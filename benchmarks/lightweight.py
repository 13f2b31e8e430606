"""Lightweighting on Fashion-MNIST: pruning, distillation and int8, each figure beside its baseline from the same run.

One run of this script:

1. trains the original (``--model``, default ``resnet56_cifar`` with projection shortcuts, ``shortcut=B``: option A
   cannot be pruned) with its recipe for ``--epochs``;
2. prunes it with ``cnnzoo prune`` to ``--macs`` of its MACs in ``--steps`` rounds, each fine-tuned ``--prune-epochs``;
3. quantizes the pruned network with ``cnnzoo quantize`` (int8 ONNX, calibrated on training images);
4. for each seed of ``--seeds``, distils ``--student`` (default ``resnet20_cifar``) from the original with
   ``cnnzoo distill`` and trains the same student alone with the same recipe, budget and seed (augmentation off for
   both: the teacher's logits are cached once per image);
5. measures every file on the same test images (top-1) and the same engine (eager fp32; the int8 file in ONNX
   Runtime, the engine it is made for) at batch 1 and 64, and prints the table, the ratios against the original
   and the issue's targets beside the measured figures (met / not met; nothing is claimed unmeasured).

The issue's budget (full Fashion-MNIST, a recipe's full schedule, 3 seeds) needs hours of CPU; the defaults are
sized for a shared 2-core machine and every budget flag is printed: ``--limit-per-class`` training images per
class, ``--limit-test`` test images, ``--epochs``. Figures from a small budget are what they are: a drop or gain
under about 1 point on 1,000 test images is within one seed's noise.

Run: ``python benchmarks/lightweight.py --out runs/lightweight`` (``--resume`` continues an interrupted run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from cnnzoo.cli import main
from cnnzoo.runtime import machine
from cnnzoo.runtime.benchmark import Settings, benchmark_model

DATA_ROOT = "/usr/share/datasets/fashion-mnist"


def cnnzoo(*argv: str) -> None:
    print("$ cnnzoo " + " ".join(argv), flush=True)
    code = main(list(argv))
    if code:
        raise SystemExit(f"cnnzoo {argv[0]} failed with exit code {code}")


def latency(path: str, batches: list[int], int8: bool, repeats: int = 3) -> dict[int, float]:
    """ms per image at each batch size, eager fp32 (an int8 file: ONNX Runtime int8): the least of ``repeats``
    medians, so that a burst of the shared machine's load in one measurement does not make the figure."""
    settings = Settings(precision="int8" if int8 else "fp32", engine="onnxruntime" if int8 else "eager", budget_s=2.0)
    runs = [{r["batch"]: r["infer_img_ms"] for r in benchmark_model(path, batches, settings)} for _ in range(repeats)]
    return {b: min(run[b] for run in runs) for b in batches}


def top1(path: str, data_root: str) -> float:
    """Test top-1 on the test images of the file's own run (its config's --limit-test)."""
    from cnnzoo.training.evaluate import evaluate_checkpoints

    (r,) = evaluate_checkpoints([Path(path)], data="fashion-mnist", data_root=data_root, engine="eager",
                                precision="fp32" if not path.endswith(".onnx") else "auto")
    return r["top1"]


def main_() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/lightweight")
    p.add_argument("--data-root", default=DATA_ROOT)
    p.add_argument("--model", default="resnet56_cifar")
    p.add_argument("--student", default="resnet20_cifar")
    p.add_argument("--recipe", help="the original's and the students' recipe (default: each model's own); pruning "
                                     "fine-tunes with the original's")
    p.add_argument("--epochs", type=int, default=5, help="the original's and the students' epochs")
    p.add_argument("--prune-epochs", type=int, default=2, help="fine-tuning epochs after each pruning round")
    p.add_argument("--steps", type=int, default=1, help="pruning rounds")
    p.add_argument("--macs", type=float, default=0.5)
    p.add_argument("--limit-per-class", type=int, default=300, help="training images per class")
    p.add_argument("--limit-test", type=int, default=1000, help="test images")
    p.add_argument("--seeds", default="0", help="distillation seeds, comma-separated")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    budget = (f"budget: {args.limit_per_class} training images per class (val 10 %), {args.limit_test} test images, "
              f"{args.epochs} epochs (original and students), recipe {args.recipe or 'of each model'}, "
              f"pruning {args.steps} round(s) x {args.prune_epochs} "
              f"epochs to {args.macs:g} of the MACs; distillation seeds {seeds}")
    print(budget)
    print(machine().line())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    common = ["--data", "fashion-mnist", "--data-root", args.data_root]
    recipe = ["--recipe", args.recipe] if args.recipe else []
    original = out / "original"
    if not (original / "report.json").is_file():
        cnnzoo("train", args.model, *common, "--model-arg", "shortcut='B'", "--epochs", str(args.epochs),
               *recipe, "--limit-per-class", str(args.limit_per_class), "--val-size", str(args.limit_per_class),
               "--limit-test", str(args.limit_test), "--out", str(original), "--no-progress", "--precision", "fp32",
               *(["--resume"] if args.resume and (original / "last.pt").is_file() else []))
    pruned = out / "pruned"
    if not (pruned / "report.json").is_file():
        cnnzoo("prune", str(original / "best.pt"), "--macs", str(args.macs), "--steps", str(args.steps),
               "--epochs", str(args.prune_epochs), "--out", str(pruned),
               *(["--resume"] if args.resume and pruned.is_dir() else []))
    int8 = out / "pruned-int8.onnx"
    if not int8.is_file():
        cnnzoo("quantize", str(pruned / "best.pt"), "--max-drop", "100", "--test-limit", str(args.limit_test),
               "--out", str(int8))
    distilled = []
    for seed in seeds:
        folder = out / f"distill-seed{seed}"
        if not (folder / "report.json").is_file():
            cnnzoo("distill", "--teacher", str(original / "best.pt"), "--student", args.student, *common, *recipe,
                   "--epochs", str(args.epochs), "--seed", str(seed), "--out", str(folder),
                   *(["--resume"] if args.resume and folder.is_dir() else []))
        distilled.append(json.loads((folder / "report.json").read_text()))

    first = out / f"distill-seed{seeds[0]}"
    files = {"original": str(original / "best.pt"), "pruned": str(pruned / "best.pt"), "pruned int8": str(int8),
             f"{args.student} distilled (seed {seeds[0]})": str(first / "student" / "best.pt"),
             f"{args.student} alone (seed {seeds[0]})": str(first / "baseline" / "best.pt")}
    from cnnzoo.commands.summary import _analyse

    print(f"\nall files measured on the same {args.limit_test} test images; latency: ms per image, the least of 3 "
          "medians, eager fp32 (int8: onnxruntime int8); load average now "
          f"{os.getloadavg()[0]:.2f}")
    rows = {}
    for label, path in files.items():
        a = _analyse(path, None, "fp32")
        rows[label] = {"top1": top1(path, args.data_root), "macs": a.totals.macs,
                       "params": a.totals.params, "mb": os.path.getsize(path) / 1e6,
                       **{f"ms@{b}": v for b, v in latency(path, [1, 64], path.endswith(".onnx")).items()}}
    head = f"{'':34} {'top-1':>7} {'MACs':>12} {'params':>9} {'file MB':>8} {'ms/img@1':>9} {'ms/img@64':>9}"
    print(head)
    for label, r in rows.items():
        print(f"{label:34} {r['top1']:7.4f} {r['macs']:12,} {r['params']:9,} {r['mb']:8.3f} {r['ms@1']:9.3f} "
              f"{r['ms@64']:9.3f}")
    o, pr, q = rows["original"], rows["pruned"], rows["pruned int8"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("\nratios against the original (same run, same engine):")
    drop = 100 * (o["top1"] - pr["top1"])
    speed1, speed64 = o["ms@1"] / pr["ms@1"], o["ms@64"] / pr["ms@64"]
    print(f"  pruned: MACs {pr['macs'] / o['macs']:.1%} of the original, top-1 drop {drop:+.2f} points, "
          f"{speed1:.2f}x faster at batch 1, {speed64:.2f}x at 64 (eager fp32)")
    print(f"    target <= 50 % MACs, drop <= 0.5 point, >= 1.5x: MACs {verdict(pr['macs'] <= 0.5 * o['macs'])}, "
          f"drop {verdict(drop <= 0.5)}, speed {verdict(min(speed1, speed64) >= 1.5)}")
    qdrop = 100 * (o["top1"] - q["top1"])
    qs1, qs64 = o["ms@1"] / q["ms@1"], o["ms@64"] / q["ms@64"]
    print(f"  pruned + int8: file {q['mb'] / o['mb']:.3f} of the original's, top-1 drop {qdrop:+.2f} points, "
          f"{qs1:.2f}x faster at batch 1, {qs64:.2f}x at 64 than the original in eager fp32")
    print(f"    target file <= 1/8, >= 3x, drop <= 1 point: size {verdict(q['mb'] <= o['mb'] / 8)}, speed "
          f"{verdict(min(qs1, qs64) >= 3)}, drop {verdict(qdrop <= 1)}")
    gains = [100 * (d["student_top1"] - d["baseline_top1"]) for d in distilled]
    for d, g in zip(distilled, gains):
        print(f"  distilled {args.student} (seed {d['seed']}): {d['student_top1']:.4f} against "
              f"{d['baseline_top1']:.4f} alone: {g:+.2f} points (T {d['temperature']:g}, alpha {d['alpha']:g}, augmentation off for both)")
    mean = statistics.mean(gains)
    print(f"    target >= +0.3 point over the same student alone: mean {mean:+.2f} over {len(gains)} seed(s): "
          f"{verdict(mean >= 0.3)}" + ("" if len(gains) >= 3 else " (fewer than the 3 seeds a sub-point claim needs)"))
    print(f"\n{budget}\ntotal {time.perf_counter() - t0:.0f} s; load average at the end {os.getloadavg()[0]:.2f}; "
          f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main_()
