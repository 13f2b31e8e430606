"""FCN-32s vs 16s vs 8s (ResNet-18 unless --seg-backbone), and a detector, on fashion-scenes 96 x 96: held-out mean IoU and mAP@0.5.

The issue's targets: FCN-8s mean IoU >= 0.70 on the held-out split within 15 minutes of CPU, and a detector
(MobileNet-v2 or ResNet-18 backbone) mAP@0.5 >= 0.70 within 20 minutes of CPU. The machine is shared, so
each run's process CPU time (``time.process_time``: every thread of this process) is measured beside its
wall time; the targets are read against the CPU time. The backbone starts from ImageNet weights where the
local cache has them (``cnnzoo weights resnet18``), else from scratch; the script says which.

In the same run: the baseline of the segmentation table is FCN-32s (the paper's finding is that the skips of
16s and 8s sharpen its coarse maps), and an all-background prediction gives the floor of mean IoU.

Run: ``python benchmarks/dense_prediction.py`` (``--data DIR`` to reuse scenes, ``--train N``, ``--epochs E``, ``--warmup-epochs W``,
``--heads fcn32s,fcn8s``, ``--seg-backbone B``, ``--input-scale S``, ``--det-epochs E``, ``--threads T``, ``--skip seg|det``); it writes
``results/dense-prediction.json`` and the pictures ``docs/images/dense-prediction-seg.png`` / ``-det.png``
(``--name`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def cached_imagenet(backbone: str) -> str | None:
    """``"imagenet"`` where the weights are on this machine already (no download is tried), else None."""
    from cnnzoo.pretrained import resolve
    from cnnzoo.registry import model_info

    spec = resolve(model_info(backbone), "imagenet")
    return "imagenet" if spec is not None and spec.cached() is not None else None


def measured(fn):
    """``fn()``'s result, wall seconds and process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def train_job(job: dict) -> dict:
    """One training run in its own process (``threads`` torch threads), with that process's wall and CPU time."""
    import torch

    from cnnzoo.dense.fit import DenseConfig, detection_task, fit_dense, segmentation_task

    warnings.simplefilter("ignore")
    torch.set_num_threads(job.pop("threads"))
    cfg = DenseConfig(**job)
    build = segmentation_task if cfg.task == "segmentation" else detection_task
    report, wall, cpu = measured(lambda: fit_dense(cfg, build, overwrite=True,
                                                   log=lambda *a: print(f"  [{cfg.head}]", *a, flush=True)))
    print(f"{cfg.head} done: wall {wall / 60:.1f} min, process CPU {cpu / 60:.1f} min", flush=True)
    return {**report, "wall_s": wall, "cpu_s": cpu}


def run_jobs(args: argparse.Namespace, data: Path, out: Path) -> list[dict]:
    """The segmentation heads and the detector, each a process of its own (``--jobs`` at once)."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = []
    if args.skip != "seg":
        weights = cached_imagenet(args.seg_backbone)
        print(f"segmentation backbone {args.seg_backbone}: {_source(weights)}")
        jobs += [dict(task="segmentation", backbone=args.seg_backbone, data=str(data), head=head, weights=weights,
                      epochs=args.epochs, batch_size=16, lr=args.lr, warmup_epochs=args.warmup_epochs,
                      limit_train=args.train,
                      input_scale=args.input_scale, out=str(out / f"seg-{head}"), device="cpu", seed=0,
                      threads=args.threads)
                 for head in args.heads.split(",")]
    if args.skip != "det":
        weights = cached_imagenet(args.det_backbone)
        print(f"detection backbone {args.det_backbone}: {_source(weights)}")
        jobs.append(dict(task="detection", backbone=args.det_backbone, data=str(data), head=args.detector,
                         weights=weights, epochs=args.det_epochs, batch_size=16, lr=args.det_lr,
                         limit_train=args.det_train, out=str(out / f"det-{args.detector}"), device="cpu", seed=0,
                         threads=args.threads))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        return list(pool.map(train_job, jobs))


def _source(weights: str | None) -> str:
    return "ImageNet weights (cached)" if weights else "from scratch (no ImageNet weights in the local cache)"


def background_floor(data: Path) -> dict:
    from cnnzoo.datasets.dense import load_voc_segmentation
    from cnnzoo.dense.metrics import confusion_matrix, segmentation_metrics

    val = load_voc_segmentation(data, "val")
    return segmentation_metrics(confusion_matrix(torch.zeros_like(val.masks), val.masks, val.num_classes))


def seg_picture(data: Path, out: Path, heads: list[str], path: Path, n: int = 4) -> None:
    """Rows: held-out image, its truth, then each head's prediction, as overlays."""
    from PIL import Image

    from cnnzoo.datasets.dense import load_voc_segmentation
    from cnnzoo.dense.fit import segment
    from cnnzoo.dense.segmentation import load_segmenter
    from cnnzoo.dense.visual import overlay

    val = load_voc_segmentation(data, "val")
    images = val.images[:n]
    columns = [[Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images],
               [overlay(im.permute(1, 2, 0).numpy(), m.numpy()) for im, m in zip(images, val.masks[:n])]]
    for head in heads:
        seg, meta = load_segmenter(out / f"seg-{head}" / "last.pt")
        pred = segment(seg, images, tuple(meta["mean"]), tuple(meta["std"]))
        columns.append([overlay(im.permute(1, 2, 0).numpy(), p.numpy().astype(np.uint8))
                        for im, p in zip(images, pred)])
    side = images.shape[-1]
    sheet = Image.new("RGB", (side * len(columns), side * n), "white")
    for c, col in enumerate(columns):
        for r, im in enumerate(col):
            sheet.paste(im, (c * side, r * side))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(path)


