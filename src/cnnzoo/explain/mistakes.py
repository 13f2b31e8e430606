"""A trained classifier's confusions, explained: ``--explain N`` of ``cnnzoo finetune``, ``train`` and ``eval``.

For each of the most frequent confusions "class A taken for class B" on the test set, the page shows the
``N`` errors the model was surest of (Grad-CAM of the class it wrongly chose: what it looked at to say B)
beside the ``N`` images of A it got right with the most confidence (Grad-CAM of A). Seeing both is how an
engineer tells a model that looks at the object from one that learned a shortcut (a background, a border).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from .page import Card, overlay, png_bytes, write_page

#: the confusions a page shows, most frequent first
MAX_PAIRS = 5
METHOD = "gradcam"


@dataclass(frozen=True)
class Confusion:
    """``count`` test images of class ``true`` predicted as ``predicted``."""

    true: int
    predicted: int
    count: int


def confusions(probs: Tensor, labels: Tensor, limit: int = MAX_PAIRS) -> list[Confusion]:
    """The ``limit`` most frequent (true, predicted) pairs of the errors, most frequent first (ties: by class)."""
    pred = probs.argmax(1)
    wrong = pred != labels
    pairs, counts = torch.unique(torch.stack([labels[wrong], pred[wrong]], 1), dim=0, return_counts=True)
    order = sorted(range(len(counts)), key=lambda i: (-int(counts[i]), *pairs[i].tolist()))
    return [Confusion(int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i])) for i in order[:limit]]


def most_confident(probs: Tensor, labels: Tensor, true: int, predicted: int, n: int) -> list[int]:
    """Indices of the ``n`` images of class ``true`` predicted as ``predicted`` with the highest probability."""
    chosen = ((labels == true) & (probs.argmax(1) == predicted)).nonzero().flatten()
    order = probs[chosen, predicted].argsort(descending=True, stable=True)
    return chosen[order[:n]].tolist()


def explain_confusions(model: nn.Module, images: Tensor, labels: Tensor, probs: Tensor,
                       pipeline: Callable[[Tensor], Tensor], classes: list[str], n: int, out: Path,
                       title: str, batch_size: int = 32) -> Path:
    """``out/index.html`` (and one PNG per overlay beside it): the confusions of ``model`` on the test set.

    ``images`` are the test images as stored (uint8, ``N x C x H x W``), ``probs`` the model's softmax on
    them, ``pipeline`` the evaluation preprocessing (``fit_size`` gives the picture shown).
    """
    from .methods import Explainer

    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*-error-*.png"), *out.glob("*-right-*.png")]:
        old.unlink()  # a previous page's pictures (train's, then eval's with another N) would mix with these
    pairs = confusions(probs, labels)
    cards: list[Card] = []
    explainer = None
    for k, c in enumerate(pairs):
        errors = most_confident(probs, labels, c.true, c.predicted, n)
        right = most_confident(probs, labels, c.true, c.true, n)
        chosen = errors + right
        x = torch.cat([pipeline(images[i:i + 1]) for i in chosen]).to(next(model.parameters()).device)
        if explainer is None:
            explainer = Explainer(model, METHOD, tuple(x.shape[1:]))
        targets = [c.predicted] * len(errors) + [c.true] * len(right)
        maps = np.concatenate([explainer(x[i:i + batch_size], targets[i:i + batch_size])
                               for i in range(0, len(x), batch_size)])
        shown = _pictures(pipeline, images[chosen])
        for j, (i, t, img, m) in enumerate(zip(chosen, targets, shown, maps)):
            kind = "error" if j < len(errors) else "right"
            png = png_bytes(overlay(img, m))
            name = f"{k + 1}-{kind}-{i}.png"
            (out / name).write_bytes(png)
            top = probs[i].topk(min(3, len(classes)))
            cards.append(Card(f"{classes[c.true]} taken for {classes[c.predicted]} ({c.count}x): test image {i}, "
                              f"{'wrong' if kind == 'error' else 'right'}",
                              png_bytes(overlay(img, np.zeros(img.shape[:2]), alpha=0)),
                              [(classes[v], float(p)) for p, v in zip(top.values.tolist(), top.indices.tolist())],
                              f"{classes[t]} ({100 * float(probs[i, t]):.1f}%)", {f"{METHOD} at {explainer.layer}": png}))
    summary = ("no test image was misclassified" if not pairs else
               "confusions, most frequent first: " + "; ".join(
                   f"{classes[c.true]} -> {classes[c.predicted]} {c.count}x" for c in pairs) +
               f". Each: the {n} errors the model was surest of (Grad-CAM of the class it chose), then the {n} "
               "images of the true class it got right with the most confidence (Grad-CAM of that class).")
    write_page(out / "index.html", title, summary, cards)
    return out / "index.html"


def _pictures(pipeline: Callable[[Tensor], Tensor], images: Tensor) -> np.ndarray:
    """The images as the model sees them before normalisation: ``N x H x W x 3`` in [0, 1]."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images.float()
    x = pipeline.fit_size(x) if hasattr(pipeline, "fit_size") else x
    x = x.clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x[:, :3].permute(0, 2, 3, 1).numpy()
