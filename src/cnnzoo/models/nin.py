"""Network In Network: mlpconv blocks and global average pooling instead of fully connected layers.

Lin, Chen, Yan, "Network In Network", https://arxiv.org/abs/1312.4400

An mlpconv block is a k x k convolution followed by 1x1 convolutions (a small MLP shared across positions),
each with a ReLU. The last block's final 1x1 convolution has one map per class; the class scores are
those maps' spatial means.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import global_pool, init_he
from ..registry import ModelInfo, register_model


class Block(NamedTuple):
    """One mlpconv block: the k x k conv's width, then each 1x1 conv's; optional 3x3/2 pooling and dropout."""

    widths: tuple[int, ...]
    kernel: int
    stride: int
    padding: int
    pool: str | None = None
    dropout: bool = False


def mlpconv(in_chs: int, widths: tuple[int, ...], kernel: int, stride: int, padding: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, w in enumerate(widths):
        first = i == 0
        layers += [
            nn.Conv2d(in_chs, w, kernel if first else 1, stride if first else 1, padding if first else 0),
            nn.ReLU(inplace=True),
        ]
        in_chs = w
    block = nn.Sequential(*layers)
    block.figure_name = "mlpconv"
    return block


# The classifier, a last 1x1 conv to the classes, completes the final row.
CONFIGS: dict[str, list[Block]] = {
    # The paper's CIFAR-10 net (Section 4.2 and its Caffe files): dropout after the first two blocks.
    "cifar": [
        Block((192, 160, 96), 5, 1, 2, "max", True),
        Block((192, 192, 192), 5, 1, 2, "avg", True),
        Block((192, 192), 3, 1, 1),
    ],
    # The Caffe model-zoo ImageNet NiN: dropout before the last block.
    "imagenet": [
        Block((96, 96, 96), 11, 4, 0, "max"),
        Block((256, 256, 256), 5, 1, 2, "max"),
        Block((384, 384, 384), 3, 1, 1, "max", True),
        Block((1024, 1024), 3, 1, 1),
    ],
}


class NiN(ZooModel):
    """Network In Network, https://arxiv.org/abs/1312.4400, from a list of mlpconv :class:`Block` rows.

    3x3/2 pools round up, as the Caffe models (32 -> 16 -> 8 on CIFAR, 224 -> 54 -> 27 -> 13 -> 6 on ImageNet).
    The class maps keep the mlpconv ReLU before averaging, as the paper and its Caffe files.
    Init: He (the paper gives none). ``reset_classifier`` keeps the head a 1x1 convolution.
    """

    classifier_name = "classifier"
    first_conv = "features.0.0"

    def __init__(self, blocks: list[Block], num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
        layers: list[nn.Module] = []
        self.feature_info = []
        stride = 1
        for b in blocks:
            layers.append(mlpconv(in_chans, b.widths, b.kernel, b.stride, b.padding))
            in_chans, stride = b.widths[-1], stride * b.stride
            if b.pool:
                layers.append(pools[b.pool](3, 2, ceil_mode=True))
                stride *= 2
            self.feature_info.append(FeatureInfo(f"features.{len(layers) - 1}", in_chans, stride))
            if b.dropout:
                layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.num_features = in_chans
        self.classifier = nn.Conv2d(in_chans, num_classes, 1)
        self.act = nn.ReLU()
        init_he(self)

    def init_classifier(self, layer: nn.Module) -> None:
        init_he(layer)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 192 x 8 x 8 on CIFAR, N x 1024 x 6 x 6 at 224

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if pre_logits:
            return global_pool(x)
        return global_pool(self.act(self.classifier(x)))


_PAPER = "Network In Network"


@register_model(ModelInfo(
    name="nin", family="nin", paper=_PAPER, arxiv="1312.4400", year=2013,
    min_size=39, params=7_595_176, gmacs=1.100, source="computed from the layer specs at 224 px",
    small_variant="nin_cifar",
    notes="the Caffe model-zoo ImageNet NiN: mlpconv 96-256-384-1024 (11x11/4, 5x5, 3x3, 3x3)",
))
def nin(**kwargs) -> NiN:
    return NiN(CONFIGS["imagenet"], **kwargs)


@register_model(ModelInfo(
    name="nin_cifar", family="nin", paper=_PAPER, arxiv="1312.4400", year=2013,
    input_size=(3, 32, 32), min_size=4, num_classes=10, params=966_986,
    source="computed from the layer specs",
    notes="the paper's CIFAR-10 net; paper: 10.41 % test error (8.81 % with augmentation)",
))
def nin_cifar(**kwargs) -> NiN:
    return NiN(CONFIGS["cifar"], **kwargs)
