"""Segmentation metrics from a confusion matrix, as FCN reports them (Long et al. 2015, section 5).

With ``n[i, j]`` the pixels of true class ``i`` predicted ``j`` and ``t_i = sum_j n[i, j]``:
pixel accuracy ``sum_i n_ii / sum_i t_i``, per-class IoU ``n_ii / (t_i + sum_j n_ji - n_ii)`` and mean IoU
its mean over the classes present (in the truth or the predictions; a class absent from both has no IoU).
Ignored pixels (255) are not counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

IGNORE = 255


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``num_classes x num_classes`` int64 counts, rows the truth, columns the prediction; pixels whose
    truth is 255 (or any value outside the classes) are left out."""
    target = target.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = (target >= 0) & (target < num_classes)
    index = target[keep] * num_classes + pred[keep]
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


def segmentation_metrics(confusion: Tensor, classes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Pixel accuracy, mean IoU and per-class IoU (None for a class absent from truth and predictions)."""
    n = confusion.double()
    diag = n.diag()
    truth, predicted = n.sum(1), n.sum(0)
    union = truth + predicted - diag
    iou = torch.where(union > 0, diag / union.clamp(min=1), torch.full_like(diag, float("nan")))
    present = union > 0
    names = classes or tuple(str(i) for i in range(len(diag)))
    return {
        "pixel_accuracy": float(diag.sum() / n.sum()) if n.sum() > 0 else float("nan"),
        "mean_iou": float(iou[present].mean()) if present.any() else float("nan"),
        "per_class_iou": {names[i]: (float(iou[i]) if present[i] else None) for i in range(len(diag))},
        "pixels": int(n.sum()),
    }
