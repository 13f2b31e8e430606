"""AlexNet: the 2012 two-tower network, torchvision's single-tower variant, and a small-image version.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks", NIPS 2012,
https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html
Krizhevsky, "One weird trick for parallelizing convolutional neural networks", https://arxiv.org/abs/1404.5997

One class reads an :class:`AlexNetSpec`: a layer list close to the paper's Figure 2 (conv rows, ``"N"`` for
local response normalisation, ``"M"`` for a 3x3/2 max-pool) and how the head and initialisation behave.
ZFNet (``zfnet.py``) subclasses it with its own spec.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..errors import CnnzooError
from ..layers import init_he, paper_lrn
from ..registry import ModelInfo, Preprocessing, register_model

#: out channels, kernel, stride, padding, groups
Conv = tuple[int, int, int, int, int]
Layer = Conv | str


@dataclass(frozen=True)
class AlexNetSpec:
    """One AlexNet-style network.

    ``towers``: the 2012 net's GPUs; its LRN normalises each tower's maps alone. ``pool_padding`` and
    ``ceil_mode`` apply to every ``"M"``. ``pool_size``: the adaptive average pool before FC6 (the identity at
    the default input). ``dropout_on_inputs``: torchvision drops FC6's and FC7's inputs, the papers their
    outputs. ``init_std``: N(0, std) weights and zero biases except ``unit_bias`` (layers numbered 1..8 as
    the paper's conv1..FC8), whose biases start at 1; ``None`` keeps PyTorch's default init (torchvision's).
    """

    layers: tuple[Layer, ...]
    towers: int = 1
    pool_padding: int = 0
    ceil_mode: bool = False
    pool_size: int = 6
    width: int = 4096
    dropout_on_inputs: bool = False
    init_std: float | None = None
    unit_bias: tuple[int, ...] = ()


class TowerLRN(nn.Module):
    """The paper's LRN within each of ``towers`` channel groups: each GPU normalised only its own maps."""

    def __init__(self, towers: int) -> None:
        super().__init__()
        self.towers = towers
        self.lrn = paper_lrn()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.lrn(t) for t in x.chunk(self.towers, dim=1)], dim=1)

    def extra_repr(self) -> str:
        return f"towers={self.towers}"


def make_layers(spec: AlexNetSpec, in_chans: int) -> tuple[nn.Sequential, list[FeatureInfo]]:
    """The feature extractor, and its stages: each ends at a max-pool, or at the normalisation right after one."""
    modules: list[nn.Module] = []
    stages: list[FeatureInfo] = []
    stride = 1
    for v in spec.layers:
        if v == "M":
            modules.append(nn.MaxPool2d(3, 2, spec.pool_padding, ceil_mode=spec.ceil_mode))
            stride *= 2
            stages.append(FeatureInfo(f"features.{len(modules) - 1}", in_chans, stride))
        elif v == "N":
            modules.append(paper_lrn() if spec.towers == 1 else TowerLRN(spec.towers))
            if stages and stages[-1].module == f"features.{len(modules) - 2}":
                stages[-1] = FeatureInfo(f"features.{len(modules) - 1}", in_chans, stride)
        else:
            out, k, s, p, g = v
            modules += [nn.Conv2d(in_chans, out, k, s, p, groups=g), nn.ReLU(inplace=True)]
            in_chans, stride = out, stride * s
    return nn.Sequential(*modules), stages


