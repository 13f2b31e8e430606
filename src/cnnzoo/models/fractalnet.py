"""FractalNet: depth by self-similar expansion, with drop-path instead of residuals.

Larsson, Maire, Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals",
https://arxiv.org/abs/1605.07648

A block with ``C`` columns is the fractal ``f_C``: ``f_1(z) = conv(z)`` and
``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, where conv is 3x3 conv-BN-ReLU and a join is the element-wise
mean. Column ``c`` (0 = shallowest) has ``2**c`` convolutions, so a block is ``2**(C-1)`` layers deep and
has ``2**C - 1`` convolutions. As in the paper's Figure 1 and the authors' code, nested joins that end
at the same depth are merged into one mean over every column ending there, and after a join every
column continues from its output. The network is ``B`` blocks, each followed by 2x2 max-pooling.

Drop-path, in training only: *local* drops each input of a join with probability
``drop_path`` (per mini-batch, as the authors' Caffe layer) and keeps one at random if all were
dropped; *global* keeps a single column, the same in every block, for the whole mini-batch. With
``global_drop_ratio=0.5`` each mini-batch is global with probability 0.5 and local otherwise, the
paper's mix. Dropout sits after each convolution, before BN, at a per-block rate (the authors' order).
Randomness comes from torch's global generator, so ``torch.manual_seed`` reproduces a run.
:meth:`FractalNet.select_column` runs one column alone (the paper's "deepest column" evaluation).

Deliberate differences, each for the reason given: drop-path and dropout are off by default (the
paper's plain row of Table 1; switch on :data:`PAPER_REGULARISATION`), because a training step must reach
every parameter; the convolutions have no bias and BN has an affine scale (the Caffe code used conv
bias and a bare BN), the usual equivalent; the pools round up (Caffe's rule) and the head averages the
final map before the classifier, so that inputs other than 32x32 work — at 32x32 both are the paper's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import ConvNormAct, global_pool, relu_inplace
from ..registry import ModelInfo, register_model

# The paper's experiments: CIFAR/SVHN use B=5 blocks of (64, 128, 256, 512, 512) channels, the 20-layer
# network C=3; ImageNet keeps ResNet-34's first layer (7x7/2 conv, 3x3/2 max-pool) and last layer (global
# average pooling, FC) around B=4 blocks of C=4 columns with (128, 256, 512, 1024) channels (1 + 4 x 8 +
# 1 = 34 layers). There the fourth block feeds the global pooling, so the net keeps ResNet's stride 32.
CONFIGS: dict[str, dict] = {
    "fractalnet20_cifar": dict(widths=(64, 128, 256, 512, 512), num_columns=3, stem_width=None, pool_last=True),
    "fractalnet34": dict(widths=(128, 256, 512, 1024), num_columns=4, stem_width=64, pool_last=False),
}
# Table 1's "+ drop-path + dropout" rows (CIFAR): local drop 0.15, half the mini-batches global,
# dropout rising by 0.1 per block.
PAPER_REGULARISATION = dict(drop_path=0.15, global_drop_ratio=0.5, dropout=(0.0, 0.1, 0.2, 0.3, 0.4))


def local_drop_mask(n: int, p: float) -> list[bool]:
    """Which of a join's ``n`` inputs survive: each is dropped with probability ``p``, at least one is kept."""
    keep = (torch.rand(n) >= p).tolist()
    if not any(keep):
        keep[int(torch.randint(n, ()))] = True
    return keep


def sample_column(num_columns: int, global_ratio: float) -> int | None:
    """Global drop-path for one mini-batch: with probability ``global_ratio`` a column to keep alone, else None."""
    if global_ratio > 0.0 and float(torch.rand(())) < global_ratio:
        return int(torch.randint(num_columns, ()))
    return None


def _caffe_xavier(module: nn.Module) -> None:
    """Caffe's "xavier" filler, the authors' init: uniform in ±sqrt(3 / fan_in), zero biases, BN to identity."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=1.0)  # bound = sqrt(3 / fan_in)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FractalConv(ConvNormAct):
    """The paper's conv unit: 3x3 convolution, dropout, batch norm, ReLU (dropout where the authors put it)."""

    def __init__(self, in_chs: int, out_chs: int, dropout: float = 0.0) -> None:
        super().__init__(in_chs, out_chs, 3, act_layer=relu_inplace)
        self.drop = nn.Dropout(dropout) if dropout > 0.0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.drop(self.conv(x))))


