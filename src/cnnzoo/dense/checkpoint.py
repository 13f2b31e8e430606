"""Reading the checkpoint of a ``cnnzoo segment train`` or ``cnnzoo detect train`` run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import CnnzooError

COMMANDS = {"segmentation": "segment", "detection": "detect"}


def read_dense_checkpoint(path: str | os.PathLike, task: str) -> dict[str, Any]:
    """The checkpoint at ``path``, refused in one line when it is not one of ``task`` (segmentation, detection)."""
    from ..training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(Path(path))
    if ckpt.get("task") != task:
        raise CnnzooError(f"{path} is not a {task} checkpoint (of `cnnzoo {COMMANDS[task]} train`)")
    return ckpt
