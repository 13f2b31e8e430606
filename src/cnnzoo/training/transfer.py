"""Transfer learning through the model contract: parameter groups by stage, freezing, the 2x2 rule.

Groups come from ``feature_info`` and ``get_classifier`` alone — no architecture is sliced by hand:
``stage0`` is the stem and the first stage (up to ``feature_info[0].module``), ``stage1``… the stages
after it, ``head`` whatever lies between the last stage and the classifier (VGG's FC6/FC7, a final BN,
EfficientNet's 1x1 head conv), and ``classifier`` the final layer (and auxiliary ones).

Strategies:

- ``linear``: only the classifier trains;
- ``top:K``: the last K stages, the head and the classifier train (optionally re-initialised);
- ``full``: everything trains, with discriminative learning rates — group ``i`` of ``n`` gets
  ``lr / spread ** ((n - 1 - i) / (n - 1))``, a geometric spread from ``lr / spread`` for the stem to
  ``lr`` for the classifier (fastai's ``slice(lr / spread, lr)``), after ``head_epochs`` classifier-only epochs;
- ``auto``: the 2x2 rule of the lecture (see :func:`choose_strategy`).

Frozen means frozen: frozen parameters get no gradient, and BatchNorm layers that hold only frozen
parameters stay in inference mode (their running statistics untouched) even when the model trains.
"""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import CnnzooError


@dataclass
class Group:
    name: str
    params: list[nn.Parameter]
    modules: list[nn.Module]


def parameter_groups(model: nn.Module) -> list[Group]:
    """The model's parameters split by stage, in forward order: stage0 … stageN-1, head, classifier.

    A module belongs to the first stage whose ``feature_info`` module it starts running before that module
    has finished, as timed by one eval-mode pass at a small input (hooks only). A model may register its
    modules in another order than it runs them (FractalNet keeps its blocks and the pools that end its
    stages in two lists); where no pass can run, the registration order stands in.
    """
    start, end = _forward_timeline(model) or _registration_timeline(model)
    heads = [model.classifier_name, *getattr(model, "aux_classifier_names", ())]
    bounds = [end[f.module] for f in model.feature_info]
    groups = [Group(f"stage{i}", [], []) for i in range(len(bounds))] + [Group("head", [], []), Group("classifier", [], [])]
    for mod_name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if any(mod_name == h or mod_name.startswith(h + ".") for h in heads):
            target = groups[-1]
        else:
            idx = start[mod_name]
            target = next((groups[k] for k, b in enumerate(bounds) if idx <= b), groups[-2])
        target.modules.append(module)
        target.params.extend(own)
    return [g for g in groups if g.params or g.name == "classifier"]


Timeline = tuple[dict[str, float], dict[str, float]]


def _registration_timeline(model: nn.Module) -> Timeline:
    start = {n: float(i) for i, (n, _) in enumerate(model.named_modules())}
    end = {f.module: max(i for n, i in start.items() if n == f.module or n.startswith(f.module + "."))
           for f in model.feature_info}
    return start, end