class AlexNet(ZooModel):
    """AlexNet-style network: convolutions from an :class:`AlexNetSpec`, then FC6-FC7-FC8.

    Papers: https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html (2012) and
    https://arxiv.org/abs/1404.5997 (single tower, torchvision's ``alexnet``).
    The 2012 net takes 227x227: the paper's stated 224 does not give its 55x55 conv1 maps without padding.
    An adaptive average pool before FC6 (torchvision's; the identity at the default size) lets larger inputs in.
    torchvision's ``alexnet`` has 256 maps in conv4 (cuda-convnet2's one-GPU config), not the 384 of the
    1404.5997 footnote, and drops FC6's and FC7's inputs: both kept so its weights load.
    """

    classifier_name = "classifier.6"
    first_conv = "features.0"

    def __init__(self, spec: AlexNetSpec, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5,
                 init: str = "spec") -> None:
        super().__init__()
        if init not in ("spec", "he"):
            raise CnnzooError(f"unknown AlexNet init {init!r}; use spec (the model's own) or he")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, spec.width
        self.features, self.feature_info = make_layers(spec, in_chans)
        self.avgpool = nn.AdaptiveAvgPool2d(spec.pool_size)
        flat = self.feature_info[-1].num_chs * spec.pool_size**2
        if spec.dropout_on_inputs:
            self.classifier = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(flat, spec.width), nn.ReLU(inplace=True),  # FC6
                nn.Dropout(dropout), nn.Linear(spec.width, spec.width), nn.ReLU(inplace=True),  # FC7
                nn.Linear(spec.width, num_classes),  # FC8
            )
        else:
            self.classifier = nn.Sequential(
                nn.Linear(flat, spec.width), nn.ReLU(inplace=True), nn.Dropout(dropout),  # FC6
                nn.Linear(spec.width, spec.width), nn.ReLU(inplace=True), nn.Dropout(dropout),  # FC7
                nn.Linear(spec.width, num_classes),  # FC8
            )
        self.init_std = spec.init_std if init == "spec" else None
        if init == "he":  # He et al. 2015 for every layer; see the ``alexnet2012-he`` recipe
            init_he(self, fc_std=None)
        elif spec.init_std is not None:
            layers = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            for i, m in enumerate(layers, start=1):
                nn.init.normal_(m.weight, 0.0, spec.init_std)
                nn.init.constant_(m.bias, 1.0 if i in spec.unit_bias else 0.0)

    def init_classifier(self, layer: nn.Module) -> None:
        if self.init_std is None:
            return  # a fresh nn.Linear already has PyTorch's default init, as torchvision's
        nn.init.normal_(layer.weight, 0.0, self.init_std)
        nn.init.zeros_(layer.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 256 x 6 x 6 at the default size

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[:-1](self.avgpool(x).flatten(1))  # FC7 features
        return x if pre_logits else self.classifier[-1](x)


# Figure 2 of the 2012 paper: conv2, conv4 and conv5 see only their own tower's maps (groups=2); LRN
# follows the ReLUs of conv1 and conv2, before their overlapping pools.
ALEXNET_2012 = AlexNetSpec(
    layers=((96, 11, 4, 0, 1), "N", "M", (256, 5, 1, 2, 2), "N", "M",
            (384, 3, 1, 1, 1), (384, 3, 1, 1, 2), (256, 3, 1, 1, 2), "M"),
    towers=2, init_std=0.01, unit_bias=(2, 4, 5, 6, 7),
)
# torchvision's alexnet (from cuda-convnet2's layers-imagenet-1gpu.cfg): one tower, no LRN.
ALEXNET_OWT = AlexNetSpec(
    layers=((64, 11, 4, 2, 1), "M", (192, 5, 1, 2, 1), "M",
            (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), (256, 3, 1, 1, 1), "M"),
    dropout_on_inputs=True,
)
# Small images: a 5x5/1 stem (11x11/4 would leave 8x8 maps before the first pool), overlapping 3x3/2 pools
# padded by 1 (32 -> 16 -> 8 -> 4, and 28 -> 14 -> 7 -> 4), a 1024-1024 head, PyTorch's default init.
ALEXNET_CIFAR = AlexNetSpec(
    layers=((64, 5, 1, 2, 1), "M", (192, 5, 1, 2, 1), "M",
            (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), (256, 3, 1, 1, 1), "M"),
    pool_padding=1, pool_size=4, width=1024,
)

_PAPER = "ImageNet Classification with Deep Convolutional Neural Networks"


@register_model(ModelInfo(
    name="alexnet2012", family="alexnet", paper=_PAPER, arxiv=None, year=2012,
    ilsvrc="ILSVRC 2012: 1st in classification (SuperVision)",
    input_size=(3, 227, 227), min_size=67, params=60_965_224, gmacs=0.724, top1=62.5,
    source="top-1: the paper's single net on the ILSVRC-2010 test set; GMACs computed at 227 px",
    small_variant="alexnet_cifar",
    notes="two towers as groups=2 in conv2/4/5, LRN within each tower, paper init (N(0, 0.01), biases 1 in "
          "conv2/4/5 and FC6/7)",
))
def alexnet2012(**kwargs) -> AlexNet:
    return AlexNet(ALEXNET_2012, **kwargs)


@register_model(ModelInfo(
    name="alexnet", family="alexnet", year=2014, arxiv="1404.5997",
    paper="One weird trick for parallelizing convolutional neural networks",
    min_size=63, params=61_100_840, gmacs=0.714, top1=56.522, source="torchvision 0.29.1 metadata",
    torchvision="alexnet", small_variant="alexnet_cifar", preprocessing=Preprocessing(resize=256, crop=224),
    notes="torchvision's single-tower AlexNet: 64-192-384-256-256, no LRN, dropout before FC6 and FC7",
))
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(ALEXNET_OWT, **kwargs)


@register_model(ModelInfo(
    name="alexnet_cifar", family="alexnet", paper=_PAPER, arxiv=None, year=2012,
    input_size=(3, 32, 32), num_classes=10, params=7_706_442, source="computed from the layer specs",
    notes="small images: 5x5/1 stem, padded 3x3/2 pools to 4x4 maps, 64-192-384-256-256, FC 1024-1024",
))
def alexnet_cifar(**kwargs) -> AlexNet:
    return AlexNet(ALEXNET_CIFAR, **kwargs)
