"""Training checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint is a ``torch.save`` dict of tensors and plain values only, so it loads with
``weights_only=True``; ``cnnzoo.load`` and ``create_model(weights=...)`` read its ``model`` entry.
Weights are saved from the unwrapped model (no ``module.`` or ``_orig_mod.`` prefixes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import CnnzooError
from ..weights import atomic_write, saved_size

FORMAT = "cnnzoo-checkpoint/1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp), size=saved_size(state))


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CnnzooError(f"no checkpoint at {path}; start a run without --resume, or give the run's --out "
                          "(a fine-tuning run on cached features keeps none while it trains: run it again, it is quick)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CnnzooError(f"cannot read {path} as a checkpoint ({type(exc).__name__}); give a cnnzoo "
                          "training checkpoint (last.pt / best.pt of a run), complete and unmodified") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CnnzooError(f"{path} is not a cnnzoo training checkpoint")
    return ckpt


def load_run_checkpoint(path: Path) -> dict[str, Any]:
    """A training run's checkpoint with the recipe it was trained with (config and pipeline), or the user's one
    line: what ``cnnzoo prune`` fine-tunes with and ``cnnzoo distill``'s teacher needs."""
    if not Path(path).is_file():
        raise CnnzooError(f"{path}: no such file; give a training run's checkpoint such as runs/x/best.pt")
    if str(path).lower().endswith(".onnx"):
        raise CnnzooError(f"{path} is an ONNX file; give the training checkpoint (best.pt) it came from")
    try:
        ckpt = load_checkpoint(Path(path))
    except CnnzooError:
        raise CnnzooError(f"{path} is not a cnnzoo training checkpoint, so it has no recipe; give a run's best.pt "
                          "(train or finetune the model first)") from None
    if not isinstance(ckpt.get("config"), dict) or "pipeline" not in ckpt or "model_name" not in ckpt:
        raise CnnzooError(f"{path} holds weights without the recipe they were trained with (no config); give a "
                          "run's best.pt written by cnnzoo train or finetune")
    return ckpt
