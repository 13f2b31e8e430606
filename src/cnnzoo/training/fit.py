"""``fit(config)``: one whole training run, resumable to the same final weights."""

from __future__ import annotations

import copy
import dataclasses
import random
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..datasets.readers import ImageDataset, load_dataset, skipped_message
from ..errors import CnnzooError
from ..registry import create_model
from . import runfolder
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .interrupts import KeptCtrlC, keep_ctrl_c
from .augment import BatchPipeline
from .transfer import (SIMILAR_CONFIDENCE, choose_strategy, measure_similarity, parameter_groups, parse_strategy,
                       reinit, set_frozen, trainable_groups)
from .outputs import TensorBoard, plot_confusion, plot_curves, write_json, write_metrics_csv
from .trainer import (Dist, build_optimizer, build_scheduler, lr_factor, metrics_from_probs, pick_device, predict,
                      resolve_model, split_validation, train_one_epoch)


def default_base(cfg: TrainConfig) -> Path:
    """The first default folder of ``cfg``'s runs: ``runs/MODEL-DATA`` (``-finetune`` with weights)."""
    return runfolder.default_base(cfg.model, cfg.data, finetune=bool(cfg.weights))


def continue_command(cfg: TrainConfig, out: Path) -> str:
    """The command line that continues ``cfg``'s run in ``out`` from its last checkpoint."""
    command = "finetune" if cfg.weights else "train"
    weights = f" --weights {shlex.quote(cfg.weights)}" if cfg.weights else ""
    return f"cnnzoo {command} {cfg.model}{weights} --out {shlex.quote(str(out))} --epochs {cfg.epochs} --resume"


def claim_folder(cfg: TrainConfig, resume: bool, overwrite: bool, dist: Dist, default_out: str | None = None
                 ) -> runfolder.Claim:
    """The run folder (a new one without ``cfg.out``), checked and locked by the main process and shared
    with the others of a torchrun job."""
    base = Path(default_out) if default_out else default_base(cfg)
    if dist.world == 1:
        return runfolder.claim(cfg.out, base, resume, overwrite)
    import torch.distributed

    box: list[Any] = [None]
    if dist.main:
        try:
            claimed = runfolder.claim(cfg.out, base, resume, overwrite)
            box[0] = str(claimed.out)
        except CnnzooError as exc:
            box[0] = exc
    torch.distributed.broadcast_object_list(box, src=0)
    if isinstance(box[0], CnnzooError):
        raise box[0]
    return claimed if dist.main else runfolder.Claim(Path(box[0]), False, None)


@dataclass
class Run:
    """What every step of a run shares: its settings, device, data, model and where it writes."""

    cfg: TrainConfig
    device: torch.device
    dist: Dist
    out: Path
    say: Callable[..., None]
    data: ImageDataset
    model: nn.Module
    name: str
    pipeline: BatchPipeline
    groups: list | None
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    ckpt: dict[str, Any] | None
    #: the last epoch whose checkpoint is on disk (0: none yet)
    saved_epoch: int = 0
    #: knowledge distillation: (the teacher's logits of every training image, temperature, alpha)
    teacher: tuple[torch.Tensor, float, float] | None = None
    #: called after each step's backward pass (a regulariser adding its gradient; see ``fit``'s ``regularize``)
    after_backward: Callable[[], None] | None = None
    #: keep (and test) the last epoch's weights rather than the best on validation
    keep_last: bool = False

    @property
    def input_shape(self) -> tuple[int, int, int]:
        side = self.pipeline.size or self.data.image_shape[1]
        return (self.data.image_shape[0], side, side)


@dataclass
class Outcome:
    """What training produced: the per-epoch (or per-evaluation) history and the weights to test."""

    history: list[dict[str, Any]]
    best_state: dict[str, torch.Tensor] | None
    best_epoch: int
    best_val: float
    train_time: float
    #: the frozen ``pre_logits`` pass already built for the cache, reused for the test images (``linear``)
    pre_logits: Callable[[torch.Tensor], torch.Tensor] | None = None


