"""Key mapping from published checkpoints to cnnzoo's state dicts: one table per family.

A table is a list of ``(pattern, replacement)`` rules tried in order on each key; the first match
renames it (``re.sub`` with the replacement, a string or a function of the match), and a key no rule
matches is an error, so a checkpoint with keys we have not seen is refused rather than half-loaded.
Families whose keys are already cnnzoo's (timm's ResNet, ResNeXt, Wide-ResNet, DenseNet,
Inception-v3/-v4 and Inception-ResNet-v2 keep torchvision's or the TF-slim port's names, and so does
cnnzoo) use :data:`IDENTITY`. Every table is tested by a parity test: a source model with random
weights, mapped, gives cnnzoo's outputs within 1e-5.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Union

from ..errors import WeightsError

if TYPE_CHECKING:
    import torch

Replacement = Union[str, Callable[[re.Match], str]]
Table = tuple[tuple[str, Replacement], ...]

IDENTITY: Table = ((r"^(.*)$", r"\1"),)

# timm mobilenetv1_100 (stages of 1, 2, 2, 6, 2 depthwise-separable blocks) -> cnnzoo MobileNetV1's flat
# ``features``: features.0 is the stem, features.1 ... features.13 the blocks in order.
_V1_STAGE_START = (1, 2, 4, 6, 12)


def _v1_block(m: re.Match) -> str:
    part = {"conv_dw": "dw.conv", "bn1": "dw.bn", "conv_pw": "pw.conv", "bn2": "pw.bn"}[m.group(3)]
    return f"features.{_V1_STAGE_START[int(m.group(1))] + int(m.group(2))}.{part}."


TIMM_MOBILENETV1: Table = (
    (r"^conv_stem\.", "features.0.conv."),
    (r"^bn1\.", "features.0.bn."),
    (r"^blocks\.(\d+)\.(\d+)\.(conv_dw|bn1|conv_pw|bn2)\.", _v1_block),
    (r"^classifier\.", "fc."),
)

# timm ResNetV2 (pre-activation, ``stem_type=''``) -> cnnzoo PreActResNet(stem_norm=False).
TIMM_RESNETV2: Table = (
    (r"^stem\.conv\.", "conv1."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.norm(\d)\.", lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{m[3]}."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.conv(\d)\.", lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{m[3]}."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.downsample\.conv\.", lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample."),
    (r"^norm\.", "norm."),
    (r"^head\.fc\.", "fc."),  # a 1x1 convolution in timm, a Linear here: the weight is flattened below
)

TABLES: dict[str, Table] = {
    "identity": IDENTITY,
    "timm_mobilenetv1": TIMM_MOBILENETV1,
    "timm_resnetv2": TIMM_RESNETV2,
}


def map_state_dict(state: dict[str, "torch.Tensor"], table: str, source: str = "the checkpoint"
                   ) -> dict[str, "torch.Tensor"]:
    """``state`` renamed by the rules of ``TABLES[table]``; a 1x1-conv classifier weight becomes a Linear's."""
    rules = [(re.compile(p), r) for p, r in TABLES[table]]
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            if pattern.search(key):
                new = pattern.sub(repl, key, count=1)
                break
        else:
            raise WeightsError(f"{source} has a key cnnzoo does not know how to map ({key}); "
                               "is it the model the tag names?")
        if new.startswith("fc.") and new.endswith("weight") and value.dim() == 4:
            value = value.flatten(1)
        out[new] = value
    return out
