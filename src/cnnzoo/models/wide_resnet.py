"""Wide ResNet (WRN-d-k): shallow, wide pre-activation ResNets for small images.

Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, https://arxiv.org/abs/1605.07146

WRN-d-k is conv1 (3x3, 16 channels), three stages of ``n = (d - 4) / 6`` pre-activation basic blocks
B(3,3) with 16k, 32k and 64k channels (the second and third halve the resolution), a final BN-ReLU and
global pooling: the :class:`~cnnzoo.models.preact_resnet.PreActResNet` with the paper's widths, built
from the same blocks. As in the authors' ``wide-resnet.lua``: dropout (the paper uses 0.3) sits after
the second BN-ReLU, before the second convolution; where shape changes a 1x1 projection reads the
shared pre-activation; convolutions have no bias. Deliberate difference, shared with
:mod:`.preact_resnet`: each residual branch's last convolution starts at zero, so every unit starts as
the identity (``zero_init_residual=False`` gives the paper's He init). The ImageNet WRN-50-2 is in
:mod:`.resnet`.
"""

from __future__ import annotations

from ..registry import ModelInfo, register_model
from .preact_resnet import PreActBasicBlock, PreActResNet


def wide_resnet_cifar(depth: int, widen_factor: int, **kwargs) -> PreActResNet:
    """WRN-``depth``-``widen_factor``; ``kwargs`` go to :class:`PreActResNet` (``dropout``, ``drop_path_rate``, ...)."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"a WRN has 6n+4 layers (10, 16, 22, 28, 34, 40, ...), got depth {depth}")
    if widen_factor < 1:
        raise ValueError(f"the widening factor k must be a positive integer, got {widen_factor}")
    n = (depth - 4) // 6
    widths = tuple(16 * widen_factor * m for m in (1, 2, 4))
    return PreActResNet(PreActBasicBlock, (n, n, n), widths, stem_width=16, small_input=True, **kwargs)


_PAPER = "Wide Residual Networks"

# name: (depth d, widening factor k, exact params at 10 classes, the paper's rounded figure)
WRN: dict[str, tuple[int, int, int, float | None]] = {
    "wrn16_8_cifar": (16, 8, 10_961_370, 11.0e6),
    "wrn28_10_cifar": (28, 10, 36_479_194, 36.5e6),
    "wrn40_4_cifar": (40, 4, 8_949_210, 8.9e6),
    "wrn40_10_cifar": (40, 10, 55_841_754, None),
}


def _register(name: str, depth: int, k: int, params: int, approx: float | None) -> None:
    @register_model(ModelInfo(
        name=name, family="wide_resnet", paper=_PAPER, arxiv="1605.07146", year=2016,
        input_size=(3, 32, 32), min_size=1, num_classes=10, params=params, params_approx=approx,
        source="params computed from the layer specs" + ("; rounded figure from the paper" if approx else ""),
        notes=f"WRN-{depth}-{k}: {(depth - 4) // 6} blocks per stage, widths 16-{16 * k}-{32 * k}-{64 * k}; "
              "the paper's dropout is dropout=0.3",
    ))
    def build(**kwargs) -> PreActResNet:
        return wide_resnet_cifar(depth, k, **kwargs)


for _name, (_depth, _k, _params, _approx) in WRN.items():
    _register(_name, _depth, _k, _params, _approx)
