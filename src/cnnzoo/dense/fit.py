"""Training FCN segmenters and detectors: one config, run folders and checkpoints as ``cnnzoo train``'s.

A run writes its folder (``runs/BACKBONE-HEAD-DATA``, then ``-2``, ... without ``--out``; a folder holding a
run is refused unless ``--resume`` or ``--overwrite``, and locked while the run writes it, as
:mod:`cnnzoo.training.runfolder` does for classifiers): ``config.json``, ``last.pt`` after every epoch
(model, optimiser, schedule, data order and history: a resumed run ends with the same weights),
``metrics.csv`` and, at the end, ``report.json`` with the final weights' figures on the held-out split
(never the best epoch's: picking it on the split it is reported on would flatter it).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import CnnzooError
from ..training import runfolder
from ..training.augment import BatchPipeline
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.outputs import write_csv, write_json
from ..training.trainer import build_optimizer, lr_factor, optimise, pick_device
from .config import DenseConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_base(cfg: DenseConfig) -> Path:
    return runfolder.default_base(f"{cfg.backbone}-{cfg.head}", Path(cfg.data.rstrip("/")).stem or "data")


def continue_command(cfg: DenseConfig, out: Path) -> str:
    command = "segment" if cfg.task == "segmentation" else "detect"
    return (f"cnnzoo {command} train {cfg.backbone} --data {shlex.quote(cfg.data)} --out {shlex.quote(str(out))} "
            f"--epochs {cfg.epochs} --resume")


def flip_pairs(images: Tensor, masks: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each image and its mask mirrored left-right together, with probability 1/2."""
    flip = torch.rand(len(images), generator=g) < 0.5
    images, masks = images.clone(), masks.clone()
    images[flip] = images[flip].flip(-1)
    masks[flip] = masks[flip].flip(-1)
    return images, masks


def channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float() / 255
    return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist())


@dataclass
class Task:
    """What differs between segmentation and detection: data, model, one step's loss, evaluation."""

    train: Any
    val: Any
    model: nn.Module
    meta: dict[str, Any]
    model_config: dict[str, Any]
    step: Callable[[nn.Module, Tensor, torch.Generator], Tensor]
    evaluate: Callable[[nn.Module], dict[str, Any]]
    summary: Callable[[dict[str, Any]], str]