def fit(cfg: TrainConfig, resume: bool = False, log: Any = print, overwrite: bool = False,
        default_out: str | None = None, command: Callable[[Path], str] | None = None,
        init: dict[str, torch.Tensor] | None = None, teacher: Any = None,
        regularize: Callable[[nn.Module], Callable[[], None]] | None = None, keep_last: bool = False
        ) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data``; returns the report (also written to ``report.json``).

    The run writes ``cfg.out``, or without it a new folder (``runs/MODEL-DATA``, ``-2``, ...; the numbers
    count from ``default_out`` where given); a folder holding a run is refused unless ``resume`` or
    ``overwrite``, and a folder in use by another process always. ``command(folder)`` is the command line
    that continues the run, said when it is interrupted.

    A fine-tuning run whose frozen part can be cached (``linear``, ``top:K``; see
    :mod:`cnnzoo.training.frozen`) trains on the cached outputs; every other run trains epoch by epoch.

    ``init``: the weights a fresh run starts from instead of the builder's initialisation (a pruned network's,
    for ``cnnzoo prune``'s fine-tuning); a resumed run takes its checkpoint's. ``teacher``: knowledge
    distillation (a :class:`cnnzoo.training.distill.Teacher`), whose logits of the training images are computed
    once when the run starts (and again on resume). ``regularize(model)``: given the network being trained, the
    function called after every backward pass, which adds a regulariser's gradient (trains epoch by epoch).
    ``keep_last``: the last epoch's weights are kept and tested, whatever validation says (a stage whose weights
    are meant to move on, such as sparsity training, whose early epochs hold the least of it).
    """
    cfg.check()
    device = pick_device(cfg.device)
    dist = Dist.from_env(device)
    claim = claim_folder(cfg, resume, overwrite, dist, default_out)
    cfg = dataclasses.replace(cfg, out=str(claim.out))
    run = None
    try:
        if resume and (done := _finished_on_cache(claim.out)) is not None:
            log(f"nothing to resume: the run in {claim.out} finished (it trained on cached features, which keeps "
                f"no last.pt); test top-1 {done['test_top1']:.4f} in its report.json")
            return done
        run = start(cfg, resume, log, device, dist, claim.note, init)
        if teacher is not None:
            run.teacher = teacher.cached(run.data, run.say)
        if regularize is not None:
            run.after_backward = regularize(run.model)
        run.keep_last = keep_last
        outcome = train_frozen(run) if run.groups is not None and regularize is None else None
        if outcome is None:
            with keep_ctrl_c() as ctrl_c:
                outcome = train_epochs(run, ctrl_c)
        return finish(run, outcome)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_note(cfg, run, command)) from None
    finally:
        claim.release()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with what was saved and how to continue (``str()``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def interrupted_note(cfg: TrainConfig, run: "Run | None", command: Callable[[Path], str] | None = None) -> str:
    """What an interrupted run leaves: the epoch its last.pt holds and the command that continues it."""
    out = Path(cfg.out)
    again = (command or (lambda o: continue_command(cfg, o)))(out)
    epoch = run.saved_epoch if run is not None else 0
    if not epoch and run is not None and run.ckpt is not None:
        epoch = run.ckpt["epoch"]
    if not epoch and (out / "last.pt").is_file():  # interrupted while resuming, before the checkpoint was read
        return f"{out / 'last.pt'} is kept as it was; continue from it with: {again}"
    if not epoch:
        if run is not None and run.groups is not None and cfg.cache_features:
            return "nothing was saved (a run on cached features writes its files at the end); run it again"
        return "nothing was saved yet (no epoch had finished); run the same command again to start over"
    return f"{out / 'last.pt'} holds epoch {epoch} of {cfg.epochs}; continue from there with: {again}"


def _finished_on_cache(out: Path) -> dict[str, Any] | None:
    """The report of a finished run in ``out`` that trained on cached features (such runs keep no last.pt)."""
    import json

    if (out / "last.pt").is_file() or not (out / "report.json").is_file():
        return None
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("cached_features") else None


def start(cfg: TrainConfig, resume: bool, log: Any, device: torch.device, dist: Dist, note: str = "",
          init: dict[str, torch.Tensor] | None = None) -> Run:
    """Checkpoint to resume from, seeds, data, model and the validation split; prints the run's header."""
    out = Path(cfg.out)
    say = log if dist.main else (lambda *a, **k: None)
    ckpt = load_checkpoint(out / "last.pt") if resume else None
    if ckpt is not None:
        cfg = TrainConfig.from_dict({**ckpt["config"], "epochs": cfg.epochs, "progress": cfg.progress,
                                     "out": cfg.out})
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)

    with warnings.catch_warnings(record=True) as caught:  # the header says the skipped files, once
        warnings.simplefilter("always")
        data = prepare_data(cfg)
    for w in caught:
        if not (data.skipped and str(w.message) == skipped_message(data.skipped)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    model, name, pipeline, groups, cfg = build_model(cfg, data, device, say, fresh=ckpt is None)
    if init is not None and ckpt is None:
        model.load_state_dict(init)
    asked, amp_lines = cfg, []
    if cfg.amp == "auto" or cfg.channels_last is None:
        from .amp import resolve_amp

        side = pipeline.size or data.image_shape[1]
        cfg = resolve_amp(cfg, model, (data.image_shape[0], side, side), device, amp_lines.append, world=dist.world)
        model.to(memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
        torch.manual_seed(cfg.seed)  # the measuring drew nothing from the run's generators, but be exact
    # The validation split is at most a fifth of the training set, so small datasets keep most for training.
    n_train = len(data.train_labels)
    train_idx, val_idx = split_validation(n_train, min(cfg.val_size, n_train // 5), cfg.seed)
    data.train_images, data.train_labels = data.train_images.to(device), data.train_labels.to(device)
    for line in header(asked, name, data, (len(train_idx), len(val_idx)), device, dist.world) + amp_lines:
        say(line)
    if note:
        say(note)
    return Run(cfg, device, dist, out, say, data, model, name, pipeline, groups, train_idx, val_idx, ckpt)


#: settings that the header's first lines already show, or that do not change what is trained
_NOT_IN_HEADER = {"model", "data", "recipe", "out", "progress", "channels_last"}


def header(cfg: TrainConfig, name: str, data: ImageDataset, split: tuple[int, int], device: torch.device,
           world: int = 1) -> list[str]:
    """The run's first lines: model, data, the recipe and where it came from, the settings that differ
    from the recipe's, the folder; the full settings are the folder's config.json (and ``--print-config``)."""
    from .recipes import FINETUNE, default_recipe, recipe_overrides

    command = "finetune" if cfg.weights else "train"
    lines = [f"cnnzoo {command}: {name} on {cfg.data} ({split[0]:,} train / {split[1]:,} validation / "
             f"{len(data.test_labels):,} test), device {device}" + (f", {world} processes" if world > 1 else "")]
    recipe = recipe_overrides(cfg.recipe) if cfg.recipe else {}
    baseline = TrainConfig.from_dict({**recipe, **(FINETUNE if cfg.weights else {}), "model": cfg.model})
    changed = [f"{f.name}={_shown(getattr(cfg, f.name))}" for f in dataclasses.fields(cfg)
               if f.name not in _NOT_IN_HEADER and getattr(cfg, f.name) != getattr(baseline, f.name)]
    whose = f"{cfg.model}'s default" if cfg.recipe == default_recipe(cfg.model) else "chosen"
    lines.append((f"recipe {cfg.recipe} ({whose})" if cfg.recipe else "no recipe (the config's defaults)") + "; "
                 + ("changed: " + " ".join(changed) if changed else "nothing changed"))
    if data.skipped:
        lines.append("warning: " + skipped_message(data.skipped))
    lines.append(f"run folder {cfg.out} (all settings: config.json there; --print-config shows them)")
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, dict):  # a pruned network's width map (one entry per layer) is shown by its size
        return ",".join(f"{k}={f'<{len(v)} layers>' if isinstance(v, dict) else v}" for k, v in value.items()) or "none"
    return str(value)


def train_frozen(run: Run) -> Outcome | None:
    """Train on the frozen part's cached outputs; None (and the reason, said) where that cannot be done."""
    from . import frozen

    cfg, model, data = run.cfg, run.model, run.data
    trainable = trainable_groups(run.groups, cfg.strategy)
    plan, why = frozen.plan(model, cfg.strategy, run.groups, tuple(cfg.augment), cfg.bn)
    if plan is None or not cfg.cache_features:
        if cfg.cache_features and cfg.strategy != "full":
            run.say(f"frozen features are not cached: {why}")
        return None
    set_frozen(run.groups, trainable, cfg.bn)
    t0 = time.perf_counter()
    probe = run.pipeline(data.train_images[:4])
    error = frozen.verify(model, plan, probe)
    if error > 1e-4:
        run.say(f"frozen features are not cached: running {run.name} from a cached {plan.boundary} differs from "
                f"the whole network by {error:.1e} of the logits' scale")
        return None
    per_image = frozen.frozen_outputs(model, plan, probe[:1]).numel() * 4
    n_cached = len(run.train_idx) + len(run.val_idx)
    if per_image * n_cached > frozen.CACHE_BYTES:
        run.say(f"frozen features are not cached: {n_cached:,} outputs of {plan.boundary} would take "
                f"{per_image * n_cached / 2 ** 30:.1f} GiB")
        return None
    forward = _frozen_engine(run, plan) if plan.boundary == frozen.PRE_LOGITS else None
    images, labels = data.train_images, data.train_labels
    cache = frozen.compute_cache(model, plan, images[run.train_idx.to(images.device)], run.pipeline, forward=forward)
    val_cache = frozen.compute_cache(model, plan, images[run.val_idx.to(images.device)], run.pipeline,
                                     forward=forward)
    t_cache = time.perf_counter() - t0
    run.say(f"frozen part run once: {n_cached:,} images to {plan.boundary} "
            f"({tuple(cache.shape[1:])} each) in {t_cache:.1f} s")

    steps = frozen.default_steps(len(run.train_idx), cfg.batch_size, cfg.epochs, cfg.steps, cfg.strategy)
    if plan.boundary == frozen.PRE_LOGITS:  # a convex problem: AdamW at the rate measured best for it
        optimizer = torch.optim.AdamW(model.get_classifier().parameters(), lr=cfg.head_lr,
                                      weight_decay=cfg.head_weight_decay)
        run.say(f"the classifier trains on them: AdamW at --head-lr {cfg.head_lr:g} (--head-weight-decay "
                f"{cfg.head_weight_decay:g}), {steps:,} steps on the {cfg.schedule} schedule; --optimizer, --lr and "
                "--weight-decay are for the strategies that train stages")
    else:
        optimizer = build_optimizer(cfg, model, run.groups)
    per_epoch = -(-len(run.train_idx) // min(cfg.batch_size, len(run.train_idx)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, per_epoch, total_steps=steps))
    g = torch.Generator().manual_seed(cfg.seed + 1)
    t1 = time.perf_counter()
    history, best_state, best_round = frozen.train_steps(
        model, plan, cache, labels[run.train_idx.to(labels.device)], val_cache, labels[run.val_idx.to(labels.device)],
        optimizer, scheduler, steps, cfg.batch_size, run.input_shape, g, cfg.label_smoothing, run.say)
    if run.dist.main:
        write_metrics_csv(run.out / "metrics.csv", history)
    best_val = max(r["val_acc"] for r in history)
    return Outcome(history, {k: v.cpu() for k, v in best_state.items()}, best_round, best_val,
                   t_cache + time.perf_counter() - t1, pre_logits=forward or frozen.PreLogits(model))


#: below this many images through the frozen part, ``--engine auto`` keeps eager PyTorch: for 48 photos at
#: 224 px the export and measuring took 18.6 s against eager's 4.1 s for the whole pass
AUTO_MIN_IMAGES = 500


def _frozen_engine(run: Run, plan) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The fastest measured engine for the frozen ``pre_logits`` pass (None: eager)."""
    from . import frozen

    if run.cfg.engine == "eager" and run.cfg.precision == "fp32":
        return None
    passes = len(run.train_idx) + len(run.val_idx) + len(run.data.test_labels)
    if run.cfg.engine == "auto" and passes < AUTO_MIN_IMAGES:
        run.say(f"engine auto: eager for {passes} images (exporting and measuring costs more than it saves "
                f"below {AUTO_MIN_IMAGES}; --engine onnxruntime forces it)")
        return None
    from ..runtime import build_engine

    return build_engine(frozen.PreLogits(run.model), run.input_shape, engine=run.cfg.engine,
                        precision=run.cfg.precision, device=run.device, log=run.say)


def train_epochs(run: Run, ctrl_c: KeptCtrlC | None = None) -> Outcome:
    """The ordinary loop: epochs over the (augmented) training images, a checkpoint after each (and then a
    Ctrl-C that a finaliser swallowed, raised again)."""
    cfg, model, data, device, dist, groups = run.cfg, run.model, run.data, run.device, run.dist, run.groups
    steps_per_epoch = -(-len(run.train_idx) // cfg.batch_size)
    optimizer = build_optimizer(cfg, model, groups)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None
    ema = None
    if cfg.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    g = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    state = _restore(run, optimizer, scheduler, scaler, ema, g)
    history, best, best_epoch, best_state = state["history"], state["best"], state["best_epoch"], state["best_state"]

    def wrap(m: nn.Module) -> nn.Module:
        # DDP syncs the parameters that require grad when it is built: rebuilt whenever freezing changes.
        if dist.world > 1:
            m = nn.parallel.DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
        return torch.compile(m) if cfg.compile else m

    train_model = wrap(model) if groups is None else None  # with groups: wrapped once the first freezing is set
    trainable: list[bool] | None = None
    tb = TensorBoard(run.out) if dist.main else None
    progress = _progress(cfg) if dist.main else None
    t_start = time.perf_counter()
    try:
        if progress:
            progress.start()
        for epoch in range(state["start_epoch"], cfg.epochs + 1):
            t0 = time.perf_counter()
            if groups is not None and trainable_at(cfg, groups, epoch) != trainable:
                trainable = trainable_at(cfg, groups, epoch)
                set_frozen(groups, trainable, cfg.bn)
                train_model = wrap(model)
            row: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[-1]["lr"]}
            row |= train_one_epoch(train_model, data, run.train_idx, run.pipeline, optimizer, scheduler, cfg, g,
                                   device, dist, epoch, ema, scaler, progress, run.teacher,
                                   run.after_backward)
            judged = ema.module if ema is not None else model
            row |= _validate(run, judged, row)
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(row["val_acc"])
            row["epoch_time"] = time.perf_counter() - t0
            history.append(row)
            if row["val_acc"] > best or run.keep_last:
                best, best_epoch = row["val_acc"], epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in judged.state_dict().items()}
            if dist.main:
                _save_epoch(run, optimizer, scheduler, scaler, ema, g, epoch, best, best_epoch, best_state, history)
                tb.log(row)
                # Without a validation split the "val" figures are the training ones: not printed twice.
                val = f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  " if len(run.val_idx) else ""
                run.say(f"epoch {epoch:>3}/{cfg.epochs}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} "
                        f"acc {row['train_acc']:.4f}  {val}{row['images_per_s']:,.0f} img/s  {row['epoch_time']:.1f} s")
            if ctrl_c is not None:
                ctrl_c.check()
    finally:
        if progress:
            progress.stop()
        if tb:
            tb.close()
    return Outcome(history, best_state, best_epoch, best, time.perf_counter() - t_start)


def _restore(run: Run, optimizer, scheduler, scaler, ema, g: torch.Generator) -> dict[str, Any]:
    """The loop's starting state: fresh, or everything the last checkpoint saved (weights, optimiser, RNGs)."""
    ckpt = run.ckpt
    if ckpt is None:
        return {"start_epoch": 1, "best": -1.0, "best_epoch": 0, "history": [], "best_state": None}
    run.model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if ema is not None and ckpt.get("ema"):
        ema.load_state_dict(ckpt["ema"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    g.set_state(ckpt["rng"]["data"].to(g.device) if run.device.type != "cuda" else ckpt["rng"]["data"])
    if run.device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
    run.say(f"resumed from {run.out / 'last.pt'} after epoch {ckpt['epoch']}")
    return {"start_epoch": ckpt["epoch"] + 1, "best": ckpt["best_metric"], "best_epoch": ckpt["best_epoch"],
            "history": ckpt["history"], "best_state": ckpt.get("best_model")}


def _validate(run: Run, model: nn.Module, row: dict[str, Any]) -> dict[str, Any]:
    if not len(run.val_idx):
        return {"val_loss": row["train_loss"], "val_acc": row["train_acc"], "val_top5": None}
    idx = run.val_idx.to(run.device)
    m = metrics_from_probs(predict(model, run.data.train_images[idx], run.pipeline), run.data.train_labels[idx],
                           run.data.num_classes)
    return {"val_loss": m["loss"], "val_acc": m["top1"], "val_top5": m["top5"]}


def _save_epoch(run: Run, optimizer, scheduler, scaler, ema, g, epoch, best, best_epoch, best_state, history) -> None:
    device, model = run.device, run.model
    save_checkpoint(run.out / "last.pt", {
        "model_name": run.name, "model_args": model.model_args, "model": _cpu(model.state_dict()),
        "best_model": best_state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "ema": ema.state_dict() if ema is not None else None, "epoch": epoch, "best_metric": best,
        "best_epoch": best_epoch, "config": run.cfg.to_dict(), "history": history,
        "pipeline": _pipeline_dict(run.pipeline), "classes": list(run.data.classes),
        "input_shape": list(run.input_shape),
        "rng": {"torch": torch.get_rng_state(), "data": g.get_state().cpu(),
                "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None},
    })
    write_metrics_csv(run.out / "metrics.csv", history)
    run.saved_epoch = epoch


def finish(run: Run, outcome: Outcome) -> dict[str, Any]:
    """The test set, once, with the weights that did best on validation; the report, weights and plots."""
    cfg, data, device = run.cfg, run.data, run.device
    final = copy.deepcopy(run.model)
    if outcome.best_state is not None:
        final.load_state_dict(outcome.best_state)
    t0 = time.perf_counter()
    probs = test_probs(run, final, outcome.pre_logits)
    test_time = time.perf_counter() - t0
    m = metrics_from_probs(probs, data.test_labels, data.num_classes)
    history = outcome.history
    report = {
        "model": run.name, "data": cfg.data, "test_top1": m["top1"], "test_top5": m["top5"], "test_loss": m["loss"],
        "best_epoch": outcome.best_epoch, "best_val_acc": outcome.best_val,
        "per_class_accuracy": dict(zip(data.classes, m["per_class"])), "confusion": m["confusion"],
        "classes": list(data.classes), "train_time_s": outcome.train_time, "test_time_s": test_time,
        "images_per_s": sum(r["images_per_s"] for r in history) / max(1, len(history)), "epochs": cfg.epochs,
        "config": cfg.to_dict(), "device": str(device), "processes": run.dist.world,
        "cached_features": outcome.pre_logits is not None,
    }
    if run.dist.main:
        final_ckpt = {"model_name": run.name, "model_args": run.model.model_args, "model": _cpu(final.state_dict()),
                      "config": cfg.to_dict(), "pipeline": _pipeline_dict(run.pipeline), "classes": list(data.classes),
                      "input_shape": list(run.input_shape), "epoch": cfg.epochs}
        save_checkpoint(run.out / "best.pt", final_ckpt)
        write_json(run.out / "report.json", report)
        write_json(run.out / "config.json", cfg.to_dict())
        plot_curves(run.out / "curves.png", history)
        plot_confusion(run.out / "confusion.png", m["confusion"], list(data.classes))
        if cfg.explain:
            from ..explain.mistakes import explain_confusions

            page = explain_confusions(final.to(device).eval(), data.test_images, data.test_labels, probs.cpu(),
                                      run.pipeline, list(data.classes), cfg.explain, run.out / "explain",
                                      f"{run.name} on {cfg.data}: its confusions, explained")
            report["explain"] = str(page.relative_to(run.out))
            write_json(run.out / "report.json", report)
            run.say(f"confusions explained: {page}")
        which = "evaluation" if "step" in (history[-1] if history else {}) else "epoch"
        run.say(f"test accuracy {m['top1']:.4f} (top-5 {m['top5']:.4f}) with the weights of {which} "
                f"{outcome.best_epoch}; {outcome.train_time:.1f} s training, {test_time:.1f} s testing "
                f"{len(data.test_labels):,} images")
        run.say(f"report: {run.out / 'report.json'}  plots: {run.out / 'curves.png'}, {run.out / 'confusion.png'}  "
                f"weights: {run.out / 'best.pt'}")
    return report


def test_probs(run: Run, model: nn.Module, pre_logits: Callable[[torch.Tensor], torch.Tensor] | None = None
               ) -> torch.Tensor:
    """Softmax probabilities of the test images, through ``cfg.engine`` where it is not eager.

    ``pre_logits``: the frozen part's pass, when only the classifier trained (then ``model``'s classifier
    finishes it).
    """
    images = run.data.test_images
    if pre_logits is not None:
        fc = model.get_classifier().eval()
        engine = lambda x: fc(pre_logits(x))  # noqa: E731
    elif run.cfg.engine == "eager" and run.cfg.precision == "fp32":
        return predict(model, images.to(run.device), run.pipeline)
    else:
        from ..runtime import build_engine

        engine = build_engine(model, run.input_shape, engine=run.cfg.engine, precision=run.cfg.precision,
                              device=run.device, log=run.say)
    with torch.no_grad():
        return torch.cat([engine(run.pipeline(images[i:i + 256].to(run.device))).float().softmax(1)
                          for i in range(0, len(images), 256)])


def prepare_data(cfg: TrainConfig) -> ImageDataset:
    """The dataset, restricted to ``cfg.classes`` (relabelled) and ``cfg.limit_per_class`` images per class."""
    size, resize = decode_size(cfg)
    data = load_dataset(cfg.data, cfg.data_root, image_size=size, resize=resize)
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
    if cfg.limit_test:
        data.test_images, data.test_labels = data.test_images[:cfg.limit_test], data.test_labels[:cfg.limit_test]
    return data


def decode_size(cfg: TrainConfig) -> tuple[int, int | None]:
    """(side, shorter-side resize) that a folder dataset is decoded at: what the run's model needs.

    The pretrained weights' resize and centre crop when fine-tuning, else the model's own input size
    (LeNet-5: 32); ``--image-size`` overrides both.
    """
    from ..preprocess import default_preprocessing
    from ..registry import model_info

    info = model_info(cfg.model)
    if cfg.image_size:
        return cfg.image_size, cfg.image_size
    prep = _weights_preprocessing(cfg) if cfg.weights else None
    prep = prep or default_preprocessing(info.input_size[1])
    return prep.crop, prep.resize


def _weights_preprocessing(cfg: TrainConfig):
    """The preprocessing ``cfg.weights`` were trained with: a tag's own, else the model's registered one."""
    from ..pretrained import resolve
    from ..registry import model_info

    info = model_info(cfg.model)
    spec = None if Path(cfg.weights).exists() else resolve(info, cfg.weights)
    return spec.preprocessing if spec is not None else info.preprocessing


def check_input_size(model: nn.Module, name: str, shape: tuple[int, int, int]) -> None:
    """One image of ``shape`` through the model, before any work: a model with a fixed input (LeNet-5's C5,
    any net without adaptive pooling) refuses another size with one line naming the size it needs."""
    from ..errors import InputSizeError
    from ..registry import model_info

    param = next(model.parameters())
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=param.device, dtype=param.dtype))
    except InputSizeError:
        raise
    except RuntimeError as exc:
        need = model_info(name).input_size[1]
        raise CnnzooError(f"{name} takes {need}x{need} images, not {shape[1]}x{shape[2]} (it has no adaptive "
                          f"pooling); use --image-size {need}, or leave --image-size out") from exc
    finally:
        model.train(was_training)


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
    side = pipeline.size or data.image_shape[1]
    check_input_size(model, name, (data.image_shape[0], side, side))
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
        pre = _weights_preprocessing(cfg)
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
