"""Fine-tuning with a frozen part that runs once per image: its outputs are computed once and cached.

With ``linear`` nothing below the classifier trains, and with ``top:K`` nothing below the last K stages;
running that frozen part again every epoch recomputes the same numbers (eval mode, no augmentation).
Here it runs once over the training and validation images, and the trainable part trains for a budget
of optimiser steps on the cached outputs — the recipe of every reference (Razavian et al.'s CNN codes,
Keras' "extract features once" guide), and what makes ten images per class get hundreds of updates in
seconds.

The cut is generic, through the model contract: the cache holds ``pre_logits`` (``linear``) or the output
of the last frozen stage's ``feature_info`` module (``top:K``). To run the trainable part from a cached
batch, the frozen modules that finish before the cut are skipped (their ``forward`` returns its input),
and the cut module returns the cached batch. Whether that reproduces the whole network is checked on
real images before it is used; a model where it does not falls back to the ordinary loop.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .transfer import parse_strategy

PRE_LOGITS = "pre_logits"
#: the cached outputs of training and validation images may take at most this many bytes
CACHE_BYTES = 6 * 2 ** 30
#: at least this many optimiser steps, however few the images: a linear classifier's steps cost
#: microseconds, top:K's a pass through the top stages (benchmarks/transfer_defaults.py measured both)
MIN_STEPS = {"linear": 1000, "top": 100}
#: validation this many times over the run (the best weights are kept)
EVALS = 10


@dataclass
class FrozenPlan:
    """Where the network is cut: ``boundary`` (``pre_logits`` or a stage's module) and the modules skipped."""

    boundary: str
    skipped: tuple[str, ...] = ()


class PreLogits(nn.Module):
    """A model's ``pre_logits`` vector as a module of its own (so an inference engine can export it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def plan(model: nn.Module, strategy: str, groups: list, augment: tuple[str, ...], bn: str
         ) -> tuple[FrozenPlan | None, str]:
    """Where to cut ``model`` for ``strategy``, or None with the reason the ordinary loop is used."""
    kind, k = parse_strategy(strategy)
    if kind not in ("linear", "top"):
        return None, f"{strategy} trains the whole network"
    if augment:
        return None, f"augmentation ({','.join(augment)}) changes the frozen part's inputs every epoch"
    if bn == "train":
        return None, "--bn train updates the frozen part's statistics"
    if kind == "linear":
        return FrozenPlan(PRE_LOGITS), ""
    n_stages = sum(g.name.startswith("stage") for g in groups)
    first = n_stages - k
    if first <= 0:
        return None, f"top:{k} retrains every stage"
    boundary = model.feature_info[first - 1].module
    return FrozenPlan(boundary, _skippable(model, boundary)), ""


@torch.no_grad()
def _skippable(model: nn.Module, boundary: str) -> tuple[str, ...]:
    """The outermost modules whose every call ends before ``boundary`` starts, as one eval pass shows."""
    tick = itertools.count()
    first_start: dict[str, int] = {}
    last_end: dict[str, int] = {}

    def pre(name: str) -> Callable:
        def hook(module: nn.Module, args: Any) -> None:  # a hook that returns a value replaces the input
            first_start.setdefault(name, next(tick))
        return hook

    def post(name: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            last_end[name] = next(tick)
        return hook

    handles = [h for n, m in model.named_modules() if n
               for h in (m.register_forward_pre_hook(pre(n)), m.register_forward_hook(post(n)))]
    param = next(model.parameters())
    size = max(getattr(model, "min_input_size", 1), 32)
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, model.in_chans, size, size, device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    cut = first_start[boundary]
    before = {n for n in last_end if last_end[n] < cut and not boundary.startswith(n + ".")}
    return tuple(n for n in before if n.rpartition(".")[0] not in before)


@contextlib.contextmanager
def from_cache(model: nn.Module, plan: FrozenPlan, batch: Tensor) -> Iterator[None]:
    """While active, ``model(placeholder)`` runs only the part after the cut, on the cached ``batch``."""
    patched = [model.get_submodule(n) for n in plan.skipped]
    cut = model.get_submodule(plan.boundary)
    try:
        for m in patched:
            m.forward = _passthrough
        cut.forward = lambda *args, **kwargs: batch
        yield
    finally:
        for m in (*patched, cut):
            m.__dict__.pop("forward", None)


def _passthrough(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def tail(model: nn.Module, plan: FrozenPlan, batch: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    """The logits of the trainable part for a cached batch."""
    if plan.boundary == PRE_LOGITS:
        return model.get_classifier()(batch)
    placeholder = torch.zeros((1, *input_shape), device=batch.device, dtype=batch.dtype).expand(len(batch), -1, -1, -1)
    with from_cache(model, plan, batch):
        out = model(placeholder)
    return out.logits if hasattr(out, "logits") else out


class _Captured(Exception):
    pass


def frozen_outputs(model: nn.Module, plan: FrozenPlan, x: Tensor, forward: Callable[[Tensor], Tensor] | None = None
                   ) -> Tensor:
    """The frozen part's output for a prepared batch ``x`` (``forward``: an engine for ``pre_logits``)."""
    if plan.boundary == PRE_LOGITS:
        return (forward or PreLogits(model))(x)
    captured: list[Tensor] = []

    def hook(module: nn.Module, args: Any, output: Tensor) -> None:
        captured.append(output)
        raise _Captured

    handle = model.get_submodule(plan.boundary).register_forward_hook(hook)
    try:
        model(x)
    except _Captured:
        pass
    finally:
        handle.remove()
    return captured[0]


@torch.no_grad()
def verify(model: nn.Module, plan: FrozenPlan, x: Tensor) -> float:
    """Max abs difference between the whole network and cache-then-tail on ``x``, relative to the logits' scale."""
    model.eval()
    whole = model(x)
    whole = whole.logits if hasattr(whole, "logits") else whole
    try:
        cut = tail(model, plan, frozen_outputs(model, plan, x), tuple(x.shape[1:]))
    except (RuntimeError, ValueError, TypeError, IndexError):  # the tail cannot run on its own: no cut
        return math.inf
    if cut.shape != whole.shape:
        return math.inf
    return ((whole - cut).abs().max() / whole.abs().max().clamp(min=1e-6)).item()


@torch.no_grad()
def compute_cache(model: nn.Module, plan: FrozenPlan, images: Tensor, pipeline: Any, batch_size: int = 64,
                  forward: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """The frozen part's outputs for uint8 ``images`` (shaped by ``pipeline``), batch by batch, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    out = [frozen_outputs(model, plan, pipeline(images[i:i + batch_size].to(device)), forward).float()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def default_steps(n_train: int, batch_size: int, epochs: int, steps: int | None, strategy: str = "linear") -> int:
    """The step budget: ``steps`` if given, else ``epochs`` passes, but never fewer than :data:`MIN_STEPS`."""
    if steps:
        return steps
    return max(MIN_STEPS[parse_strategy(strategy)[0]], epochs * math.ceil(n_train / batch_size))


def train_steps(model: nn.Module, plan: FrozenPlan, cache: Tensor, labels: Tensor, val_cache: Tensor,
                val_labels: Tensor, optimizer: torch.optim.Optimizer, scheduler: Any, steps: int, batch_size: int,
                input_shape: tuple[int, ...], g: torch.Generator, label_smoothing: float = 0.0,
                say: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], dict[str, Tensor], int]:
    """``steps`` optimiser steps on the cached outputs; returns (history, best weights, best evaluation).

    Validation runs :data:`EVALS` times; the weights of the best validation accuracy are kept (the last
    ones where there is no validation split).
    """
    from .trainer import optimise

    n = len(labels)
    batch_size = min(batch_size, n)
    every = max(1, steps // EVALS)
    history: list[dict[str, Any]] = []
    best, best_round, best_state = -1.0, 0, None
    order = torch.empty(0, dtype=torch.long)
    loss_sum = correct = seen = 0.0
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=g)])
        idx, order = order[:batch_size], order[batch_size:]
        model.train()
        logits = tail(model, plan, cache[idx], input_shape)
        loss = F.cross_entropy(logits, labels[idx], label_smoothing=label_smoothing)
        optimise(loss, optimizer, scheduler, f"at step {step}")
        loss_sum += loss.item() * len(idx)
        correct += (logits.argmax(1) == labels[idx]).sum().item()
        seen += len(idx)
        if step % every and step != steps:
            continue
        row: dict[str, Any] = {"epoch": len(history) + 1, "step": step, "lr": optimizer.param_groups[-1]["lr"],
                               "train_loss": loss_sum / seen, "train_acc": correct / seen}
        if len(val_labels):
            val = evaluate_cache(model, plan, val_cache, val_labels, input_shape)
            row |= {"val_loss": val["loss"], "val_acc": val["top1"], "val_top5": None}
        else:
            row |= {"val_loss": row["train_loss"], "val_acc": row["train_acc"], "val_top5": None}
        elapsed = time.perf_counter() - t0
        row |= {"images_per_s": seen / elapsed, "epoch_time": elapsed}
        history.append(row)
        if row["val_acc"] > best or not len(val_labels):
            best, best_round = row["val_acc"], row["epoch"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        shown = f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  " if len(val_labels) else ""
        say(f"step {step:>5}/{steps}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} acc "
            f"{row['train_acc']:.4f}  {shown}{elapsed:.1f} s")
        loss_sum = correct = seen = 0.0
        t0 = time.perf_counter()
    return history, best_state, best_round


@torch.no_grad()
def evaluate_cache(model: nn.Module, plan: FrozenPlan, cache: Tensor, labels: Tensor, input_shape: tuple[int, ...],
                   batch_size: int = 512) -> dict[str, float]:
    model.eval()
    logits = torch.cat([tail(model, plan, cache[i:i + batch_size], input_shape)
                        for i in range(0, len(cache), batch_size)])
    return {"top1": (logits.argmax(1) == labels).float().mean().item(),
            "loss": F.cross_entropy(logits, labels).item()}
