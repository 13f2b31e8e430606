"""``fit(config)``: one whole training run, resumable to the same final weights."""

from __future__ import annotations

import copy
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets.readers import ImageDataset, load_dataset
from ..errors import CnnzooError
from ..registry import create_model
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .augment import BatchPipeline
from .transfer import (SIMILAR_CONFIDENCE, choose_strategy, measure_similarity, parameter_groups, parse_strategy,
                       reinit, set_frozen, trainable_groups)
from .outputs import TensorBoard, plot_confusion, plot_curves, write_json, write_metrics_csv
from .trainer import (Dist, build_optimizer, build_scheduler, metrics_from_probs, pick_device, predict,
                      resolve_model, split_validation, train_one_epoch)


def run_folder(cfg: TrainConfig) -> Path:
    return Path(cfg.out or f"runs/{cfg.model}-{cfg.data.replace(':', '_').replace('/', '_')}")


def fit(cfg: TrainConfig, resume: bool = False, log: Any = print) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data``; returns the report (also written to ``report.json``)."""
    cfg.check()
    device = pick_device(cfg.device)
    dist = Dist.from_env(device)
    out = run_folder(cfg)
    say = log if dist.main else (lambda *a, **k: None)
    ckpt_path = out / "last.pt"
    ckpt = load_checkpoint(ckpt_path) if resume else None
    if ckpt is not None:
        cfg = TrainConfig.from_dict({**ckpt["config"], "epochs": cfg.epochs, "progress": cfg.progress})
    if cfg.channels_last is None:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "channels_last": device.type == "cuda"})
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)

    data = prepare_data(cfg)
    model, name, pipeline, groups, cfg = build_model(cfg, data, device, say, fresh=ckpt is None)
    # The validation split is at most a fifth of the training set, so small datasets keep most for training.
    n_train = len(data.train_labels)
    train_idx, val_idx = split_validation(n_train, min(cfg.val_size, n_train // 5), cfg.seed)
    data.train_images, data.train_labels = data.train_images.to(device), data.train_labels.to(device)
    say(f"cnnzoo {'finetune' if cfg.weights else 'train'}: {name} on {cfg.data} ({len(train_idx)} train / "
        f"{len(val_idx)} validation / {len(data.test_labels)} test), device {device}"
        + (f", {dist.world} processes" if dist.world > 1 else ""))
    say("config: " + " ".join(f"{k}={v}" for k, v in cfg.to_dict().items() if k != "progress"))

    steps_per_epoch = -(-len(train_idx) // cfg.batch_size)
    optimizer = build_optimizer(cfg, model, groups)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None
    ema = None
    if cfg.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    g = torch.Generator(device=device).manual_seed(cfg.seed + 1)

    start_epoch, best, best_epoch, history = 1, -1.0, 0, []
    best_state: dict[str, torch.Tensor] | None = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        if ema is not None and ckpt.get("ema"):
            ema.load_state_dict(ckpt["ema"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        g.set_state(ckpt["rng"]["data"].to(g.device) if device.type != "cuda" else ckpt["rng"]["data"])
        if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
        start_epoch, best, best_epoch = ckpt["epoch"] + 1, ckpt["best_metric"], ckpt["best_epoch"]
        history, best_state = ckpt["history"], ckpt.get("best_model")
        say(f"resumed from {ckpt_path} after epoch {ckpt['epoch']}")

    def wrap(m: nn.Module) -> nn.Module:
        # DDP syncs the parameters that require grad when it is built: rebuilt whenever freezing changes.
        if dist.world > 1:
            m = nn.parallel.DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
        return torch.compile(m) if cfg.compile else m

    train_model = wrap(model) if groups is None else None  # with groups: wrapped once the first freezing is set
    trainable: list[bool] | None = None
    tb = TensorBoard(out) if dist.main else None
    progress = _progress(cfg) if dist.main else None
    t_start = time.perf_counter()
    try:
        if progress:
            progress.start()
        for epoch in range(start_epoch, cfg.epochs + 1):
            t0 = time.perf_counter()
            if groups is not None and trainable_at(cfg, groups, epoch) != trainable:
                trainable = trainable_at(cfg, groups, epoch)
                set_frozen(groups, trainable, cfg.bn)
                train_model = wrap(model)
            row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[-1]["lr"]}
            row |= train_one_epoch(train_model, data, train_idx, pipeline, optimizer, scheduler, cfg, g, device,
                                   dist, epoch, ema, scaler, progress)
            judged = ema.module if ema is not None else model
            if len(val_idx):
                m = metrics_from_probs(predict(judged, data.train_images[val_idx.to(device)], pipeline),
                                       data.train_labels[val_idx.to(device)], data.num_classes)
                row |= {"val_loss": m["loss"], "val_acc": m["top1"], "val_top5": m["top5"]}
            else:
                row |= {"val_loss": row["train_loss"], "val_acc": row["train_acc"], "val_top5": None}
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(row["val_acc"])
            row["epoch_time"] = time.perf_counter() - t0
            history.append(row)
            if row["val_acc"] > best:
                best, best_epoch = row["val_acc"], epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in judged.state_dict().items()}
            if dist.main:
                save_checkpoint(ckpt_path, {
                    "model_name": name, "model_args": model.model_args, "model": _cpu(model.state_dict()),
                    "best_model": best_state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "ema": ema.state_dict() if ema is not None else None, "epoch": epoch, "best_metric": best,
                    "best_epoch": best_epoch, "config": cfg.to_dict(), "history": history,
                    "pipeline": _pipeline_dict(pipeline), "classes": list(data.classes),
                    "rng": {"torch": torch.get_rng_state(), "data": g.get_state().cpu(),
                            "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None},
                })
                write_metrics_csv(out / "metrics.csv", history)
                tb.log(row)
                say(f"epoch {epoch:>3}/{cfg.epochs}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} "
                    f"acc {row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  "
                    f"{row['images_per_s']:,.0f} img/s  {row['epoch_time']:.1f} s")
    finally:
        if progress:
            progress.stop()
        if tb:
            tb.close()
    train_time = time.perf_counter() - t_start

    # The test set, once, with the weights that did best on validation.
    final = copy.deepcopy(model)
    if best_state is not None:
        final.load_state_dict(best_state)
    m = metrics_from_probs(predict(final, data.test_images.to(device), pipeline), data.test_labels, data.num_classes)
    report = {
        "model": name, "data": cfg.data, "test_top1": m["top1"], "test_top5": m["top5"], "test_loss": m["loss"],
        "best_epoch": best_epoch, "best_val_acc": best, "per_class_accuracy": dict(zip(data.classes, m["per_class"])),
        "confusion": m["confusion"], "classes": list(data.classes), "train_time_s": train_time,
        "images_per_s": sum(r["images_per_s"] for r in history) / max(1, len(history)), "epochs": cfg.epochs,
        "config": cfg.to_dict(), "device": str(device), "processes": dist.world,
    }
    if dist.main:
        final_ckpt = {"format": "cnnzoo-checkpoint/1", "model_name": name, "model_args": model.model_args,
                      "model": _cpu(final.state_dict()), "config": cfg.to_dict(),
                      "pipeline": _pipeline_dict(pipeline), "classes": list(data.classes), "epoch": cfg.epochs}
        save_checkpoint(out / "best.pt", {k: v for k, v in final_ckpt.items() if k != "format"})
        write_json(out / "report.json", report)
        write_json(out / "config.json", cfg.to_dict())
        plot_curves(out / "curves.png", history)
        plot_confusion(out / "confusion.png", m["confusion"], list(data.classes))
        say(f"test accuracy {m['top1']:.4f} (top-5 {m['top5']:.4f}) with the weights of epoch {best_epoch}; "
            f"{train_time:.1f} s training")
        say(f"report: {out / 'report.json'}  plots: {out / 'curves.png'}, {out / 'confusion.png'}  "
            f"weights: {out / 'best.pt'}")
    return report


def prepare_data(cfg: TrainConfig) -> ImageDataset:
    """The dataset, restricted to ``cfg.classes`` (relabelled) and ``cfg.limit_per_class`` images per class."""
    data = load_dataset(cfg.data, cfg.data_root)
    if cfg.classes:
        bad = [c for c in cfg.classes if not 0 <= c < data.num_classes]
        if bad:
            raise CnnzooError(f"--classes {bad[0]} is not a class of {cfg.data} (0..{data.num_classes - 1})")
        remap = torch.full((data.num_classes,), -1, dtype=torch.int64)
        remap[list(cfg.classes)] = torch.arange(len(cfg.classes))
        for split in ("train", "test"):
            images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
            keep = remap[labels] >= 0
            setattr(data, f"{split}_images", images[keep])
            setattr(data, f"{split}_labels", remap[labels[keep]])
        data.classes = tuple(data.classes[c] for c in cfg.classes)
    if cfg.limit_per_class:
        g = torch.Generator().manual_seed(cfg.seed)
        keep = torch.cat([idx[torch.randperm(len(idx), generator=g)[:cfg.limit_per_class]]
                          for idx in (torch.nonzero(data.train_labels == c).flatten() for c in range(data.num_classes))])
        keep = keep.sort().values
        data.train_images, data.train_labels = data.train_images[keep], data.train_labels[keep]
    if cfg.limit_train:
        data.train_images, data.train_labels = data.train_images[:cfg.limit_train], data.train_labels[:cfg.limit_train]
    return data


def build_model(cfg: TrainConfig, data: ImageDataset, device: torch.device, say: Any, fresh: bool = True):
    """The model, its batch pipeline and (for transfer learning) its parameter groups.

    Without ``cfg.weights`` the model (or its small-image variant) is built fresh. With weights, the
    pretrained model is loaded with the first convolution adapted to the data's channels, the data is
    shaped as the weights expect (their resize and normalisation), ``auto`` resolves to a concrete
    strategy (written back into the config, so a resumed run makes the same choice), and the classifier
    is replaced by a fresh one for the new classes.
    """
    if not cfg.weights:
        name, pipeline = resolve_model(cfg, data)
        model = create_model(name, num_classes=data.num_classes, in_chans=data.image_shape[0], **cfg.model_kwargs)
        groups = None
        if cfg.strategy not in (None, "scratch", "full"):
            raise CnnzooError(f"--strategy {cfg.strategy} needs pretrained --weights")
    else:
        name = cfg.model
        if cfg.bn not in ("frozen", "train"):
            raise CnnzooError(f"unknown --bn {cfg.bn!r}; use frozen (keep the statistics of frozen stages) or train")
        model, pipeline = load_pretrained(cfg, data)
        strategy = cfg.strategy or "full"
        if parse_strategy(strategy)[0] == "auto":
            similar = cfg.similar
            how = "stated"
            if similar is None:
                confidence = measure_similarity(model, data.train_images, pipeline)
                similar, how = confidence >= SIMILAR_CONFIDENCE, (
                    f"measured: the pretrained classifier's mean confidence on the new images is {confidence:.2f}, "
                    f"similar at >= {SIMILAR_CONFIDENCE}")
            per_class = len(data.train_labels) / data.num_classes
            strategy, why = choose_strategy(per_class, similar)
            say(f"auto strategy: {strategy} — {why} (similarity {how})")
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "strategy": strategy, "similar": similar})
        model.reset_classifier(data.num_classes)
        groups = parameter_groups(model)
        trainable = trainable_groups(groups, strategy)
        if cfg.reinit and fresh:
            reinit(groups, trainable)
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "strategy": strategy})
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, name, pipeline, groups, cfg


def load_pretrained(cfg: TrainConfig, data: ImageDataset):
    """A pretrained model with its original head (for measuring similarity), and the pipeline its weights expect.

    With ``strategy="scratch"`` the same architecture and pipeline, randomly initialised: the baseline that
    shows what the weights are worth.
    """
    from ..registry import model_info
    from ..weights import read_weights

    info = model_info(cfg.model)
    in_chans = data.image_shape[0]
    args: dict[str, Any] = {}
    saved = None
    weights_path = Path(cfg.weights)
    if weights_path.exists():
        state, meta = read_weights(weights_path)
        if meta.get("model_name") not in (None, cfg.model):
            raise CnnzooError(f"{cfg.weights} holds {meta['model_name']} weights, not {cfg.model}")
        args = {k: v for k, v in meta.get("model_args", {}).items() if k not in ("in_chans",)}
        if weights_path.suffix == ".pt":
            saved = _saved_pipeline(weights_path)
    weights = None if cfg.strategy == "scratch" else cfg.weights
    model = create_model(cfg.model, **{**args, **cfg.model_kwargs, "in_chans": in_chans}, weights=weights)
    if saved is not None:
        mean, std, size = saved["mean"], saved["std"], saved["size"] or data.image_shape[1]
    else:
        pre = info.preprocessing
        mean, std = (pre.mean, pre.std) if pre else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        size = pre.crop if pre else info.input_size[1]
    if len(mean) != in_chans:  # grayscale data on RGB weights: the channels' mean statistics
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    size = cfg.image_size or size
    # Keep the zero-padding the weights were trained with (LeNet: 28 -> 32) when the new images are as small.
    fit = "pad" if saved and saved.get("fit") == "pad" and size >= data.image_shape[1] else "resize"
    return model, BatchPipeline(tuple(mean), tuple(std), size if size != data.image_shape[1] else None, fit,
                                tuple(cfg.augment))


def _saved_pipeline(path: Path) -> dict[str, Any] | None:
    try:
        ckpt = load_checkpoint(path)
    except CnnzooError:
        return None
    return ckpt.get("pipeline")


def trainable_at(cfg: TrainConfig, groups: list, epoch: int) -> list[bool]:
    """The strategy's trainable groups, or only the classifier during ``full``'s head-only warm-up."""
    if cfg.strategy == "full" and epoch <= cfg.head_epochs:
        return [g.name == "classifier" for g in groups]
    return trainable_groups(groups, cfg.strategy or "full")


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu") for k, v in state.items()}


def _pipeline_dict(p) -> dict[str, Any]:
    return {"mean": list(p.mean), "std": list(p.std), "size": p.size, "fit": p.fit}


def _progress(cfg: TrainConfig):
    if not cfg.progress or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), transient=True)
