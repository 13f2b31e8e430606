"""The training loop: small functions that take what they use and return metrics.

``fit(config)`` is the whole run: data in memory on the device, the model (or its small-image variant),
the paper's optimiser and schedule, a checkpoint every epoch, validation on a held-out part of the
training set, and one evaluation on the test set at the end with the best validation weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..base import AuxOutputs
from ..datasets.readers import ImageDataset
from ..errors import CnnzooError
from ..registry import model_info
from .augment import BatchPipeline
from .config import TrainConfig


class TrainingDiverged(CnnzooError):
    """The loss became NaN or infinite."""


@dataclass
class Dist:
    """This process's place in a torchrun job (world 1 when run alone)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), world)

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        if self.world == 1:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()


# ---------------------------------------------------------------------------------------------- setup

def pick_device(name: str) -> torch.device:
    """The device of a string that :func:`~cnnzoo.training.config.valid_device` accepts, if this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CnnzooError(f"--device {name} asked for, but no CUDA GPU is available; use --device cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise CnnzooError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CnnzooError("--device mps asked for, but this PyTorch has no MPS (Apple GPU) support; use --device cpu")
    return torch.device(name)


def resolve_model(cfg: TrainConfig, data: ImageDataset) -> tuple[str, BatchPipeline]:
    """The model to build and how batches must be shaped for it.

    Data smaller than the model's minimum goes to the model's small-image variant (``small_input=variant``),
    else is zero-padded when a few pixels short (LeNet: 28 -> 32, as LeCun did), else upsampled to the
    model's default input size.
    """
    info = model_info(cfg.model)
    side = data.image_shape[1]
    name, size, fit = cfg.model, cfg.image_size, "resize"
    if size is None:
        size = side
        if side < info.min_size:
            small = info.small_variant
            if cfg.small_input == "variant" and small and model_info(small).min_size <= side:
                name = small
            elif info.min_size - side <= 4:
                size, fit = info.min_size, "pad"
            else:
                size = info.input_size[1]
    elif size < model_info(name).min_size:
        raise CnnzooError(f"--image-size {size} is below {name}'s minimum of {model_info(name).min_size}")
    return name, BatchPipeline(data.mean, data.std, size if size != side else None, fit, tuple(cfg.augment))


def split_validation(n: int, val_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded permutation split of ``n`` training indices into (train, validation)."""
    if not 0 <= val_size < n:
        raise CnnzooError(f"--val-size must be between 0 and {n - 1}, got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def build_optimizer(cfg: TrainConfig, model: nn.Module, groups: list | None = None) -> torch.optim.Optimizer:
    """The optimiser; with transfer-learning ``groups``, one parameter group per trainable stage.

    Groups that ever train are all in the optimiser from the start (``full``'s warm-up only toggles
    ``requires_grad``), so the optimiser's state has the same shape before and after unfreezing and a
    run resumes across it.
    """
    if groups is None:
        params: Any = [p for p in model.parameters() if p.requires_grad]
    else:
        from .transfer import discriminative_lrs, trainable_groups

        train = trainable_groups(groups, cfg.strategy or "full")
        chosen = [g for g, t in zip(groups, train) if t]
        spread = cfg.lr_spread if cfg.strategy == "full" else 1.0
        params = [{"params": g.params, "lr": lr, "name": g.name}
                  for g, lr in zip(chosen, discriminative_lrs(chosen, cfg.lr, spread))]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise CnnzooError(f"unknown optimizer {cfg.optimizer!r}; use sgd or adamw")


def lr_factor(cfg: TrainConfig, steps_per_epoch: int, total_steps: int | None = None) -> Callable[[int], float] | None:
    """The per-step learning-rate multiplier of ``cfg.schedule`` (None for the plateau rule).

    ``total_steps`` sets the run's length directly (a budget of steps); the warm-up is then
    ``warmup_epochs / epochs`` of it, and plateau, which needs epochs, becomes cosine.
    """
    total = max(1, cfg.epochs * steps_per_epoch if total_steps is None else total_steps)
    warm = int(cfg.warmup_epochs * steps_per_epoch if total_steps is None else cfg.warmup_epochs / cfg.epochs * total)
    if total_steps is not None and cfg.schedule == "plateau":
        return lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))

    def warmup(step: int) -> float | None:
        return (step + 1) / warm if step < warm else None

    if cfg.schedule == "plateau":
        return None
    if cfg.schedule == "constant":
        return lambda s: warmup(s) or 1.0
    if cfg.schedule == "multistep":
        marks = [round(m * total) for m in cfg.milestones]
        return lambda s: warmup(s) or cfg.gamma ** sum(s >= m for m in marks)
    if cfg.schedule == "exponential":
        return lambda s: warmup(s) or cfg.gamma ** ((s // steps_per_epoch) // cfg.step_epochs)
    if cfg.schedule == "cosine":
        return lambda s: warmup(s) or 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
    if cfg.schedule == "onecycle":  # linear up over the warm-up, linear down to zero
        return lambda s: warmup(s) or max(0.0, (total - s) / max(1, total - warm))
    raise CnnzooError(f"unknown schedule {cfg.schedule!r}; use plateau, multistep, exponential, cosine, "
                      "onecycle or constant")


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    factor = lr_factor(cfg, steps_per_epoch)
    if factor is None:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=cfg.gamma,
                                                          patience=cfg.patience)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def distillation_loss(student: Tensor, teacher: Tensor, y: Tensor, temperature: float, alpha: float,
                      label_smoothing: float = 0.0) -> Tensor:
    """Hinton, Vinyals & Dean 2015 (https://arxiv.org/abs/1503.02531): ``alpha * T^2 * KL(softmax(teacher / T) ||
    softmax(student / T)) + (1 - alpha) * CE(student, y)``, the KL averaged over the batch. The ``T^2`` keeps the
    soft targets' gradients on the scale of the hard ones' as T changes (the paper's section 2)."""
    soft = F.kl_div(F.log_softmax(student.float() / temperature, dim=1),
                    F.log_softmax(teacher.float() / temperature, dim=1), reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student, y, label_smoothing=label_smoothing)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard


def loss_fn(cfg: TrainConfig, distill: tuple[float, float] | None = None) -> Callable[..., tuple[Tensor, Tensor]]:
    """Cross-entropy (with label smoothing), plus ``aux_weight`` x each auxiliary head's loss.

    ``distill`` = (temperature, alpha): the main head's loss is :func:`distillation_loss` against the teacher's
    logits, given as ``compute(out, y, teacher_logits)``.
    """

    def compute(out: Any, y: Tensor, teacher: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logits = out.logits if isinstance(out, AuxOutputs) else out
        if teacher is not None and distill is not None:
            loss = distillation_loss(logits, teacher, y, *distill, label_smoothing=cfg.label_smoothing)
        else:
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if isinstance(out, AuxOutputs):
            for aux in out.aux:
                loss = loss + cfg.aux_weight * F.cross_entropy(aux, y, label_smoothing=cfg.label_smoothing)
        return loss, logits

    return compute


def autocast(cfg: TrainConfig, device: torch.device):
    mode = cfg.amp
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "off"
    if mode == "off":
        return torch.autocast(device.type, enabled=False)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
    if dtype is None:
        raise CnnzooError(f"unknown --amp {cfg.amp!r}; use auto, bf16, fp16 or off")
    return torch.autocast(device.type, dtype=dtype)


# ---------------------------------------------------------------------------------------------- loops

def batches(indices: Tensor, batch_size: int, g: torch.Generator, dist: Dist) -> Iterator[tuple[Tensor, slice]]:
    """Shuffled global batches; each process gets its contiguous share of every global batch."""
    order = indices[torch.randperm(len(indices), generator=g, device=g.device).to(indices.device)]
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        if len(batch) < dist.world:  # too few to give every process a sample: skipped by all alike
            break
        per = math.ceil(len(batch) / dist.world)
        yield batch, slice(dist.rank * per, (dist.rank + 1) * per)


def optimise(loss: Tensor, optimizer: torch.optim.Optimizer, scheduler: Any, when: str) -> None:
    """One plain optimisation step on ``loss`` (backward, step, the per-step schedule's step), refused in one
    line where the loss is not finite (``when``: e.g. "at step 12")."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"the loss became {loss.item()} {when}; lower --lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()


def train_one_epoch(model: nn.Module, data: ImageDataset, indices: Tensor, pipeline: BatchPipeline,
                    optimizer: torch.optim.Optimizer, scheduler: Any, cfg: TrainConfig, g: torch.Generator,
                    device: torch.device, dist: Dist, epoch: int, ema: nn.Module | None = None,
                    scaler: torch.amp.GradScaler | None = None, progress: Any = None,
                    teacher: tuple[Tensor, float, float] | None = None,
                    after_backward: Callable[[], None] | None = None) -> dict[str, float]:
    """One pass over the training indices; returns loss, accuracy and images/s (summed over processes).

    ``teacher`` = (logits of every training image, temperature, alpha): knowledge distillation, the loss of
    :func:`distillation_loss` against the cached logits of the batch's images. ``after_backward`` is called once
    the gradients of a step are computed (unscaled), before clipping and the optimiser's step: a regulariser
    that adds its own gradient (``cnnzoo prune --sparsity-epochs``).
    """
    model.train()
    compute = loss_fn(cfg) if teacher is None else loss_fn(cfg, teacher[1:])
    per_step = scheduler if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) else None
    total_loss = correct = seen = 0.0
    t0 = time.perf_counter()
    steps = math.ceil(len(indices) / cfg.batch_size)
    task = progress.add_task(f"epoch {epoch}", total=steps) if progress else None
    for step, (batch, share) in enumerate(batches(indices, cfg.batch_size, g, dist)):
        # Augment the whole global batch on every process, then keep this process's share: the same
        # samples see the same augmentation as in a single-process run.
        x = pipeline(data.train_images[batch.to(data.train_images.device)], g, train=True)[share]
        y = data.train_labels[batch.to(data.train_labels.device)][share]
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(cfg, device):
            if teacher is None:
                loss, logits = compute(model(x), y)
            else:
                loss, logits = compute(model(x), y, teacher[0][batch.to(teacher[0].device)][share])
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss.item()} at epoch {epoch}, step {step + 1}; the last "
                                   "good checkpoint is kept — lower --lr or add --clip-grad")
        # DDP averages gradients over processes; scale so the result is the mean over the global batch.
        scale = len(y) * dist.world / max(1, len(batch))
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss * scale).backward()
            scaler.unscale_(optimizer)
        else:
            (loss * scale).backward()
        if after_backward is not None:
            after_backward()
        if cfg.clip_grad:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if per_step is not None:
            per_step.step()
        if ema is not None:
            ema.update_parameters(model)
        n = len(y)
        total_loss += loss.item() * n
        correct += (logits.argmax(1) == y).sum().item()
        seen += n
        if progress:
            rate = seen * dist.world / (time.perf_counter() - t0)
            progress.update(task, advance=1, description=f"epoch {epoch} loss {total_loss / seen:.3f} "
                                                         f"acc {correct / seen:.3f} {rate:,.0f} img/s")
    if progress:
        progress.remove_task(task)
    total_loss, correct, seen = dist.all_sum([total_loss, correct, seen], device)
    elapsed = time.perf_counter() - t0
    return {"train_loss": total_loss / seen, "train_acc": correct / seen, "images_per_s": seen / elapsed,
            "train_time": elapsed}


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, pipeline: BatchPipeline, batch_size: int = 512,
            tta: str | None = None, dist: Dist | None = None) -> Tensor:
    """Softmax probabilities for ``images`` (uint8), optionally averaged over test-time augmentations.

    ``tta="flip"`` averages the image and its mirror; ``"10crop"`` the four corner and centre crops at
    7/8 of the side (resized back) and their mirrors.
    """
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = pipeline(images[start:start + batch_size])
        views = [x]
        if tta == "flip":
            views.append(x.flip(-1))
        elif tta == "10crop":
            views = [v for c in _five_crops(x) for v in (c, c.flip(-1))]
        elif tta is not None:
            raise CnnzooError(f"unknown --tta {tta!r}; use flip or 10crop")
        probs = torch.stack([F.softmax(_logits(model(v)).float(), dim=1) for v in views]).mean(0)
        out.append(probs)
    return torch.cat(out)


def _five_crops(x: Tensor) -> list[Tensor]:
    h, w = x.shape[-2:]
    ch, cw = max(1, h * 7 // 8), max(1, w * 7 // 8)
    corners = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]
    return [F.interpolate(x[..., i:i + ch, j:j + cw], size=(h, w), mode="bilinear", align_corners=False)
            for i, j in corners]


def _logits(out: Any) -> Tensor:
    return out.logits if isinstance(out, AuxOutputs) else out


def metrics_from_probs(probs: Tensor, labels: Tensor, num_classes: int) -> dict[str, Any]:
    """Top-1, top-5, mean NLL, per-class accuracy and the confusion matrix (rows: true, columns: predicted)."""
    labels = labels.to(probs.device)
    k = min(5, probs.shape[1])
    top = probs.topk(k, dim=1).indices
    pred = top[:, 0]
    confusion = torch.bincount(labels * num_classes + pred, minlength=num_classes ** 2).view(num_classes, num_classes)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float())
    nll = -probs.gather(1, labels[:, None]).clamp(min=1e-12).log().mean()
    return {"top1": (pred == labels).float().mean().item(), "top5": (top == labels[:, None]).any(1).float().mean().item(),
            "loss": nll.item(), "per_class": per_class.tolist(), "confusion": confusion.tolist()}
