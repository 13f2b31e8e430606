"""Fine-tuning with the defaults, side by side: cnnzoo's strategies, the logistic-regression probe and fastai.

Pretrained weights (EfficientNet-Lite0 ImageNet by default) -> Fashion-MNIST at a few sizes (images per
class). Every cnnzoo row is ``cnnzoo finetune MODEL --weights W --data fashion-mnist --limit-per-class N
[--strategy S]`` with nothing else set — the command's own defaults, run through the CLI's config
resolution — and its time is the whole run (weights, data, the frozen part's pass, training, the test
pass). The fastai row trains the same cnnzoo model from the same weights on the same images, the same
validation split and the same preprocessing with ``Learner.fine_tune`` and its defaults.

Rows are appended to a CSV as they finish and skipped when the script runs again, so a long table is
built in parts. The test set can be cut to its first images (``--test-limit``) for the strategy table;
``--test-limit 0`` keeps all 10,000.

    python benchmarks/transfer_defaults.py --per-class 10,100,1000 --test-limit 2000
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import torch

FIELDS = ["model", "per_class", "run", "strategy", "test_images", "test_top1", "best_val", "seconds", "command"]
# Runs that train through the network (auto picks top:K or full on these data): on a CPU, small sizes only.
HEAVY = ("auto", "top", "full", "fastai")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--weights", default="imagenet")
    p.add_argument("--per-class", default="10,100,1000")
    p.add_argument("--runs", default="linear,logreg,auto,top:2,full,fastai")
    p.add_argument("--heavy-max", type=int, default=100, help="top:K, full and fastai only up to this size")
    p.add_argument("--test-limit", type=int, default=2000, help="first N test images (0: all 10,000)")
    p.add_argument("--fastai-epochs", type=int, default=3, help="Learner.fine_tune(epochs); every other argument default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/transfer-defaults.csv")
    args = p.parse_args()

    out = Path(args.out)
    done = _done(out)
    for n in (int(v) for v in args.per_class.split(",")):
        for run in args.runs.split(","):
            key = (args.model, str(n), run)
            if key in done:
                continue
            if run.split(":")[0] in HEAVY and n > args.heavy_max:
                continue
            row = _run(args, n, run)
            if row is None:
                continue
            _append(out, row)
            done[key] = row
            print(f"{args.model} {n:>5}/class {run:<8} -> {row['strategy']:<7} test {float(row['test_top1']):.4f}  "
                  f"{float(row['seconds']):7.1f} s", flush=True)
    _table(done, args.model)


def _argv(args: argparse.Namespace, n: int, strategy: str | None, out: str) -> list[str]:
    argv = ["finetune", args.model, "--weights", args.weights, "--data", "fashion-mnist", "--limit-per-class", str(n),
            "--no-progress", "--out", out]
    if strategy:
        argv += ["--strategy", strategy]
    if args.test_limit:
        argv += ["--limit-test", str(args.test_limit)]
    if args.seed:
        argv += ["--seed", str(args.seed)]
    return argv


def _run(args: argparse.Namespace, n: int, run: str) -> dict | None:
    from cnnzoo.cli import build_parser
    from cnnzoo.commands.finetune import finetune_config
    from cnnzoo.training.fit import fit
    from cnnzoo.training.linear_probe import linear_probe

    tmp = tempfile.mkdtemp(prefix=f"transfer-{run.replace(':', '')}-")
    strategy = {"auto": None, "logreg": "linear", "fastai": None}.get(run, run)
    argv = _argv(args, n, strategy, tmp) + (["--solver", "logreg"] if run == "logreg" else [])
    cfg = finetune_config(build_parser().parse_args(argv))
    t0 = time.perf_counter()
    if run == "fastai":
        top1, best_val = _fastai(cfg, args.fastai_epochs)
        report = {"test_top1": top1, "best_val_acc": best_val, "config": {"strategy": f"fine_tune({args.fastai_epochs})"}}
        command = f"fastai Learner.fine_tune({args.fastai_epochs}) on the same model, weights, images and split"
    else:
        report = (linear_probe if run == "logreg" else fit)(cfg, log=lambda *a, **k: None)
        command = "cnnzoo " + " ".join(a for a in argv if a not in (tmp, "--out"))
    seconds = time.perf_counter() - t0
    return {"model": args.model, "per_class": n, "run": run, "strategy": report["config"]["strategy"],
            "test_images": args.test_limit or 10000, "test_top1": f"{report['test_top1']:.4f}",
            "best_val": f"{report.get('best_val_acc') or float('nan'):.4f}", "seconds": f"{seconds:.1f}",
            "command": command}


def _fastai(cfg, epochs: int) -> tuple[float, float]:
    """fastai's fine_tune on cnnzoo's model, weights, pipeline, images and validation split."""
    import fastai.callback.progress  # noqa: F401 - adds Learner.no_bar
    import fastai.callback.schedule  # noqa: F401 - adds Learner.fine_tune
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from torch import nn
    from torch.utils.data import DataLoader

    from cnnzoo.training.fit import load_pretrained, prepare_data
    from cnnzoo.training.trainer import split_validation

    torch.manual_seed(cfg.seed)
    data = prepare_data(cfg)
    model, pipeline = load_pretrained(cfg, data)
    model.reset_classifier(data.num_classes)
    n = len(data.train_labels)
    train_idx, val_idx = split_validation(n, min(cfg.val_size, n // 5), cfg.seed)

    def loader(images, labels, idx, shuffle):
        collate = lambda batch: (pipeline(images[torch.tensor(batch)]), labels[torch.tensor(batch)])  # noqa: E731
        return DataLoader(idx.tolist(), batch_size=64, shuffle=shuffle, collate_fn=collate)

    dls = DataLoaders(loader(data.train_images, data.train_labels, train_idx, True),
                      loader(data.train_images, data.train_labels, val_idx, False))
    classifier = list(model.get_classifier().parameters())
    ids = {id(q) for q in classifier}
    body = [q for q in model.parameters() if id(q) not in ids]
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy, splitter=lambda m: [body, classifier])
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
        best_val = float(learn.validate()[1])
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(pipeline(data.test_images[i:i + 128])).argmax(1)
                          for i in range(0, len(data.test_images), 128)])
    return (pred == data.test_labels).float().mean().item(), best_val


def _done(path: Path) -> dict:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {(r["model"], r["per_class"], r["run"]): r for r in csv.DictReader(f)}


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: row[k] for k in FIELDS})
        f.flush()
        os.fsync(f.fileno())


def _table(rows: dict, model: str) -> None:
    sizes = sorted({int(k[1]) for k in rows if k[0] == model})
    print(f"\n{model} ImageNet -> Fashion-MNIST, defaults only; test top-1 (seconds, whole run)")
    print("| run | " + " | ".join(f"{s}/class" for s in sizes) + " |")
    print("| --- |" + " --- |" * len(sizes))
    runs = list(dict.fromkeys(k[2] for k in rows if k[0] == model))
    for run in runs:
        cells = []
        for s in sizes:
            r = rows.get((model, str(s), run))
            cells.append("—" if r is None else f"{float(r['test_top1']):.4f} ({float(r['seconds']):.0f} s"
                         + (f", {r['strategy']}" if run == "auto" else "") + ")")
        print(f"| {run} | " + " | ".join(cells) + " |")
    for s in sizes:
        get = lambda run: rows.get((model, str(s), run))  # noqa: E731
        lin, probe, fa = get("linear"), get("logreg"), get("fastai")
        if lin and probe:
            print(f"{s}/class: linear - logreg = {100 * (float(lin['test_top1']) - float(probe['test_top1'])):+.1f} points")
        if fa:
            best = max((r for r in (get(k) for k in ("linear", "auto", "top:2", "full")) if r),
                       key=lambda r: float(r["test_top1"]), default=None)
            auto = get("auto")
            for name, r in (("auto", auto), ("best cnnzoo", best)):
                if r:
                    print(f"{s}/class: {name} ({r['run']}) vs fastai: {float(r['test_top1']):.4f} vs "
                          f"{float(fa['test_top1']):.4f}, time ratio fastai/cnnzoo "
                          f"{float(fa['seconds']) / float(r['seconds']):.2f}x")


if __name__ == "__main__":
    main()
