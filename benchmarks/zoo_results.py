"""The results table: one row per architecture family, trained on Fashion-MNIST with its default recipe.

Every row is one ``cnnzoo train`` command, run as a user would run it and written into the CSV beside its
figures, so any row can be re-run by hand. The model's default recipe, a validation split of 5,000
training images choosing the best epoch, and the test set (all 10,000 images) touched once.

Two budgets:

- ``cpu``: the same training time for every row. Before training, a calibration epoch of the row's own
  command measures its training images/s on this machine; the row then sees ``--minutes`` x that many
  images: whole epochs of the training set where that is at least one, else one epoch over a balanced
  subset (``--limit-per-class``). Rows run one thread each (``--streams`` of them side by side on the
  machine's cores). The rows costing more than 0.7 GMACs per 28x28 image (GoogLeNet's CIFAR variant,
  WRN-16-8, WRN-28-10, ResNeXt-29, FractalNet) are GPU-only: four minutes of these two cores give them
  under 20 optimiser steps. GoogLeNet's CPU row is its ImageNet layout at 28 px, what ``cnnzoo train
  googlenet`` builds for Fashion-MNIST.
- ``full``: the recipes' schedules over ``--epochs`` (30) epochs of all the data, for a GPU.

It resumes: finished rows are kept in the CSV; an interrupted row continues from its checkpoint
(``cnnzoo train --resume``). It writes ``results/fashion-mnist-<budget>.csv``, ``.md`` (the table the README
shows) and ``.png`` (test top-1 against training time, bubble area = parameters).

    .venv/bin/python benchmarks/zoo_results.py                          # the CPU table, 2 streams
    .venv/bin/python benchmarks/zoo_results.py --models lenet5,resnet20_cifar --minutes 1
    python3 benchmarks/zoo_results.py --budget full --device cuda      # on a GPU machine
    .venv/bin/python benchmarks/zoo_results.py --table-only             # rewrite .md and .png from the CSV
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import math
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 60_000
VAL_SIZE = 5_000
CLASSES = 10


@dataclass(frozen=True)
class Row:
    label: str
    model: str
    flags: tuple[str, ...] = ()
    public: tuple[str, float] | None = None  # the Fashion-MNIST README's row (shared/REFERENCE.md)
    gpu_only: bool = False


ROWS = [
    Row("LeNet-5", "lenet5", public=("2 conv + pooling", 0.916)),
    Row("AlexNet 2012", "alexnet2012", public=("AlexNet (triplet loss)", 0.899)),
    Row("AlexNet (torchvision's) at 64 px", "alexnet", ("--image-size", "64"), public=("AlexNet (triplet loss)", 0.899)),
    Row("ZFNet", "zfnet"),
    Row("VGG-11", "vgg11"),
    Row("VGG-11 BN", "vgg11_bn"),
    Row("VGG-16", "vgg16", public=("VGG16", 0.935)),
    Row("VGG-16 BN", "vgg16_bn", public=("VGG16", 0.935)),
    Row("NiN", "nin"),
    Row("GoogLeNet (aux heads), ImageNet layout at 28 px", "googlenet", public=("GoogLeNet", 0.937)),
    Row("GoogLeNet (aux heads), CIFAR variant", "googlenet_cifar", public=("GoogLeNet", 0.937), gpu_only=True),
    Row("BN-Inception", "inception_v2"),
    Row("ResNet-20", "resnet20_cifar"),
    Row("ResNet-56", "resnet56_cifar"),
    Row("ResNet-110", "resnet110_cifar"),
    Row("ResNet-110, stochastic depth", "resnet110_sd_cifar"),
    Row("Pre-act ResNet-164", "preact_resnet164_cifar"),
    Row("ResNet-18", "resnet18_cifar", public=("ResNet18", 0.949)),
    Row("WRN-16-8", "wrn16_8_cifar", gpu_only=True),
    Row("WRN-28-10", "wrn28_10_cifar", public=("WRN-28-10", 0.959), gpu_only=True),
    Row("ResNeXt-29 8x64d", "resnext29_8x64d", gpu_only=True),
    Row("DenseNet-BC-100 (k=12)", "densenet_bc_100_12_cifar", public=("DenseNet-BC 768K", 0.954)),
    Row("FractalNet-20", "fractalnet20_cifar", gpu_only=True),
    Row("SqueezeNet 1.0", "squeezenet1_0", public=("SqueezeNet", 0.900)),
    Row("MobileNet v1", "mobilenet_v1_cifar", public=("MobileNet", 0.950)),
    Row("MobileNet v2", "mobilenet_v2_cifar"),
    Row("EfficientNet-Lite0", "efficientnet_lite0_cifar"),
]

FIELDS = ["model", "label", "trained", "params", "gmacs", "input", "recipe", "amp", "epochs", "train_images",
          "images_seen", "batch", "calibrated_images_per_s", "device", "device_name", "threads", "wall_s", "train_s", "train_images_per_s",
          "best_val_top1", "test_top1", "test_top5", "test_images", "public_row", "public_top1", "command"]


def cnnzoo_cmd(device: str) -> list[str]:
    """How this machine runs cnnzoo: the venv's entry point, else the source tree (a GPU machine's python)."""
    exe = ROOT / ".venv" / "bin" / "cnnzoo"
    return [str(exe)] if exe.exists() and device != "cuda" else [sys.executable, "-m", "cnnzoo"]


def env_for(threads: int | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def train(args: list[str], out: Path, device: str, threads: int | None, resume: bool = False) -> dict:
    """Run ``cnnzoo train ARGS --out OUT`` and return its report.json."""
    cmd = [*cnnzoo_cmd(device), "train", *args, "--out", str(out), "--no-progress", "--device", device]
    if resume:
        cmd.append("--resume")
    log = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env_for(threads), cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}; see {log}")
    return json.loads((out / "report.json").read_text())


def calibrate(row: Row, work: Path, device: str, threads: int | None) -> float:
    """Training images/s of the row's own command: an epoch of 8 batches, then one of about 10 s."""
    batch, rate, n = None, None, 0
    for attempt in range(2):
        if batch is None:
            n = 8 * 256
        out = work / f"calibrate{attempt}"
        report = train([row.model, *row.flags, "--epochs", "1", "--limit-train", str(n), "--val-size", "0",
                        "--limit-test", "256"], out, device, threads)
        batch, rate = report["config"]["batch_size"], report["images_per_s"]
        if report["train_time_s"] >= 5:
            break
        n = min(TRAIN_IMAGES, max(8 * batch, int(rate * 10)))
    return rate