def fit_dense(cfg: DenseConfig, build: Callable[[DenseConfig, torch.device], Task], resume: bool = False,
              overwrite: bool = False, log: Any = print) -> dict[str, Any]:
    """Train what ``build`` makes for ``cfg``; returns the report (also ``report.json`` in the run folder)."""
    cfg.check()
    if cfg.warmup_epochs is None:
        cfg = dataclasses.replace(cfg, warmup_epochs=min(1.0, cfg.epochs / 8))
    device = pick_device(cfg.device)
    claim = runfolder.claim(cfg.out, default_base(cfg), resume, overwrite)
    cfg = dataclasses.replace(cfg, out=str(claim.out))
    out = claim.out
    try:
        ckpt = load_checkpoint(out / "last.pt") if resume else None
        if ckpt is not None:
            saved = DenseConfig(**{**ckpt["config"], "epochs": cfg.epochs, "out": cfg.out, "device": cfg.device})
            saved.augment, saved.milestones = tuple(saved.augment), tuple(saved.milestones)
            cfg = saved
        torch.manual_seed(cfg.seed)
        task = build(cfg, device)
        model = task.model.to(device)
        n = len(task.train.images)
        steps_per_epoch = max(1, -(-n // cfg.batch_size))
        optimizer = build_optimizer(cfg, model)  # type: ignore[arg-type]
        factor = lr_factor(cfg, steps_per_epoch)  # type: ignore[arg-type]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)  # type: ignore[arg-type]
        history: list[dict[str, Any]] = []
        first = 1
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            history, first = ckpt["history"], ckpt["epoch"] + 1
            log(f"resuming {out} at epoch {first} of {cfg.epochs}")
        else:
            write_json(out / "config.json", dataclasses.asdict(cfg))
        log(f"{cfg.task}: {cfg.head} on {cfg.backbone} ({cfg.weights or 'from scratch'}), {n} training and "
            f"{len(task.val.images)} held-out images of {tuple(task.train.images.shape[1:])}, {cfg.epochs} epochs, "
            f"device {device}; run folder {out}")
        for epoch in range(first, cfg.epochs + 1):
            started, cpu0 = time.perf_counter(), time.process_time()
            model.train()
            g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)  # the order of epoch k, resumed or not
            order = torch.randperm(n, generator=g)
            total, count = 0.0, 0
            for s in range(0, n, cfg.batch_size):
                idx = order[s:s + cfg.batch_size]
                loss = task.step(model, idx, g)
                optimise(loss, optimizer, scheduler, f"at epoch {epoch}")
                total, count = total + loss.item() * len(idx), count + len(idx)
            train_time, cpu = time.perf_counter() - started, time.process_time() - cpu0
            figures = task.evaluate(model)
            row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": total / max(1, count),
                   **{k: v for k, v in figures.items() if isinstance(v, float)},
                   "epoch_time": train_time, "cpu_time": cpu}
            history.append(row)
            log(f"epoch {epoch}/{cfg.epochs}: loss {row['train_loss']:.4f}, {task.summary(figures)} "
                f"({train_time:.1f} s, process CPU {cpu:.1f} s)")
            save_checkpoint(out / "last.pt", {
                "task": cfg.task, "config": dataclasses.asdict(cfg), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                "history": history, "meta": task.meta, task.meta["config_key"]: task.model_config})
            write_csv(out / "metrics.csv", list(row), history)
        final = task.evaluate(model)
        report = {"task": cfg.task, "backbone": cfg.backbone, "head": cfg.head, "weights": cfg.weights,
                  "epochs": cfg.epochs, "train_images": n, "held_out_images": len(task.val.images),
                  "train_time_s": sum(r["epoch_time"] for r in history),
                  "train_cpu_s": sum(r["cpu_time"] for r in history), **final}
        write_json(out / "report.json", report)
        log(f"done: {task.summary(final)} on the held-out split; {out / 'last.pt'}, {out / 'report.json'}")
        return report
    except KeyboardInterrupt:
        from ..training.fit import Interrupted

        raise Interrupted(f"continue with: {continue_command(cfg, out)}") from None
    finally:
        claim.release()


def config_from_args(args: Any, task: str) -> DenseConfig:
    """The config of a ``train`` command: the defaults, then the ``--config`` file (TOML, YAML or JSON, such
    as a run's ``config.json``), then the flags given; each value checked, a bad one named with its file.

    The file's types are checked as ``cnnzoo train --config``'s are (:func:`~cnnzoo.training.config.
    coerce_settings`); its ``backbone`` gives way to the command line's BACKBONE, as ``train``'s ``model`` does.
    """
    from ..training.config import coerce_settings, read_config_file
    from .checkpoint import COMMANDS

    command = f"{COMMANDS[task]} train"
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    if getattr(args, "config", None):
        source = f"config file {args.config}"
        raw = read_config_file(args.config)
        if raw.get("task", task) != task:
            other = COMMANDS.get(raw["task"], raw["task"])
            raise CnnzooError(f"{args.config} holds {raw['task']} settings; use it with `cnnzoo {other} train`")
        raw.pop("task", None)
        raw.pop("backbone", None)
        values = coerce_settings(raw, source, DenseConfig, command)
        where = {k: f"{k} in {source}" for k in values}
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(DenseConfig)
             if getattr(args, f.name, None) is not None and f.name not in ("task", "backbone")}
    values.update(flags)
    for k in flags:
        where.pop(k, None)
    if not values.get("data"):
        raise CnnzooError(f"give the data: --data (a VOC-layout folder{' or a COCO file' * (task == 'detection')}) "
                          "or data in the --config file")
    if task == "detection":
        values.setdefault("head", "fasterrcnn")
    cfg = DenseConfig(task=task, backbone=args.backbone, **values)
    cfg.check(where)
    return cfg