@torch.no_grad()
def _forward_timeline(model: nn.Module) -> Timeline | None:
    """When each module starts and finishes in an eval-mode pass; None if the pass cannot run.

    A module the pass never runs (an auxiliary classifier) is placed right after the last sibling
    registered before it that ran, which is where the registration order puts it.
    """
    in_chans = getattr(model, "in_chans", None)
    param = next(model.parameters(), None)
    if in_chans is None or param is None:
        return None
    size = max(getattr(model, "min_input_size", 1), 32)
    tick = itertools.count()
    start: dict[str, float] = {}
    end: dict[str, float] = {}

    def on_start(name: str):
        def hook(module: nn.Module, args: Any) -> None:
            start.setdefault(name, next(tick))
        return hook

    def on_end(name: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            end.setdefault(name, next(tick))
        return hook

    modes = {m: m.training for m in model.modules()}
    handles = [h for n, m in model.named_modules()
               for h in (m.register_forward_pre_hook(on_start(n)), m.register_forward_hook(on_end(n)))]
    try:
        model.eval()
        model(torch.zeros(1, in_chans, size, size, device=param.device, dtype=param.dtype))
    except Exception:  # noqa: BLE001 - any failure leaves the registration order, as before
        return None
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    if any(f.module not in end for f in model.feature_info):
        return None
    for n, _ in model.named_modules():
        if n not in start:
            parts = n.split(".")
            i = next(i for i in range(len(parts) - 1, -1, -1) if ".".join(parts[:i]) in start)
            parent = ".".join(parts[:i])
            siblings = [f"{parent}.{c}" if parent else c for c, _ in model.get_submodule(parent).named_children()]
            ran = [c for c in siblings[:siblings.index(".".join(parts[:i + 1]))] if c in end]
            start[n] = end[ran[-1]] + 0.5 if ran else start[parent] + 0.5
    return start, end


def parse_strategy(strategy: str) -> tuple[str, int]:
    kind, _, k = strategy.partition(":")
    if kind in ("linear", "full", "auto", "scratch") and not k:
        return kind, 0
    if kind == "top" and k.isdigit() and int(k) >= 1:
        return kind, int(k)
    raise CnnzooError(f"unknown strategy {strategy!r}; use linear, top:K (K >= 1), full, auto or scratch")


def trainable_groups(groups: list[Group], strategy: str) -> list[bool]:
    """Which groups train under ``strategy`` (after any head-only warm-up)."""
    kind, k = parse_strategy(strategy)
    n_stages = sum(g.name.startswith("stage") for g in groups)
    if kind in ("full", "scratch"):
        return [True] * len(groups)
    if kind == "linear":
        return [g.name == "classifier" for g in groups]
    if k > n_stages:
        raise CnnzooError(f"top:{k} asks for more stages than the model's {n_stages}")
    return [not g.name.startswith("stage") or int(g.name[5:]) >= n_stages - k for g in groups]


def discriminative_lrs(groups: list[Group], lr: float, spread: float) -> list[float]:
    """``lr / spread`` for the first group up to ``lr`` for the last, geometrically."""
    n = len(groups)
    if n == 1 or spread <= 1:
        return [lr] * n
    return [lr / spread ** ((n - 1 - i) / (n - 1)) for i in range(n)]


def set_frozen(groups: list[Group], trainable: list[bool], bn_mode: str = "frozen") -> None:
    """Freeze the groups not trainable; their BatchNorm layers stay in eval mode unless ``bn_mode="train"``."""
    for group, train in zip(groups, trainable):
        for p in group.params:
            p.requires_grad_(train)
        for m in group.modules:
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                _pin_eval(m, pinned=not train and bn_mode == "frozen")


def _pin_eval(bn: nn.Module, pinned: bool) -> None:
    if pinned:
        bn.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), bn)
        bn.eval()
    elif "train" in bn.__dict__:
        del bn.train


def reinit(groups: list[Group], trainable: list[bool]) -> None:
    """Re-initialise the trainable stages (``top:K --reinit``): each layer's own ``reset_parameters``."""
    for group, train in zip(groups, trainable):
        if train and group.name != "classifier":
            for m in group.modules:
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()


SMALL_PER_CLASS = 200  # below this many training images per class a dataset counts as small


def choose_strategy(per_class: float, similar: bool) -> tuple[str, str]:
    """The 2x2 rule (cs231n lecture 9; Yosinski et al. 2014): returns (strategy, the reason in words)."""
    size = "small" if per_class < SMALL_PER_CLASS else "large"
    data = "similar" if similar else "different"
    cell = f"{data} data, {size} dataset ({per_class:.0f} images per class; small is < {SMALL_PER_CLASS})"
    if similar and size == "small":
        return "linear", f"{cell}: retrain only the classifier"
    if similar:
        return "top:1", f"{cell}: retrain the top stage and the classifier"
    if size == "large":
        return "full", f"{cell}: retrain the whole network, earlier stages more gently"
    # The hard cell. The lecture: "try a linear classifier from different stages". Measured
    # (benchmarks/transfer_defaults.py, EfficientNet-Lite0 ImageNet -> Fashion-MNIST, 10 images per class):
    # a linear classifier on the cached pre-logits 0.757 test top-1 in 207 s, top:2 0.684 in 916 s.
    return "linear", (f"{cell}: the hard cell — too few images to retrain stages without overfitting, so "
                      "a linear classifier on the frozen features (measured better than top:2 here; an "
                      "earlier stage's features: `cnnzoo features --layer` or `--solver logreg --layer`)")


@torch.no_grad()
def measure_similarity(model: nn.Module, images: torch.Tensor, pipeline, n: int = 256) -> float:
    """Mean top-1 softmax confidence of the *pretrained* classifier on up to ``n`` new images.

    A cheap proxy for "is this data like the pretraining data": a network shown images like its own
    training set tends to answer confidently; on foreign images its confidence spreads out. Call it
    before the classifier is replaced. Data counts as similar at 0.5 and above (``SIMILAR_CONFIDENCE``).
    """
    model.eval()
    x = pipeline(images[:n])
    out = model(x)
    logits = out.logits if hasattr(out, "logits") else out
    return logits.float().softmax(1).max(1).values.mean().item()


SIMILAR_CONFIDENCE = 0.5