def plan(row: Row, rate: float, minutes: float, budget: str, epochs: int) -> list[str]:
    """The row's ``cnnzoo train`` arguments under the budget.

    Training keeps every default (``--amp auto`` included); the test pass runs at fp32 so that the table's
    figures are exact (``--precision auto`` may test in bf16)."""
    args = [row.model, *row.flags, "--precision", "fp32"]
    if budget == "full":
        return [*args, "--val-size", str(VAL_SIZE), "--epochs", str(epochs)]
    images = rate * minutes * 60
    whole = images / (TRAIN_IMAGES - VAL_SIZE)
    if whole >= 1:
        return [*args, "--val-size", str(VAL_SIZE), "--epochs", str(min(epochs, int(whole)))]
    # Fewer images than one epoch: one epoch over a balanced subset, a fifth of it (at most 5,000) held out.
    val = min(VAL_SIZE, int(images / 4))
    return [*args, "--val-size", str(val), "--epochs", "1", "--limit-per-class", str(int((images + val) / CLASSES))]


def model_cost(model: str, flags: tuple[str, ...]) -> tuple[str, int, float, int]:
    """(the model that trains, input side, GMACs per image at that side, parameters) for 28x28 grey data."""
    import cnnzoo
    from cnnzoo.analysis import analyze
    from cnnzoo.training.config import TrainConfig
    from cnnzoo.training.trainer import resolve_model

    size = int(flags[flags.index("--image-size") + 1]) if "--image-size" in flags else None
    data = SimpleNamespace(image_shape=(1, 28, 28), mean=(0.0,), std=(1.0,))
    name, pipeline = resolve_model(TrainConfig(model=model, image_size=size), data)
    side = pipeline.size or 28
    net = cnnzoo.create_model(name, num_classes=CLASSES, in_chans=1)
    params = sum(p.numel() for p in net.parameters())
    return name, side, analyze(net, (1, side, side)).totals.macs / 1e9, params