def dump(cfg: DenseConfig) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2)


# ---------------------------------------------------------------------------------------------- segmentation

def segment(model: nn.Module, images: Tensor, mean: tuple[float, ...], std: tuple[float, ...],
            batch_size: int = 32) -> Tensor:
    """Per-pixel classes ``N x H x W`` (int64, CPU) of uint8 ``images``."""
    device = next(model.parameters()).device
    pipeline = BatchPipeline(mean, std)
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            out.append(model(pipeline(images[s:s + batch_size].to(device))).argmax(1).cpu())
    return torch.cat(out)


def segmentation_task(cfg: DenseConfig, device: torch.device) -> Task:
    """FCN training on a VOC-layout folder's ``train`` split, evaluated on its ``val`` split."""
    import torch.nn.functional as F

    from ..datasets.dense import load_voc_segmentation
    from .metrics import IGNORE, confusion_matrix, segmentation_metrics
    from .segmentation import create_segmenter

    train = load_voc_segmentation(cfg.data, "train", cfg.image_size)
    val = load_voc_segmentation(cfg.data, "val", cfg.image_size, classes=train.classes)
    if cfg.limit_train:
        train.images, train.masks = train.images[:cfg.limit_train], train.masks[:cfg.limit_train]
    if cfg.limit_val:
        val.images, val.masks = val.images[:cfg.limit_val], val.masks[:cfg.limit_val]
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if cfg.weights else channel_stats(train.images)
    model = create_segmenter(cfg.backbone, train.num_classes, cfg.head, weights=cfg.weights,
                             input_scale=cfg.input_scale, in_chans=3)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    pipeline = BatchPipeline(mean, std)
    meta = {"classes": list(train.classes), "mean": list(mean), "std": list(std),
            "image_size": list(train.images.shape[-2:]), "config_key": "segmenter"}

    def step(m: nn.Module, idx: Tensor, g: torch.Generator) -> Tensor:
        x, y = train.images[idx], train.masks[idx]
        if "flip" in cfg.augment:
            x, y = flip_pairs(x, y, g)
        scores = m(pipeline(x.to(device)).contiguous(memory_format=layout))
        return F.cross_entropy(scores, y.to(device).long(), ignore_index=IGNORE)

    def evaluate(m: nn.Module) -> dict[str, Any]:
        pred = segment(m, val.images, mean, std)
        return segmentation_metrics(confusion_matrix(pred, val.masks, train.num_classes), train.classes)

    def summary(f: dict[str, Any]) -> str:
        return f"held-out mean IoU {f['mean_iou']:.4f}, pixel accuracy {f['pixel_accuracy']:.4f}"

    return Task(train, val, model, meta, model.config, step, evaluate, summary)


# ---------------------------------------------------------------------------------------------- detection

def detection_splits(cfg: DenseConfig) -> tuple[Any, Any]:
    """The training and held-out sets: a VOC-layout folder's train/val, or a COCO file and its val twin."""
    from ..datasets.dense import DatasetError, load_coco, load_voc_detection

    path = Path(cfg.data)
    if path.is_dir():
        train = load_voc_detection(path, "train")
        return train, load_voc_detection(path, "val", classes=train.classes)
    if path.suffix != ".json":
        raise DatasetError(f"--data {path}: give a VOC-layout folder or a COCO .json file")
    val_path = path.with_name(path.name.replace("train", "val"))
    if val_path == path or not val_path.is_file():
        raise DatasetError(f"no held-out COCO file beside {path} (looked for {val_path.name})")
    train = load_coco(path)
    val = load_coco(val_path)
    if val.classes != train.classes:
        raise DatasetError(f"{val_path} names other categories than {path}")
    return train, val


