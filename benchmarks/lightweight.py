"""Lightweighting on Fashion-MNIST: pruning, int8, a pruned ImageNet model and distillation, each figure beside its
baseline from the same run; the issue's targets printed beside the measured figures (met / NOT met).

Three targets, each a chain of stages run with cnnzoo's own commands:

- ``prune``: ``original`` trains ``--model`` (default ``resnet56_cifar`` with projection shortcuts, ``shortcut=B``:
  option A cannot be pruned) with its recipe; ``pruned`` prunes it with ``cnnzoo prune`` to ``--macs`` of its MACs
  (channels in multiples of ``--round-to``), fine-tuned ``--prune-epochs`` per round; ``int8`` quantizes the pruned
  network with ``cnnzoo quantize``; ``measure`` measures the three files in one go: test top-1, MACs, parameters,
  file size and latency at batch 1 and 64 in eager fp32 and ONNX Runtime fp32 (the int8 file: ONNX Runtime int8).
- ``lite0``: ``efficientnet_lite0`` fine-tuned with ``cnnzoo finetune``'s defaults from ImageNet weights on
  ``--lite0-per-class`` images per class, pruned to ``--lite0-macs`` (30 % of the MACs removed) and measured.
- ``distill``: for each seed of ``--seeds``, ``cnnzoo distill`` teaches ``--student`` (default ``resnet20_cifar``)
  from the original (the same file the prune target starts from: trained once) and trains the same student alone
  with the same recipe, budget and seed.

**Resuming.** Every stage's result goes into ``OUT/results.json`` as soon as it is finished, with its time, the
machine and the load; a rerun with the same ``--out`` skips the finished stages (a measurement included: its
figures were taken together, baseline beside them, and stay together), and continues an interrupted training,
pruning or distillation from its checkpoints. The budget is stored there too: a rerun with another budget is
refused (give another ``--out``). ``--targets`` chooses which targets run, in order, e.g. ``--targets prune``
first on a tight machine.

**Budget.** The defaults are the issue's: all 60,000 training images, the recipe's epochs, the 10,000 test images,
3 distillation seeds. That is hours of CPU; ``--limit-per-class``, ``--epochs`` and ``--prune-epochs`` shrink it,
and every budget flag is printed. ``--threads`` sets torch's (and ONNX Runtime's) threads for the whole run.

Run: ``python benchmarks/lightweight.py --out runs/lightweight-full --threads 1 --targets prune,lite0,distill``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from cnnzoo.cli import main
from cnnzoo.runtime import machine
from cnnzoo.runtime.benchmark import Settings, benchmark_model

DATA_ROOT = "/usr/share/datasets/fashion-mnist"
TARGETS = ("prune", "lite0", "distill")


def cnnzoo(*argv: str) -> None:
    print("$ cnnzoo " + " ".join(argv), flush=True)
    code = main(list(argv))
    if code:
        raise SystemExit(f"cnnzoo {argv[0]} failed with exit code {code}")


def latency(path: str, batches: list[int], engine: str, precision: str, repeats: int = 3) -> dict[str, float]:
    """ms per image at each batch size (keyed by its text, as JSON keeps it): the least of ``repeats`` medians, so
    that a burst of a shared machine's load in one measurement does not make the figure."""
    settings = Settings(precision=precision, engine=engine, budget_s=2.0)
    runs = [{r["batch"]: r["infer_img_ms"] for r in benchmark_model(path, batches, settings)} for _ in range(repeats)]
    return {str(b): min(run[b] for run in runs) for b in batches}


def top1(path: str, data_root: str) -> float:
    """Test top-1 on the test images of the file's own run (its config's --limit-test), at fp32 in the fastest
    engine measured (an int8 file: at int8, in the engine it is made for)."""
    from cnnzoo.training.evaluate import evaluate_checkpoints

    (r,) = evaluate_checkpoints([Path(path)], data="fashion-mnist", data_root=data_root, engine="auto",
                                precision="fp32" if not path.endswith(".onnx") else "auto")
    return r["top1"]