class Table:
    """The CSV of finished rows, shared by the streams (a lock around each read-modify-write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = path.with_suffix(".lock")

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def add(self, row: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = [r for r in self.rows() if r["model"] != row["model"]] + [row]
            order = {r.model: i for i, r in enumerate(ROWS)}
            rows.sort(key=lambda r: order.get(r["model"], len(order)))
            tmp = self.path.with_suffix(".csv.tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            os.replace(tmp, self.path)
            write_outputs(self.path, rows)


def make_plan(row: Row, opts: argparse.Namespace) -> str:
    """Calibrate the row and fix its command in plan.json (kept: an interrupted row resumes the same command).

    Every row is calibrated before any trains, so what the machine does during the long training phase
    changes the rows' wall times, not what they train on."""
    work = opts.runs / row.model
    work.mkdir(parents=True, exist_ok=True)
    plan_file = work / "plan.json"
    if not plan_file.exists():
        rate = calibrate(row, work, opts.device, opts.threads) if opts.budget == "cpu" else 0.0
        args = plan(row, rate, opts.minutes, opts.budget, opts.epochs)
        tmp = plan_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"args": args, "rate": rate}))
        os.replace(tmp, plan_file)
    saved = json.loads(plan_file.read_text())
    rate = f"{saved['rate']:.0f} images/s" if saved["rate"] else "the recipe's schedule"
    return f"{row.model}: {rate} -> cnnzoo train {' '.join(saved['args'])}"


