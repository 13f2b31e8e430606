"""A linear classifier on a frozen network's features, solved by logistic regression instead of SGD.

cs231n lecture 9's first transfer recipe: "treat the CNN as a fixed feature extractor" and fit a linear
classifier on the CNN codes (Razavian et al. 2014, https://arxiv.org/abs/1403.6382; Donahue et al.'s
DeCAF, https://arxiv.org/abs/1310.1531). The features are computed once, in eval mode, through the
pipeline the weights expect; scikit-learn's L-BFGS then solves the convex problem exactly, which on a CPU
is far faster than epochs of SGD through a frozen network. On ``pre_logits`` features the solution is
folded back into the model's classifier, so the result is an ordinary cnnzoo checkpoint (``best.pt``) that
``cnnzoo eval`` and ``cnnzoo finetune --weights`` take.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CnnzooError
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .features import check_layer, extract_features
from .fit import _pipeline_dict, claim_folder, load_pretrained, prepare_data
from .outputs import plot_confusion, write_json
from .trainer import Dist, metrics_from_probs, pick_device


C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def linear_probe(cfg: TrainConfig, layer: str = "pre_logits", C: float | None = None, log: Any = print,
                 overwrite: bool = False) -> dict[str, Any]:
    """Fit a logistic regression on ``layer``'s pooled features; returns the report (also ``report.json``).

    ``C`` is the inverse L2 strength; by default it is chosen from :data:`C_GRID` on a validation split
    (``cfg.val_size``, at most a fifth of the training images), then the classifier is refitted on all of
    them. The features are standardised with the training set's statistics.
    """
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise CnnzooError("--solver logreg needs scikit-learn: pip install scikit-learn") from None
    claim = claim_folder(cfg, False, overwrite, Dist())  # a new folder, or --out checked and locked, as fit's
    try:
        return _probe(dataclasses.replace(cfg, out=str(claim.out)), claim.out, layer, C, log, LogisticRegression)
    finally:
        claim.release()


def _probe(cfg: TrainConfig, out: Path, layer: str, C: float | None, log: Any, LogisticRegression: Any
           ) -> dict[str, Any]:
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    data = prepare_data(cfg)
    model, pipeline = load_pretrained(cfg, data)
    model.to(device)
    check_layer(model, layer)
    n_classes = data.num_classes
    log(f"cnnzoo finetune: {cfg.model} on {cfg.data} ({len(data.train_labels)} train / {len(data.test_labels)} test), "
        f"logistic regression on the {layer} features of {cfg.weights}, device {device}")

    t0 = time.perf_counter()
    train_x = extract_features(model, data.train_images, pipeline, layer, cfg.batch_size, cfg.engine, log).double()
    t_features = time.perf_counter() - t0
    mean, std = train_x.mean(0), train_x.std(0, unbiased=False)
    std[std < 1e-12] = 1.0  # dead features: left as they are
    t1 = time.perf_counter()
    z, y = ((train_x - mean) / std).numpy(), data.train_labels.numpy()
    scores = {}
    if C is None:
        C, scores = _choose_c(z, y, cfg, LogisticRegression)
        log("C on the validation split: " + ", ".join(f"{c:g} {a:.4f}" for c, a in scores.items()) + f"; chose {C:g}")
    clf = LogisticRegression(C=C, max_iter=1000, random_state=cfg.seed)
    clf.fit(z, y)
    t_solve = time.perf_counter() - t1
    weight, bias = _full_weights(clf, n_classes)

    test_x = extract_features(model, data.test_images, pipeline, layer, cfg.batch_size, cfg.engine, log).double()
    logits = ((test_x - mean) / std) @ weight.T + bias
    m = metrics_from_probs(logits.softmax(1).float(), data.test_labels, n_classes)
    log(f"features: {train_x.shape[1]} per image, {len(train_x)} training images in {t_features:.1f} s; "
        f"logistic regression (L-BFGS, C={C:g}, {int(np.max(clf.n_iter_))} iterations) in {t_solve:.1f} s")

    saved = _fold_into_classifier(model, layer, weight / std, bias - (weight / std) @ mean)
    report = {
        "model": cfg.model, "data": cfg.data, "solver": "logreg", "layer": layer, "strategy": "linear",
        "test_top1": m["top1"], "test_top5": m["top5"], "test_loss": m["loss"],
        "per_class_accuracy": dict(zip(data.classes, m["per_class"])), "confusion": m["confusion"],
        "classes": list(data.classes), "train_time_s": t_features + t_solve, "feature_time_s": t_features,
        "solve_time_s": t_solve, "C": C, "C_scores": scores, "num_features": int(train_x.shape[1]), "train_images": len(train_x),
        "config": cfg.to_dict(), "device": str(device),
    }
    if saved:
        save_checkpoint(out / "best.pt", {
            "model_name": cfg.model, "model_args": model.model_args, "model": {k: v.detach().cpu() for k, v in
                                                                              model.state_dict().items()},
            "config": cfg.to_dict(), "pipeline": _pipeline_dict(pipeline), "classes": list(data.classes),
            "epoch": 0})
    write_json(out / "report.json", report)
    write_json(out / "config.json", cfg.to_dict())
    plot_confusion(out / "confusion.png", m["confusion"], list(data.classes))
    log(f"test accuracy {m['top1']:.4f} (top-5 {m['top5']:.4f}); {t_features + t_solve:.1f} s in all")
    log(f"report: {out / 'report.json'}" + (f"  weights: {out / 'best.pt'}" if saved else
                                            f"  (no weights: {layer} is not the classifier's input)"))
    return report


def _choose_c(z: np.ndarray, y: np.ndarray, cfg: TrainConfig, LogisticRegression: Any) -> tuple[float, dict]:
    """The C of :data:`C_GRID` with the best validation accuracy (ties: the stronger regularisation)."""
    from .trainer import split_validation

    n_val = min(cfg.val_size, len(y) // 5)
    if n_val < 1:
        return 1.0, {}
    train_idx, val_idx = (i.numpy() for i in split_validation(len(y), n_val, cfg.seed))
    scores = {}
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=1000, random_state=cfg.seed).fit(z[train_idx], y[train_idx])
        scores[c] = float(clf.score(z[val_idx], y[val_idx]))
    return max(scores, key=lambda c: (scores[c], -c)), scores


def _full_weights(clf: Any, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_classes x d`` weights and biases whose softmax is ``clf.predict_proba``.

    scikit-learn keeps one row for two classes (the logit of the second) and none for a class absent
    from the training data; an absent class gets a bias that no image overcomes.
    """
    coef, intercept = torch.from_numpy(clf.coef_).double(), torch.from_numpy(clf.intercept_).double()
    if len(clf.classes_) < 2:
        raise CnnzooError("logistic regression needs training images of at least two classes")
    if len(clf.classes_) == 2:
        coef, intercept = torch.cat([-coef / 2, coef / 2]), torch.cat([-intercept / 2, intercept / 2])
    weight = torch.zeros(n_classes, coef.shape[1], dtype=torch.float64)
    bias = torch.full((n_classes,), -1e4, dtype=torch.float64)
    rows = torch.as_tensor(clf.classes_, dtype=torch.int64)
    weight[rows], bias[rows] = coef, intercept
    return weight, bias


@torch.no_grad()
def _fold_into_classifier(model: nn.Module, layer: str, weight: torch.Tensor, bias: torch.Tensor) -> bool:
    """Put the solution into a fresh classifier when the features are its input; False where they are not."""
    model.reset_classifier(weight.shape[0])
    fc = model.get_classifier()
    if layer != "pre_logits" or not isinstance(fc, nn.Linear) or fc.in_features != weight.shape[1]:
        return False
    fc.weight.copy_(weight.to(fc.weight))
    fc.bias.copy_(bias.to(fc.bias))
    return True