def detect(model: nn.Module, images: Tensor, batch_size: int = 16) -> list[dict[str, Tensor]]:
    """The detections (``boxes``, ``labels``, ``scores`` on the CPU) of uint8 ``images``."""
    device = next(model.parameters()).device
    model.eval()
    out: list[dict[str, Tensor]] = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            batch = [im.to(device).float() / 255 for im in images[s:s + batch_size]]
            out += [{k: v.cpu() for k, v in d.items()} for d in model(batch)]
    return out


def detection_metrics(preds: list[dict[str, Tensor]], boxes: list[Tensor], labels: list[Tensor]) -> dict[str, Any]:
    """COCO mAP (IoU 0.5:0.95) and mAP@0.5, by torchmetrics' ``MeanAveragePrecision`` (faster_coco_eval)."""
    metric = map_metric()(box_format="xyxy", iou_type="bbox", backend="faster_coco_eval")
    metric.update(preds, [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels)])
    r = metric.compute()
    return {"map": float(r["map"]), "map_50": float(r["map_50"]), "map_75": float(r["map_75"])}


def map_metric() -> type:
    """torchmetrics' ``MeanAveragePrecision``, or the one line naming the extra that installs it."""
    try:
        from torchmetrics.detection import MeanAveragePrecision
        import faster_coco_eval  # noqa: F401 - the backend MeanAveragePrecision is asked for
    except ImportError:
        raise CnnzooError("detection's mAP needs torchmetrics and faster-coco-eval: pip install 'cnnzoo[dense]'"
                          ) from None
    return MeanAveragePrecision


def detection_task(cfg: DenseConfig, device: torch.device) -> Task:
    """A torchvision detector on ``cfg.backbone``, trained on the training split, evaluated on the held-out one."""
    from .detection import create_detector

    map_metric()  # refused before training, not after it
    train, val = detection_splits(cfg)
    if cfg.limit_train:
        train.images, train.boxes, train.labels = (train.images[:cfg.limit_train], train.boxes[:cfg.limit_train],
                                                   train.labels[:cfg.limit_train])
    if cfg.limit_val:
        val.images, val.boxes, val.labels = val.images[:cfg.limit_val], val.boxes[:cfg.limit_val], val.labels[:cfg.limit_val]
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if cfg.weights else channel_stats(train.images)
    size = cfg.image_size or int(train.images.shape[-1])
    model = create_detector(cfg.backbone, train.num_classes, cfg.head, cfg.weights, size, mean, std, in_chans=3)
    if hasattr(model, "roi_heads"):  # Faster R-CNN; RetinaNet and FCOS keep it on the model
        model.roi_heads.score_thresh = cfg.min_score
    else:
        model.score_thresh = cfg.min_score
    meta = {"classes": list(train.classes), "image_size": size, "config_key": "detector"}
    width = int(train.images.shape[-1])

    def step(m: nn.Module, idx: Tensor, g: torch.Generator) -> Tensor:
        flip = torch.rand(len(idx), generator=g) < 0.5 if "flip" in cfg.augment else torch.zeros(len(idx), dtype=torch.bool)
        images, targets = [], []
        for i, f in zip(idx.tolist(), flip.tolist()):
            im, b = train.images[i], train.boxes[i].clone()
            if f:
                im = im.flip(-1)
                b[:, [0, 2]] = width - b[:, [2, 0]]
            images.append(im.to(device).float() / 255)
            targets.append({"boxes": b.to(device), "labels": train.labels[i].to(device)})
        return sum(m(images, targets).values())

    def evaluate(m: nn.Module) -> dict[str, Any]:
        return detection_metrics(detect(m, val.images), val.boxes, val.labels)

    def summary(f: dict[str, Any]) -> str:
        return f"held-out mAP@0.5 {f['map_50']:.4f}, COCO mAP {f['map']:.4f}"

    return Task(train, val, model, meta, model.config, step, evaluate, summary)
