"""Whether a map explains the model: two numbers a user can choose a method by.

- The model-randomisation sanity check of Adebayo et al. 2018, "Sanity Checks for Saliency Maps"
  (https://arxiv.org/abs/1810.03292): the same method on the same images and targets, with the weights
  re-initialised top-down (the classifier head, then each ``feature_info`` stage from the deepest,
  cumulatively); the Spearman rank correlation of each map with the trained model's, averaged over images.
  A method whose maps barely change once the head and the top stage are random does not explain this model.
- Deletion and insertion (Petsiuk et al. 2018, RISE, https://arxiv.org/abs/1806.07421): pixels removed
  (set to the preprocessing's mean, 0 after normalisation) or inserted into a blurred copy, most
  important first; the area under the target class's probability over the fraction of pixels. A faithful
  map has a low deletion AUC and a high insertion AUC.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .methods import Explainer

#: correlation at or above which, with the head and top stage random, a method is flagged
FLAG_AT = 0.5


def stage_groups(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[str, list[str]]]:
    """The model's leaf modules with parameters, grouped by stage in the order of a forward pass, deepest first:
    ``("head", [...])`` (after the last stage), then each ``feature_info`` stage with the leaves it runs."""
    order: list[str] = []
    ends: dict[str, int] = {}
    stages = {f.module for f in getattr(model, "feature_info", ())}

    def ran(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if name in stages:
                ends.setdefault(name, len(order))
            elif name not in order:
                order.append(name)
        return hook

    handles = [m.register_forward_hook(ran(name)) for name, m in model.named_modules()
               if name in stages or (name and next(m.children(), None) is None
                                     and next(m.parameters(recurse=False), None) is not None)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    groups: list[tuple[str, list[str]]] = []
    start = 0
    for name, end in sorted(ends.items(), key=lambda kv: kv[1]):
        groups.append((name, order[start:end]))
        start = end
    groups.append(("head", order[start:]))
    return [g for g in reversed(groups) if g[1]]


def reinitialise(model: nn.Module, names: Sequence[str], seed: int = 0) -> None:
    """Each named module's ``reset_parameters()`` (its framework initialisation), seeded."""
    torch.manual_seed(seed)
    for n in names:
        m = model.get_submodule(n)
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (ties ranked by their average)."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


@dataclass
class SanityRow:
    """After randomising everything down to ``stage`` (inclusive): the mean rank correlation with the trained maps."""

    stage: str
    correlation: float


def randomisation_check(model: nn.Module, images: Tensor, method: str, targets: Sequence[int],
                        layer: str | None = None, maps: np.ndarray | None = None, stages: int | None = None,
                        **kwargs) -> list[SanityRow]:
    """Adebayo et al.'s cascading randomisation of ``model`` for ``method`` (``stages``: how many from the top)."""
    shape = tuple(images.shape[1:])
    if maps is None:
        maps = Explainer(model, method, shape, layer, **kwargs)(images, targets)
    work = copy.deepcopy(model).eval()
    rows = []
    done: list[str] = []
    for i, (stage, names) in enumerate(stage_groups(work, shape)):
        if stages is not None and i >= stages:
            break
        reinitialise(work, names, seed=i)
        done.append(stage)
        random_maps = Explainer(work, method, shape, layer, **kwargs)(images, targets)
        rows.append(SanityRow(stage, float(np.mean([spearman(a, b) for a, b in zip(maps, random_maps)]))))
    return rows


def flagged(rows: Sequence[SanityRow]) -> bool:
    """Whether the maps survive randomising the head and the top stage (correlation at or above :data:`FLAG_AT`)."""
    top = rows[:2]
    return bool(top) and min(r.correlation for r in top) >= FLAG_AT


def _blur(x: Tensor) -> Tensor:
    k = max(3, (min(x.shape[-2:]) // 8) | 1)
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


@torch.no_grad()
def deletion_insertion(model: nn.Module, images: Tensor, maps: np.ndarray, targets: Sequence[int],
                       steps: int = 16, batch_size: int = 64) -> tuple[float, float]:
    """Petsiuk et al.'s deletion and insertion AUC, each the mean over images (trapezoid over ``steps`` + 1 points)."""
    model = model.eval()
    deletion, insertion = [], []
    n_pix = images.shape[-1] * images.shape[-2]
    for x, m, t in zip(images, maps, targets):
        order = torch.from_numpy(np.argsort(-m.ravel(), kind="stable").copy())
        counts = [round(n_pix * k / steps) for k in range(steps + 1)]
        masks = torch.zeros(steps + 1, n_pix)
        for k, c in enumerate(counts):
            masks[k, order[:c]] = 1
        masks = masks.view(steps + 1, 1, *x.shape[-2:])
        blurred = _blur(x[None])[0]
        deleted = x * (1 - masks)
        inserted = blurred * (1 - masks) + x * masks
        for curve, batch in ((deletion, deleted), (insertion, inserted)):
            probs = torch.cat([model(batch[i:i + batch_size]).softmax(1)[:, t] for i in range(0, len(batch), batch_size)])
            curve.append(float(np.trapezoid(probs.numpy(), dx=1 / steps)))
    return float(np.mean(deletion)), float(np.mean(insertion))