def det_picture(data: Path, run: Path, path: Path, n: int = 4) -> None:
    """Held-out scenes with the detector's boxes (score >= 0.5), class and score."""
    from PIL import Image

    from cnnzoo.datasets.dense import load_voc_detection
    from cnnzoo.dense.detection import load_detector
    from cnnzoo.dense.fit import detect
    from cnnzoo.dense.visual import draw_boxes

    val = load_voc_detection(data, "val")
    det, meta = load_detector(run / "last.pt")
    preds = detect(det, val.images[:n])
    pics = []
    for im, p in zip(val.images[:n], preds):
        keep = p["scores"] >= 0.5
        pics.append(draw_boxes(im.permute(1, 2, 0).numpy(), p["boxes"][keep].tolist(), p["labels"][keep].tolist(),
                               p["scores"][keep].tolist(), meta["classes"]))  # enlarged, so the labels are legible
    side = pics[0].width
    sheet = Image.new("RGB", (side * n, pics[0].height), "white")
    for k, pic in enumerate(pics):
        sheet.paste(pic, (k * side, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("runs/bench-scenes96"), help="fashion-scenes folder (made "
                                                                                  "if missing)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-dense"))
    p.add_argument("--scenes", type=int, default=2000, help="training scenes to generate where --data is missing "
                                                             "(scene i is the same whatever the count)")
    p.add_argument("--train", type=int, default=1500, help="training scenes the segmenters use")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-epochs", type=float, help="the segmenters' warm-up (default: segment train's, 1 epoch "
                                                        "or an eighth of the run; the rate rises over it, then falls)")
    p.add_argument("--heads", default="fcn32s,fcn16s,fcn8s")
    p.add_argument("--seg-backbone", default="resnet18", help="the segmenters' backbone (ImageNet weights where "
                                                              "cached, else from scratch)")
    p.add_argument("--input-scale", type=float, default=1.0, help="the segmenters' input_scale")
    p.add_argument("--det-epochs", type=int, default=6)
    p.add_argument("--det-train", type=int, default=1000, help="training scenes the detector uses")
    p.add_argument("--det-backbone", default="resnet18")
    p.add_argument("--detector", default="fasterrcnn")
    p.add_argument("--det-lr", type=float, default=1e-3)
    p.add_argument("--jobs", type=int, default=4, help="training runs at once, each a process of its own")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: no time lost spinning on a busy machine)")
    p.add_argument("--skip", choices=("seg", "det"), help="leave one part out")
    p.add_argument("--name", default="dense-prediction", help="results/NAME.json, docs/images/NAME-seg.png, ...")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    from cnnzoo.runtime import machine

    print(machine().line())
    print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; torch threads {args.threads}")
    if not (args.data / "labels.txt").is_file():
        from cnnzoo.datasets.scenes import SceneSpec, generate

        _, wall, cpu = measured(lambda: generate(args.data, args.scenes, 500, SceneSpec(size=96, seed=0)))
        print(f"generated fashion-scenes in {wall:.1f} s wall, {cpu:.1f} s CPU")
    made = len((args.data / "ImageSets/Segmentation/train.txt").read_text().split())
    if made < max(args.train, args.det_train):
        p.error(f"{args.data} holds {made} training scenes; give --scenes {max(args.train, args.det_train)} and a "
                "new --data folder")
    path = ROOT / f"results/{args.name}.json"
    results: dict = json.loads(path.read_text()) if path.is_file() else {}  # a part run alone keeps the other's
    results.update(machine=machine().line(), load_start=os.getloadavg())
    reports = run_jobs(args, args.data, args.out)
    seg = [r for r in reports if r["task"] == "segmentation"]
    det = [r for r in reports if r["task"] == "detection"]
    if seg:
        floor = background_floor(args.data)
        results["segmentation"] = seg
        results["background_floor"] = {k: floor[k] for k in ("mean_iou", "pixel_accuracy")}
        print("\n| head | held-out mean IoU | pixel accuracy | epochs x images | wall (min) | process CPU (min) |")
        print("|---|---|---|---|---|---|")
        for r in seg:
            print(f"| {r['head']} | {r['mean_iou']:.4f} | {r['pixel_accuracy']:.4f} | {r['epochs']} x "
                  f"{r['train_images']} | {r['wall_s'] / 60:.1f} | {r['cpu_s'] / 60:.1f} |")
        print(f"| all background (floor) | {floor['mean_iou']:.4f} | {floor['pixel_accuracy']:.4f} | | | |")
        by = {r["head"]: r for r in seg}
        if "fcn32s" in by and "fcn8s" in by:
            print(f"fcn8s / fcn32s mean IoU: {by['fcn8s']['mean_iou'] / by['fcn32s']['mean_iou']:.3f}")
        print("per-class IoU:", json.dumps({r["head"]: r["per_class_iou"] for r in seg}))
        seg_picture(args.data, args.out, [r["head"] for r in seg], ROOT / f"docs/images/{args.name}-seg.png")
    if det:
        results["detection"] = det
        for r in det:
            print(f"\n{r['head']} on {r['backbone']}: held-out mAP@0.5 {r['map_50']:.4f}, COCO mAP {r['map']:.4f}, "
                  f"mAP@0.75 {r['map_75']:.4f}; {r['epochs']} epochs x {r['train_images']} images; wall "
                  f"{r['wall_s'] / 60:.1f} min, process CPU {r['cpu_s'] / 60:.1f} min")
            det_picture(args.data, args.out / f"det-{r['head']}", ROOT / f"docs/images/{args.name}-det.png")
    results["load_end"] = os.getloadavg()
    print(f"load average at end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
