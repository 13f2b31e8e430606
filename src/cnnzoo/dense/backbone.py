"""The stages of a zoo model as feature maps: what segmentation heads and detectors are built on."""

from __future__ import annotations

from torch import Tensor, nn

from ..base import FeatureInfo
from ..errors import ModelArgumentError


class StageFeatures(nn.Module):
    """The output maps of the ``stages`` of ``model`` (names from its ``feature_info``), shallow to deep.

    The maps are read with forward hooks while ``model.forward_features`` runs, and cloned, so an in-place
    activation after a stage cannot change them. torchvision's ``create_feature_extractor`` would prune the
    graph instead, but its symbolic trace fails on the contract's input check and on some families'
    shape-dependent code, and ``IntermediateLayerGetter`` only takes top-level children run in order.
    """

    def __init__(self, model: nn.Module, stages: list[FeatureInfo]) -> None:
        super().__init__()
        self.body = model
        self.stages = [s.module for s in stages]
        self.channels = [s.num_chs for s in stages]
        self.strides = [s.reduction for s in stages]

    def forward(self, x: Tensor) -> list[Tensor]:
        self.body.check_input(x)
        found: dict[str, Tensor] = {}
        handles = [self.body.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: found.__setitem__(name, out.clone())) for name in self.stages]
        try:
            self.body.forward_features(x)
        finally:
            for h in handles:
                h.remove()
        return [found[name] for name in self.stages]


def last_per_stride(model: nn.Module) -> list[FeatureInfo]:
    """The deepest stage of each stride of ``model``'s ``feature_info``, shallow to deep."""
    info = list(getattr(model, "feature_info", None) or [])
    if not info:
        raise ModelArgumentError(f"{getattr(model, 'model_name', type(model).__name__)} has no feature_info; "
                                 "dense prediction needs the model contract's stages")
    best: dict[int, FeatureInfo] = {}
    for stage in info:
        best[stage.reduction] = stage  # later stages of the same stride win
    return [best[s] for s in sorted(best)]
