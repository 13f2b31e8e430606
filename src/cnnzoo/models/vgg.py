"""VGG: stacks of 3x3 convolutions.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
https://arxiv.org/abs/1409.1556

Keys and initialisation are torchvision's (He init instead of the paper's shallow-net warm start), so
torchvision weights load unchanged; ``init="he"`` gives the linear layers He's init too (see INITS). The ``*_cifar`` variants keep the convolutional stacks, pool to
1x1 and use a 512-512 head; their pools round up (``ceil_mode``) so 28x28 images pass too.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..errors import CnnzooError
from ..layers import init_he
from ..registry import ModelInfo, register_model

# ``torchvision``: He convolutions, N(0, 0.01) linear layers. ``he``: He et al. 2015 for the linear layers
# too. Without batch norm, torchvision's N(0, 0.01) head leaves a freshly built VGG at chance for hundreds
# of steps at the paper's lr 0.01 (VGG-11 on Fashion-MNIST: loss 2.302 after 150 steps); the
# ``vgg2014-he`` recipe, the default of every VGG, builds them with ``he``. (The paper itself
# initialised its deeper nets from net A, or with Glorot's init.)
INITS = {"torchvision": init_he, "he": lambda m: init_he(m, fc_std=None)}

# The paper's Table 1: channels per 3x3 conv, "M" for a 2x2 max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[int | str], in_chans: int, batch_norm: bool, ceil_mode: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=ceil_mode))
            continue
        layers.append(nn.Conv2d(in_chans, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_chans = v
    return nn.Sequential(*layers)


class VGG(ZooModel):
    """VGG from a Table-1 column; ``small_input`` selects the CIFAR-style 1x1 pooling and 512-wide head."""

    classifier_name = "classifier.6"
    first_conv = "features.0"

    def __init__(
        self,
        cfg: list[int | str],
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        small_input: bool = False,
        init: str = "torchvision",
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.features = make_layers(cfg, in_chans, batch_norm, ceil_mode=small_input)
        pool = 1 if small_input else 7
        width = 512 if small_input else 4096
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Linear(512 * pool * pool, width), nn.ReLU(True), nn.Dropout(dropout),  # FC6
            nn.Linear(width, width), nn.ReLU(True), nn.Dropout(dropout),  # FC7
            nn.Linear(width, num_classes),  # FC8
        )
        self.num_features = width
        self.feature_info = []
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                chans = m.out_channels
            elif isinstance(m, nn.MaxPool2d):
                self.feature_info.append(FeatureInfo(f"features.{i}", chans, 2 ** (len(self.feature_info) + 1)))
        if init not in INITS:
            raise CnnzooError(f"unknown VGG init {init!r}; use {' or '.join(INITS)}")
        INITS[init](self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 512 x 7 x 7 at 224

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[:-1](self.avgpool(x).flatten(1))  # FC7 features
        return x if pre_logits else self.classifier[-1](x)


_PAPER = "Very Deep Convolutional Networks for Large-Scale Image Recognition"
_TV = "torchvision 0.29.1 metadata"
# name: (config, params, params with BN, GMACs, top-1, top-1 with BN)
_IMAGENET = {
    "vgg11": ("A", 132_863_336, 132_868_840, 7.609, 69.02, 70.37),
    "vgg13": ("B", 133_047_848, 133_053_736, 11.308, 69.93, 71.59),
    "vgg16": ("D", 138_357_544, 138_365_992, 15.47, 71.59, 73.36),
    "vgg19": ("E", 143_667_240, 143_678_248, 19.632, 72.38, 74.22),
}
# CIFAR variants: exact counts computed from the layer specs (10 classes, 3 channels).
_CIFAR = {"vgg11": 9_750_922, "vgg13": 9_935_434, "vgg16": 15_245_130, "vgg19": 20_554_826}
_CIFAR_BN = {"vgg11": 9_756_426, "vgg13": 9_941_322, "vgg16": 15_253_578, "vgg19": 20_565_834}


def _register(name: str, cfg: str, bn: bool, params: int, gmacs: float, top1: float) -> None:
    full = name + ("_bn" if bn else "")

    @register_model(ModelInfo(
        name=full, family="vgg", paper=_PAPER, arxiv="1409.1556", year=2014,
        ilsvrc="ILSVRC 2014: 2nd in classification, 1st in localisation",
        min_size=32, params=params, gmacs=gmacs, top1=top1, source=_TV, torchvision=full,
        small_variant=f"{full}_cifar",
    ))
    def build(**kwargs) -> VGG:
        return VGG(CONFIGS[cfg], batch_norm=bn, **kwargs)

    @register_model(ModelInfo(
        name=f"{full}_cifar", family="vgg", paper=_PAPER, arxiv="1409.1556", year=2014,
        input_size=(3, 32, 32), min_size=1, num_classes=10,
        params=(_CIFAR_BN if bn else _CIFAR)[name], source="computed from the layer specs",
        notes="CIFAR-style: pools to 1x1, 512-512 head, ceil-mode pools",
    ))
    def build_cifar(**kwargs) -> VGG:
        return VGG(CONFIGS[cfg], batch_norm=bn, small_input=True, **kwargs)


for _name, (_cfg, _p, _pbn, _g, _t, _tbn) in _IMAGENET.items():
    _register(_name, _cfg, False, _p, _g, _t)
    _register(_name, _cfg, True, _pbn, _g, _tbn)
