"""SqueezeNet: AlexNet-level accuracy from fire modules, with 50x fewer parameters.

Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size", https://arxiv.org/abs/1602.07360

A fire module squeezes with 1x1 convolutions, then expands with 1x1 and 3x3 convolutions side by side
and concatenates them. There are no fully connected layers: the classifier is a 1x1 convolution to one
map per class, followed (as in the paper and torchvision) by a ReLU and global average pooling, so the
logits are non-negative. Keys and initialisation are torchvision's, so its weights load unchanged.
SqueezeNet 1.1 (from the authors' repository, not the paper) moves the pools earlier and uses a 3x3
stem of 64 maps: 2.4x less computation at the same accuracy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import global_pool
from ..registry import ModelInfo, Preprocessing, register_model


class Fire(nn.Module):
    """Squeeze (1x1, ``squeeze_chs``) then expand: 1x1 and 3x3 convolutions concatenated."""

    def __init__(self, in_chs: int, squeeze_chs: int, expand1x1_chs: int, expand3x3_chs: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_chs, squeeze_chs, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_chs, expand1x1_chs, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_chs, expand3x3_chs, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.out_chs = expand1x1_chs + expand3x3_chs

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


# The paper's Table 1 (1.0) and the authors' v1.1: stem (maps, kernel), then "M" for a 3x3/2 max-pool
# (rounding up) and (squeeze, expand 1x1, expand 3x3) for fire2 ... fire9.
CONFIGS: dict[str, tuple[tuple[int, int], list[tuple[int, int, int] | str]]] = {
    "1_0": ((96, 7), ["M", (16, 64, 64), (16, 64, 64), (32, 128, 128), "M", (32, 128, 128), (48, 192, 192),
                      (48, 192, 192), (64, 256, 256), "M", (64, 256, 256)]),
    "1_1": ((64, 3), ["M", (16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M", (48, 192, 192),
                      (48, 192, 192), (64, 256, 256), (64, 256, 256)]),
}


def make_features(cfg: tuple[tuple[int, int], list], in_chans: int) -> tuple[nn.Sequential, list[FeatureInfo]]:
    """The feature stack, and one stage per resolution (ending just before each pool, and at the end)."""
    (stem_chs, stem_k), layers_cfg = cfg
    layers: list[nn.Module] = [nn.Conv2d(in_chans, stem_chs, kernel_size=stem_k, stride=2), nn.ReLU(inplace=True)]
    chs, stride, info = stem_chs, 2, []
    for v in layers_cfg:
        if v == "M":
            info.append(FeatureInfo(f"features.{len(layers) - 1}", chs, stride))
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            stride *= 2
        else:
            fire = Fire(chs, *v)
            fire.figure_name = f"Fire{sum(isinstance(m, Fire) for m in layers) + 2}"  # the paper's fire2 ... fire9
            layers.append(fire)
            chs = fire.out_chs
    info.append(FeatureInfo(f"features.{len(layers) - 1}", chs, stride))
    return nn.Sequential(*layers), info


class SqueezeNet(ZooModel):
    """SqueezeNet ``version`` "1_0" or "1_1"; the classifier is the final 1x1 convolution."""

    classifier_name = "classifier.1"
    first_conv = "features.0"

    def __init__(self, version: str = "1_0", num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        if version not in CONFIGS:
            raise ValueError(f"SqueezeNet version must be one of {sorted(CONFIGS)}, got {version!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.features, self.feature_info = make_features(CONFIGS[version], in_chans)
        self.num_features = self.feature_info[-1].num_chs
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Conv2d(self.num_features, num_classes, kernel_size=1),
            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
        )
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.init_classifier(self.classifier[1])

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 512 x 13 x 13 at 224

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[0](x)
        if pre_logits:
            return global_pool(x)
        return torch.flatten(self.classifier[1:](x), 1)

    def init_classifier(self, layer: nn.Module) -> None:
        """torchvision's rule for the final convolution: N(0, 0.01) weights, zero bias."""
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            nn.init.zeros_(layer.bias)


_PAPER = "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size"
# name: (version, params, GMACs, top-1, min size); figures from torchvision 0.29.1 metadata.
_MODELS = {
    "squeezenet1_0": ("1_0", 1_248_424, 0.819, 58.092, 21),
    "squeezenet1_1": ("1_1", 1_235_496, 0.349, 58.178, 17),
}


def _register(name: str, version: str, params: int, gmacs: float, top1: float, min_size: int) -> None:
    @register_model(ModelInfo(
        name=name, family="squeezenet", paper=_PAPER, arxiv="1602.07360", year=2016,
        min_size=min_size, params=params, gmacs=gmacs, top1=top1, source="torchvision 0.29.1 metadata",
        torchvision=name, preprocessing=Preprocessing(resize=256, crop=224),
        notes="" if version == "1_0" else "v1.1 from the authors' repository: 2.4x less computation than 1.0",
    ))
    def build(**kwargs) -> SqueezeNet:
        return SqueezeNet(version, **kwargs)


for _name, _args in _MODELS.items():
    _register(_name, *_args)