def measure(files: dict[str, str], data_root: str, ort_fp32: bool = True) -> dict[str, dict[str, Any]]:
    """Every file on the same test images and, for speed, in the same engines, one after another in this run."""
    from cnnzoo.commands.summary import _analyse

    rows = {}
    for label, path in files.items():
        int8 = path.endswith(".onnx")
        a = _analyse(path, None, "fp32")
        row = {"path": path, "top1": top1(path, data_root), "macs": a.totals.macs, "params": a.totals.params,
               "mb": os.path.getsize(path) / 1e6}
        if int8:
            row["int8"] = latency(path, [1, 64], "onnxruntime", "int8")
        else:
            row["eager"] = latency(path, [1, 64], "eager", "fp32")
            if ort_fp32:
                row["onnxruntime"] = latency(path, [1, 64], "onnxruntime", "fp32")
        rows[label] = row
        print(f"  measured {label}: top-1 {row['top1']:.4f}, " + ", ".join(
            f"{engine} {ms['1']:.3f} / {ms['64']:.3f} ms per image at batch 1 / 64"
            for engine, ms in row.items() if engine in ("eager", "onnxruntime", "int8")), flush=True)
    return rows


class Results:
    """``OUT/results.json``: the budget and each finished stage's result, written atomically after each stage."""

    def __init__(self, path: Path, budget: dict[str, Any]) -> None:
        self.path = path
        saved = json.loads(path.read_text()) if path.is_file() else {"budget": budget, "stages": {}}
        if saved["budget"] != budget:
            differ = sorted(k for k in budget.keys() | saved["budget"].keys()
                            if budget.get(k) != saved["budget"].get(k))
            raise SystemExit(f"{path} holds a run with another budget ({', '.join(differ)} differ); give another "
                             "--out, or the same budget flags to continue it")
        self.data = saved

    def done(self, stage: str) -> dict[str, Any] | None:
        return self.data["stages"].get(stage)

    def run(self, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The stage's saved result, or ``work()``'s, saved with its time, the machine and the load."""
        if stage in self.data["stages"]:
            print(f"[{stage}] done before ({self.path})")
            return self.data["stages"][stage]
        print(f"\n[{stage}] starting at {time.strftime('%H:%M:%S')} UTC, load average {os.getloadavg()[0]:.2f}",
              flush=True)
        t0 = time.perf_counter()
        result = work()
        result.update(seconds=round(time.perf_counter() - t0, 1), machine=machine().line(),
                      load=round(os.getloadavg()[0], 2), finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        self.data["stages"][stage] = result
        from cnnzoo.training.outputs import write_json

        write_json(self.path, self.data)
        print(f"[{stage}] finished in {result['seconds']:.0f} s", flush=True)
        return result


def report_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


def resume_flag(folder: Path, marker: str = "") -> list[str]:
    """``--resume`` where an interrupted run left ``folder`` (holding ``marker``: a training run's last.pt)."""
    return ["--resume"] if (folder / marker).exists() and folder.is_dir() else []


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def against(label: str, row: dict[str, Any], base: dict[str, Any], engine: str, base_engine: str) -> dict[str, float]:
    """The drop and speed-ups of ``row`` against ``base``, printed; ``engine`` picks each one's latencies."""
    drop = 100 * (base["top1"] - row["top1"])
    s1, s64 = (base[base_engine][b] / row[engine][b] for b in ("1", "64"))
    print(f"  {label}: MACs {row['macs'] / base['macs']:.1%}, file {row['mb'] / base['mb']:.3f} of the original's, "
          f"top-1 drop {drop:+.2f} points; {s1:.2f}x faster at batch 1, {s64:.2f}x at 64 ({engine} against "
          f"{base_engine})")
    return {"drop": drop, "speed": min(s1, s64)}


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'':38} {'top-1':>7} {'MACs':>13} {'params':>9} {'file MB':>8}  ms per image at batch 1 / 64")
    for label, r in rows.items():
        speeds = "; ".join(f"{e} {r[e]['1']:.3f} / {r[e]['64']:.3f}" for e in ("eager", "onnxruntime", "int8") if e in r)
        print(f"{label:38} {r['top1']:7.4f} {r['macs']:13,} {r['params']:9,} {r['mb']:8.3f}  {speeds}")


def main_() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/lightweight")
    p.add_argument("--data-root", default=DATA_ROOT)
    p.add_argument("--targets", default=",".join(TARGETS), help=f"which targets to run, in order: {', '.join(TARGETS)}")
    p.add_argument("--threads", type=int, help="torch's and ONNX Runtime's threads (default: torch's own)")
    p.add_argument("--original", help="a run folder of --model trained before (another --out's original/, so that a "
                                       "second pruning budget starts from the same network; default: OUT/original, "
                                       "trained here)")
    p.add_argument("--model", default="resnet56_cifar")
    p.add_argument("--student", default="resnet20_cifar")
    p.add_argument("--recipe", help="the original's and the students' recipe (default: each model's own); pruning "
                                     "fine-tunes with the original's")
    p.add_argument("--epochs", type=int, help="the students' epochs, and the original's unless --original-epochs "
                                              "(default: the recipe's)")
    p.add_argument("--original-epochs", type=int, help="the original's (and a --teacher-label-smoothing teacher's) "
                                                       "epochs (default: --epochs)")
    p.add_argument("--teacher-label-smoothing", type=float,
                   help="distil from a teacher trained as the original but with this label smoothing (OUT/teacher; "
                        "default: the original, with its recipe's)")
    p.add_argument("--limit-per-class", type=int, help="training images per class (default: all)")
    p.add_argument("--limit-test", type=int, help="test images (default: all 10,000)")
    p.add_argument("--prune-epochs", type=int, default=2, help="fine-tuning epochs after each pruning round")
    p.add_argument("--steps", type=int, default=1, help="pruning rounds")
    p.add_argument("--macs", type=float, default=0.5)
    p.add_argument("--round-to", type=int, default=8, help="pruned channels in multiples of this (0: any width)")
    p.add_argument("--global-pruning", action="store_true", help="cnnzoo prune --global (channels ranked across "
                                                                  "all layers) for the prune target")
    p.add_argument("--prune-distill", action="store_true", help="cnnzoo prune --distill (fine-tuned on the "
                                                                 "unpruned network's soft labels), for every target")
    p.add_argument("--prune-sparsity-epochs", type=int, default=0, help="cnnzoo prune --sparsity-epochs (group-norm "
                   "sparsity training before the cut; every target)")
    p.add_argument("--prune-sparsity-reg", type=float, help="cnnzoo prune --sparsity-reg")
    p.add_argument("--lite0-per-class", type=int, default=1000)
    p.add_argument("--lite0-macs", type=float, default=0.7, help="the MACs the pruned Lite0 keeps (0.7: 30 %% pruned)")
    p.add_argument("--lite0-prune-epochs", type=int, default=1)
    p.add_argument("--lite0-image-size", type=int, help="the side Lite0 is fine-tuned and measured at (default: "
                   "finetune's, the weights' 224: about 6 images/s per core in training on an AVX2 CPU)")
    p.add_argument("--prune-seeds", default="0", help="seeds of the pruning target's fine-tuning, comma-separated: "
                   "the first is measured in full, the others for top-1 (pruned and int8), their drops summarised")
    p.add_argument("--seeds", default="0,1,2", help="distillation seeds, comma-separated")
    args = p.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if unknown := [t for t in targets if t not in TARGETS]:
        p.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    prune_seeds = [int(s) for s in args.prune_seeds.split(",")]
    budget = {k: getattr(args, k) for k in ("model", "student", "recipe", "epochs", "limit_per_class", "limit_test",
                                              "prune_epochs", "steps", "macs", "round_to", "lite0_per_class",
                                              "lite0_macs", "lite0_prune_epochs")}
    budget |= {k: getattr(args, k) for k in ("lite0_image_size", "prune_seeds", "original_epochs",
                                              "teacher_label_smoothing", "global_pruning",
                                              "prune_distill", "prune_sparsity_epochs", "prune_sparsity_reg")
               if getattr(args, k) not in (None, "0", False)}
    if args.original:
        budget["original"] = args.original
    budget_line = (f"budget: {args.limit_per_class or 'all'} training images per class, "
                   f"{args.limit_test or 'all 10,000'} test images, "
                   f"{args.original_epochs or args.epochs or 'the recipe'} epochs (original), "
                   f"{args.epochs or 'the recipe'} (students), recipe {args.recipe or 'of each model'}; pruning "
                   f"{args.steps} round(s) x "
                   f"{args.prune_epochs} epochs to {args.macs:g} of the MACs, channels in multiples of "
                   f"{args.round_to or 1}{', global' if args.global_pruning else ''}"
                   f"{', distilled from the original' if args.prune_distill else ''}"
                   + (f", after {args.prune_sparsity_epochs} epoch(s) of sparsity training"
                      if args.prune_sparsity_epochs else "")
                   + (f" at {args.prune_sparsity_reg:g}" if args.prune_sparsity_reg else "")
                   + f"; lite0 {args.lite0_per_class} "
                   f"per class, finetune's defaults, pruned to "
                   f"{args.lite0_macs:g} x {args.lite0_prune_epochs} epoch(s)"
                   f"{f' at {args.lite0_image_size} px' if args.lite0_image_size else ''}; pruning seeds "
                   f"{prune_seeds}; distillation seeds {seeds}"
                   + (f", teacher trained with label smoothing {args.teacher_label_smoothing:g}"
                      if args.teacher_label_smoothing is not None else ""))
    print(budget_line)
    print(machine().line())
    print(f"load average at start: {os.getloadavg()[0]:.2f}; targets {', '.join(targets)}", flush=True)
    results = Results(out / "results.json", budget)
    t0 = time.perf_counter()
    common = ["--data", "fashion-mnist", "--data-root", args.data_root]
    recipe = ["--recipe", args.recipe] if args.recipe else []
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    original_epochs = (["--epochs", str(args.original_epochs)] if args.original_epochs else epochs)
    limits = [*(["--limit-per-class", str(args.limit_per_class)] if args.limit_per_class else []),
              *(["--limit-test", str(args.limit_test)] if args.limit_test else [])]
    original = Path(args.original) if args.original else out / "original"

    teacher = out / "teacher" if args.teacher_label_smoothing is not None else original

    def train_original(folder: Path = original, *extra: str) -> dict[str, Any]:
        if (folder / "report.json").is_file():  # finished (--original): read, never trained again
            print(f"the original: {folder} (trained before)")
        else:
            cnnzoo("train", args.model, *common, "--model-arg", "shortcut='B'", *original_epochs, *recipe, *limits,
                   *extra, "--out", str(folder), "--no-progress", "--precision", "fp32",
                   *resume_flag(folder, "last.pt"))
        r = report_of(folder)
        return {k: r[k] for k in ("test_top1", "train_time_s", "images_per_s", "epochs")} | {
            "label_smoothing": r["config"]["label_smoothing"]}

    def prune(source: Path, folder: Path, macs: float, prune_epochs: int, seed: int | None = None) -> dict[str, Any]:
        cnnzoo("prune", str(source / "best.pt"), "--macs", str(macs), "--steps", str(args.steps),
               "--epochs", str(prune_epochs), *(["--round-to", str(args.round_to)] if args.round_to else []),
               *(["--seed", str(seed)] if seed is not None else []),
               *(["--global"] if args.global_pruning and folder.name.startswith("pruned") else []),
               *(["--distill"] if args.prune_distill else []),
               *(["--sparsity-epochs", str(args.prune_sparsity_epochs)] if args.prune_sparsity_epochs else []),
               *(["--sparsity-reg", str(args.prune_sparsity_reg)] if args.prune_sparsity_reg else []),
               "--out", str(folder), *resume_flag(folder))
        r = report_of(folder)
        keys = ("macs", "macs_original", "macs_fraction", "params", "test_top1", "rounds", "sparsity")
        return {k: r.get(k) for k in keys}

    for target in targets:
        if target == "prune" or (target == "distill" and teacher == original):
            results.run("original", train_original)
        if target == "distill" and teacher != original:
            results.run("teacher", lambda: train_original(teacher, "--label-smoothing",
                                                          str(args.teacher_label_smoothing)))
        if target == "prune":
            pruned, int8 = out / "pruned", out / "pruned-int8.onnx"
            results.run("pruned", lambda: prune(original, pruned, args.macs, args.prune_epochs, prune_seeds[0]))

            def quantize(pruned: Path = pruned, int8: Path = int8) -> dict[str, Any]:
                cnnzoo("quantize", str(pruned / "best.pt"), "--max-drop", "100",
                       *(["--test-limit", str(args.limit_test)] if args.limit_test else []), "--out", str(int8))
                return {"file": str(int8), "mb": os.path.getsize(int8) / 1e6}

            results.run("int8", quantize)
            results.run("measure", lambda: {"rows": measure(
                {"original": str(original / "best.pt"), "pruned": str(pruned / "best.pt"), "pruned int8": str(int8)},
                args.data_root)})
            for seed in prune_seeds[1:]:  # the same chain with another fine-tuning seed: top-1 only
                again, again8 = out / f"pruned-seed{seed}", out / f"pruned-seed{seed}-int8.onnx"
                results.run(f"pruned-seed{seed}", lambda a=again, s=seed: prune(original, a, args.macs,
                                                                                 args.prune_epochs, s))
                results.run(f"int8-seed{seed}", lambda a=again, a8=again8: quantize(a, a8))
                results.run(f"top1-seed{seed}", lambda a=again, a8=again8: {
                    "pruned": top1(str(a / "best.pt"), args.data_root), "pruned int8": top1(str(a8), args.data_root)})
        elif target == "lite0":
            lite0, lite0_pruned = out / "lite0", out / "lite0-pruned"

            def finetune() -> dict[str, Any]:
                cnnzoo("finetune", "efficientnet_lite0", "--weights", "imagenet", *common, "--limit-per-class",
                       str(args.lite0_per_class),
                       *(["--image-size", str(args.lite0_image_size)] if args.lite0_image_size else []), *(["--limit-test", str(args.limit_test)] if args.limit_test else []),
                       "--out", str(lite0), "--no-progress", "--precision", "fp32", *resume_flag(lite0, "last.pt"))
                r = report_of(lite0)
                return {k: r[k] for k in ("test_top1", "train_time_s", "images_per_s", "epochs")} | {
                    "strategy": r["config"]["strategy"]}

            results.run("lite0", finetune)
            results.run("lite0-pruned", lambda: prune(lite0, lite0_pruned, args.lite0_macs, args.lite0_prune_epochs))
            results.run("lite0-measure", lambda: {"rows": measure(
                {"lite0 fine-tuned": str(lite0 / "best.pt"), "lite0 pruned": str(lite0_pruned / "best.pt")},
                args.data_root)})
        else:
            for seed in seeds:
                folder = out / f"distill-seed{seed}"

                def distil(folder: Path = folder, seed: int = seed) -> dict[str, Any]:
                    cnnzoo("distill", "--teacher", str(teacher / "best.pt"), "--student", args.student, *common,
                           *recipe, *epochs, "--seed", str(seed), "--out", str(folder), *resume_flag(folder))
                    return report_of(folder)

                results.run(f"distill-seed{seed}", distil)

    print_summary(results, args, seeds, prune_seeds)
    print(f"\n{budget_line}\ntotal {time.perf_counter() - t0:.0f} s in this run; load average at the end "
          f"{os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}")


def measured(results: Results, stage: str, target: str, chain: str) -> dict[str, dict[str, Any]] | None:
    """The rows of the measuring ``stage``, printed as a table, or ``None`` (said so) where it has not run."""
    m = results.done(stage)
    if m is None:
        print(f"\n{target} target: not measured yet (stages {chain})")
        return None
    print_table(f"{target} target (measured together at {m['finished']}, load average {m['load']}; {m['machine']})",
                m["rows"])
    return m["rows"]


def print_summary(results: Results, args: argparse.Namespace, seeds: list[int], prune_seeds: list[int]) -> None:
    """Every finished target's figures and verdicts; a pending one is named as such."""
    print("\n" + "=" * 100)
    if rows := measured(results, "measure", "prune", "original, pruned, int8, measure"):
        o, pr, q = rows["original"], rows["pruned"], rows["pruned int8"]
        print("ratios against the original, same run:")
        eager = against("pruned", pr, o, "eager", "eager")
        ort = against("pruned", pr, o, "onnxruntime", "onnxruntime")
        print(f"    target <= 50 % MACs, drop <= 0.5 point, >= 1.5x at batch 1 and 64 in the same engine: MACs "
              f"{verdict(pr['macs'] <= 0.5 * o['macs'])}, drop {verdict(eager['drop'] <= 0.5)}, speed eager "
              f"{verdict(eager['speed'] >= 1.5)}, onnxruntime {verdict(ort['speed'] >= 1.5)}")
        stacked = against("pruned + int8", q, o, "int8", "eager")
        print(f"    target file <= 1/8, >= 3x the original in eager fp32, drop <= 1 point: size "
              f"{verdict(q['mb'] <= o['mb'] / 8)}, speed {verdict(stacked['speed'] >= 3)}, "
              f"drop {verdict(stacked['drop'] <= 1)}")
        seeded = [(prune_seeds[0], pr["top1"], q["top1"])] + [
            (s, d["pruned"], d["pruned int8"]) for s in prune_seeds[1:] if (d := results.done(f"top1-seed{s}"))]
        if len(seeded) > 1:
            print("  the drops for each fine-tuning seed (the original is one network):")
            for s, p1, q1 in seeded:
                print(f"    seed {s}: pruned {p1:.4f} (drop {100 * (o['top1'] - p1):+.2f}), pruned int8 {q1:.4f} "
                      f"(drop {100 * (o['top1'] - q1):+.2f})")
            for label, i, limit in (("pruned", 1, 0.5), ("pruned int8", 2, 1.0)):
                drops = [100 * (o["top1"] - row[i]) for row in seeded]
                print(f"    {label}: mean drop {statistics.mean(drops):+.2f}, standard deviation "
                      f"{statistics.stdev(drops):.2f} over {len(drops)} seeds (target <= {limit:g}): "
                      f"{verdict(statistics.mean(drops) <= limit)}")
    if rows := measured(results, "lite0-measure", "lite0", "lite0, lite0-pruned, lite0-measure"):
        for engine in ("eager", "onnxruntime"):
            against("lite0 pruned", rows["lite0 pruned"], rows["lite0 fine-tuned"], engine, engine)
    done = [d for s in seeds if (d := results.done(f"distill-seed{s}"))]
    if not done:
        print("\ndistill target: no seed finished yet")
        return
    taught = results.done("teacher" if args.teacher_label_smoothing is not None else "original") or {}
    print(f"\ndistill target: {args.student} taught by {args.model} (shortcut B"
          + (f"; {taught['epochs']} epochs, label smoothing {taught['label_smoothing']:g}, test top-1 "
             f"{taught['test_top1']:.4f}" if "label_smoothing" in taught else "")
          + "), against the same student alone")
    gains = [100 * (d["student_top1"] - d["baseline_top1"]) for d in done]
    for d, g in zip(done, gains):
        print(f"  seed {d['seed']}: distilled {d['student_top1']:.4f}, alone {d['baseline_top1']:.4f}: {g:+.2f} points "
              f"(T {d['temperature']:g}, alpha {d['alpha']:g}, {d['epochs']} epochs, augmentation off for both)")
    spread = f", standard deviation {statistics.stdev(gains):.2f}" if len(gains) > 1 else ""
    print(f"    target >= +0.3 point: mean {statistics.mean(gains):+.2f} over {len(gains)} seed(s){spread}: "
          f"{verdict(statistics.mean(gains) >= 0.3)}"
          + ("" if len(gains) >= 3 else " (fewer than the 3 seeds a sub-point claim needs)"))


if __name__ == "__main__":
    main_()