def run_row(row: Row, opts: argparse.Namespace, table: Table) -> str:
    work = opts.runs / row.model
    saved = json.loads((work / "plan.json").read_text())
    args, rate = saved["args"], saved["rate"]
    out = work / "run"
    started = time.perf_counter()
    report = train(args, out, opts.device, opts.threads, resume=(out / "last.pt").exists())
    wall = time.perf_counter() - started
    name, side, gmacs, params = model_cost(row.model, row.flags)
    cfg = report["config"]
    train_images = (cfg.get("limit_per_class") or TRAIN_IMAGES // CLASSES) * CLASSES - cfg["val_size"]
    command = " ".join(shlex.quote(a) for a in ["cnnzoo", "train", *args])
    table.add({
        "model": row.model, "label": row.label, "trained": name, "params": params, "gmacs": f"{gmacs:.4f}",
        "input": f"1x{side}x{side}", "recipe": cfg["recipe"],
        "amp": cfg["amp"] + (" + channels_last" if cfg.get("channels_last") else ""), "epochs": report["epochs"],
        "train_images": train_images, "images_seen": train_images * report["epochs"],
        "batch": cfg["batch_size"], "calibrated_images_per_s": f"{rate:.0f}", "device": report["device"], "device_name": device_name(opts.device),
        "threads": opts.threads or "", "wall_s": f"{wall:.0f}", "train_s": f"{report['train_time_s']:.0f}",
        "train_images_per_s": f"{report['images_per_s']:.0f}", "best_val_top1": f"{report['best_val_acc']:.4f}",
        "test_top1": f"{report['test_top1']:.4f}", "test_top5": f"{report['test_top5']:.4f}",
        "test_images": 10_000, "public_row": row.public[0] if row.public else "",
        "public_top1": row.public[1] if row.public else "", "command": command,
    })
    return f"{row.model}: test top-1 {report['test_top1']:.4f} after {report['epochs']} epoch(s), {wall:.0f} s"


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return f"{names[0] if names else 'CPU'} ({os.cpu_count()} cores)"


def write_outputs(csv_path: Path, rows: list[dict]) -> None:
    """The markdown table and the plot beside the CSV."""
    lines = ["| model | trained as | params | GMACs | recipe | amp | epochs x images | train time | images/s | "
             "val top-1 | test top-1 | top-5 | public row |",
             "| --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    by_model = {r["model"]: r for r in rows}
    for spec in ROWS:
        r = by_model.get(spec.model)
        public = f"{spec.public[0]} {spec.public[1]:.3f}" if spec.public else ""
        if r is None:
            why = "GPU only" if spec.gpu_only and "cpu" in csv_path.name else "not run"
            lines.append(f"| {spec.label} | {spec.model} | | | | | | | | | {why} | | {public} |")
            continue
        lines.append(
            f"| {r['label']} | {r['trained']} | {int(r['params']) / 1e6:.2f}M | {float(r['gmacs']):.4g} | "
            f"{r['recipe']} | {r.get('amp') or 'off'} | {r['epochs']} x {int(r['train_images']):,} | {int(r['train_s']) / 60:.1f} min | "
            f"{r['train_images_per_s']} | {float(r['best_val_top1']):.3f} | **{float(r['test_top1']):.3f}** | "
            f"{float(r['test_top5']):.3f} | {public} |")
    tmp = csv_path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, csv_path.with_suffix(".md"))
    plot(csv_path.with_suffix(".png"), rows)


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for r in rows:
        x, y, params = int(r["train_s"]) / 60, float(r["test_top1"]), int(r["params"])
        ax.scatter(x, y, s=20 + 600 * math.sqrt(params / 20e6), alpha=0.45)
        ax.annotate(r["label"], (x, y), fontsize=7, xytext=(4, 2), textcoords="offset points")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("Fashion-MNIST test top-1")
    ax.set_title(f"cnnzoo on Fashion-MNIST, default recipes ({path.stem}); bubble area ~ parameters")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", choices=("cpu", "full"), default="cpu")
    ap.add_argument("--minutes", type=float, default=4.0, help="cpu budget: training minutes per row (default 4)")
    ap.add_argument("--epochs", type=int, default=30, help="full budget: epochs; cpu budget: the most epochs")
    ap.add_argument("--models", help="comma-separated model names (default: every row of the budget)")
    ap.add_argument("--streams", type=int, default=2, help="rows trained side by side (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="threads per row; 0: torch's default (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--name", help="the table's file name, without suffix (default fashion-mnist-BUDGET)")
    ap.add_argument("--runs", type=Path, help="run folders (default runs/results-NAME)")
    ap.add_argument("--table-only", action="store_true", help="rewrite the .md and .png from the CSV and exit")
    opts = ap.parse_args()
    name = opts.name or f"fashion-mnist-{opts.budget}"
    opts.runs = opts.runs or ROOT / "runs" / f"results-{name}"
    table = Table(opts.out / f"{name}.csv")
    if opts.table_only:
        write_outputs(table.path, table.rows())
        return
    wanted = opts.models.split(",") if opts.models else None
    known = {r.model for r in ROWS}
    for name in wanted or []:
        if name not in known:
            ap.error(f"{name} is not a row of the table; rows: {', '.join(sorted(known))}")
    done = {r["model"] for r in table.rows()}
    todo = [r for r in ROWS if (wanted is None or r.model in wanted) and r.model not in done
            and not (r.gpu_only and opts.budget == "cpu" and wanted is None)]
    print(f"{len(todo)} rows to train ({len(done)} already in {table.path}), {opts.streams} at a time", flush=True)
    with ThreadPoolExecutor(opts.streams) as pool:
        for line in pool.map(lambda r: _safe(make_plan, r, opts), todo):
            print(line, flush=True)
        for line in pool.map(lambda r: _safe(run_row, r, opts, table), todo):
            print(line, flush=True)


def _safe(fn, row: Row, *args) -> str:
    try:
        return fn(row, *args)
    except Exception as exc:  # one failed row does not stop the others; its log says why
        return f"{row.model}: FAILED: {exc}"


if __name__ == "__main__":
    main()