class FractalBlock(nn.Module):
    """``f_C``: ``C`` columns of 1, 2, 4, ... convolutions, joined by means wherever columns end together."""

    def __init__(self, in_chs: int, out_chs: int, num_columns: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_columns = num_columns
        self.depth = 2 ** (num_columns - 1)
        self.columns = nn.ModuleList(
            nn.ModuleList(FractalConv(in_chs if i == 0 else out_chs, out_chs, dropout) for i in range(2 ** c))
            for c in range(num_columns)
        )

    def ending_at(self, depth: int) -> list[int]:
        """The columns with a convolution ending at ``depth`` (1-based); a join where there are several."""
        return [c for c in range(self.num_columns) if depth % 2 ** (self.num_columns - 1 - c) == 0]

    def forward(self, x: Tensor, column: int | None = None, drop_path: float = 0.0) -> Tensor:
        if column is not None:
            for conv in self.columns[column]:
                x = conv(x)
            return x
        outs = [x] * self.num_columns
        for depth in range(1, self.depth + 1):
            ending = self.ending_at(depth)
            kept = ending
            if self.training and drop_path > 0.0 and len(ending) > 1:
                kept = [c for c, keep in zip(ending, local_drop_mask(len(ending), drop_path)) if keep]
            ys = [self.columns[c][depth // 2 ** (self.num_columns - 1 - c) - 1](outs[c]) for c in kept]
            joined = ys[0] if len(ys) == 1 else torch.stack(ys).mean(0)
            for c in ending:
                outs[c] = joined
        return outs[-1]


class FractalNet(ZooModel):
    """FractalNet: ``len(widths)`` fractal blocks of ``num_columns`` columns, 2x2 max-pooling after each.

    https://arxiv.org/abs/1605.07648 — ``stem_width`` adds ResNet-34's 7x7/2 conv and 3x3/2 max-pool in
    front (the ImageNet model); ``pool_last=False`` leaves the last block to the global pooling.
    ``dropout`` is one rate or one per block; ``drop_path`` and ``global_drop_ratio`` are the local
    drop probability and the share of globally dropped mini-batches. Departures: see the module docstring.
    """

    classifier_name = "fc"

    def __init__(
        self,
        widths: Sequence[int] = CONFIGS["fractalnet20_cifar"]["widths"],
        num_columns: int = 3,
        num_classes: int = 10,
        in_chans: int = 3,
        stem_width: int | None = None,
        pool_last: bool = True,
        dropout: float | Sequence[float] = 0.0,
        drop_path: float = 0.0,
        global_drop_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        rates = (float(dropout),) * len(widths) if isinstance(dropout, (int, float)) else tuple(dropout)
        if len(rates) != len(widths):
            raise ValueError(f"give one dropout rate or one per block ({len(widths)}), got {len(rates)}")
        if num_columns < 1:
            raise ValueError(f"a fractal block needs at least one column, got num_columns={num_columns}")
        if not (0.0 <= drop_path <= 1.0 and 0.0 <= global_drop_ratio <= 1.0):
            raise ValueError(f"drop_path and global_drop_ratio are probabilities, got {drop_path}, {global_drop_ratio}")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, widths[-1]
        self.num_columns, self.drop_path, self.global_drop_ratio = num_columns, drop_path, global_drop_ratio
        self.column: int | None = None
        self.feature_info: list[FeatureInfo] = []
        reduction, chs = 1, in_chans
        if stem_width:
            self.stem: nn.Module = ConvNormAct(in_chans, stem_width, 7, stride=2, act_layer=relu_inplace)
            self.stem_pool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
            reduction, chs = 4, stem_width
            self.feature_info.append(FeatureInfo("stem_pool", chs, reduction))
            self.first_conv = "stem.conv"
        else:
            self.stem, self.stem_pool = nn.Identity(), nn.Identity()
            # every column of the first block reads the image
            self.first_conv = tuple(f"blocks.0.columns.{c}.0.conv" for c in range(num_columns))
        self.blocks = nn.ModuleList()
        self.pools = nn.ModuleList()
        for i, (width, rate) in enumerate(zip(widths, rates)):
            block = FractalBlock(chs, width, num_columns, rate)
            block.figure_name = f"Block {i + 1}"  # the paper's Figure 1
            self.blocks.append(block)
            pool = pool_last or i < len(widths) - 1
            self.pools.append(nn.MaxPool2d(2, 2, ceil_mode=True) if pool else nn.Identity())
            reduction, chs = reduction * (2 if pool else 1), width
            self.feature_info.append(FeatureInfo(f"pools.{i}", width, reduction))
        self.fc = nn.Linear(chs, num_classes)
        _caffe_xavier(self)

    def select_column(self, column: int | None) -> None:
        """Run only ``column`` (0 = shallowest, ``num_columns - 1`` = deepest) in every block; None for all."""
        if column is not None and not 0 <= column < self.num_columns:
            raise ValueError(f"column must be in 0..{self.num_columns - 1} or None, got {column}")
        self.column = column

    def forward_features(self, x: Tensor) -> Tensor:
        column = self.column
        if column is None and self.training:
            column = sample_column(self.num_columns, self.global_drop_ratio)
        x = self.stem_pool(self.stem(x))
        for block, pool in zip(self.blocks, self.pools):
            x = pool(block(x, column, self.drop_path))
        return x  # N x 512 x 1 x 1 at 32 (CIFAR); N x 1024 x 7 x 7 at 224 (ImageNet)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = global_pool(x)
        return x if pre_logits else self.fc(x)

    def init_classifier(self, layer: nn.Module) -> None:
        _caffe_xavier(layer)


@register_model(ModelInfo(
    name="fractalnet20_cifar", family="fractalnet", arxiv="1605.07648", year=2016,
    paper="FractalNet: Ultra-Deep Neural Networks without Residuals",
    input_size=(3, 32, 32), min_size=1, num_classes=10, params=33_724_618,
    source="computed from the layer specs (B=5, C=3, widths 64-128-256-512-512)",
    notes="paper: CIFAR-10 error 4.60 % with augmentation (CIFAR-100 22.85 %); the paper's 38.6M "
          "parameters do not follow from its stated layout, which gives 33.7M",
))
def fractalnet20_cifar(**kwargs) -> FractalNet:
    return FractalNet(**{**CONFIGS["fractalnet20_cifar"], **kwargs})


@register_model(ModelInfo(
    name="fractalnet34", family="fractalnet", arxiv="1605.07648", year=2016,
    paper="FractalNet: Ultra-Deep Neural Networks without Residuals",
    input_size=(3, 224, 224), min_size=1, num_classes=1000, params=164_031_016,
    source="computed from the layer specs (ResNet-34 stem and head, B=4, C=4, widths 128-256-512-1024)",
))
def fractalnet34(**kwargs) -> FractalNet:
    return FractalNet(**{**CONFIGS["fractalnet34"], **kwargs})
