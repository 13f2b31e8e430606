"""MobileNet v1 (depthwise-separable convolutions) and v2 (inverted residuals with linear bottlenecks).

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
https://arxiv.org/abs/1704.04861
Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", https://arxiv.org/abs/1801.04381

v1 follows the paper's Table 1 with BN and ReLU after every convolution; its last depthwise convolution
has stride 1 (the table's "s2" there is a typo: the map stays 7x7). He initialisation, as elsewhere in
cnnzoo (the paper used TensorFlow's defaults). v2 is torchvision's, keys and initialisation included: its
conv-BN-ReLU6 units are indexed ``nn.Sequential`` (``features.0.0`` conv, ``features.0.1`` BN), so
torchvision weights load unchanged.

The ``*_cifar`` variants keep everything but two strides, the usual CIFAR practice: the stem's stride 2
becomes 1, and so does the first downsampling unit's (v1: the 64 -> 128 depthwise unit; v2: the first
24-channel block). Total stride 8 instead of 32: a 32x32 image ends as a 4x4 map.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import ConvNormAct, global_pool, init_he, make_divisible
from ..registry import ModelInfo, Preprocessing, register_model


def _stages(strides: list[int], chans: list[int]) -> list[FeatureInfo]:
    """One stage per resolution, ending at the last unit of ``features`` before the next downsampling."""
    info, total = [], 1
    for i, s in enumerate(strides):
        total *= s
        if i + 1 == len(strides) or strides[i + 1] > 1:
            info.append(FeatureInfo(f"features.{i}", chans[i], total))
    return info


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv-BN-ReLU (one filter per channel) then 1x1 pointwise conv-BN-ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.dw = ConvNormAct(in_chs, in_chs, 3, stride, groups=in_chs, act_layer=act_layer)
        self.pw = ConvNormAct(in_chs, out_chs, 1, act_layer=act_layer)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


# The paper's Table 1 after the 3x3/2 stem of 32 maps: (output maps, depthwise stride) per unit.
V1_CONFIG: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
V1_CIFAR_CONFIG = ((64, 1), (128, 1), *V1_CONFIG[2:])


# The activations ``act`` names: ReLU as the paper writes, ReLU6 as TF-slim's release and timm's weights use.
V1_ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class MobileNetV1(ZooModel):
    """MobileNet v1 with width multiplier ``alpha`` (every layer's width scaled, rounded to 8).

    ``act="relu6"`` clips every activation at 6, as the TF-slim release and timm's ``mobilenetv1_100`` do.
    """

    classifier_name = "fc"
    first_conv = "features.0.conv"

    def __init__(
        self,
        alpha: float = 1.0,
        cfg: tuple[tuple[int, int], ...] = V1_CONFIG,
        stem_stride: int = 2,
        dropout: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        act: str = "relu",
    ) -> None:
        super().__init__()
        if act not in V1_ACTS:
            raise ValueError(f"act must be one of {', '.join(V1_ACTS)}, got {act!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        chs = make_divisible(32 * alpha)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, stem_stride, act_layer=V1_ACTS[act])]
        strides, chans = [stem_stride], [chs]
        for c, s in cfg:
            out = make_divisible(c * alpha)
            layers.append(DepthwiseSeparable(chs, out, s, V1_ACTS[act]))
            strides.append(s)
            chans.append(out)
            chs = out
        self.features = nn.Sequential(*layers)
        self.feature_info = _stages(strides, chans)
        self.num_features = chs
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(chs, num_classes)
        init_he(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1024 x 7 x 7 at 224

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(global_pool(x))
        return x if pre_logits else self.fc(x)


def conv_bn_relu6(in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation`` as used by MobileNet v2; indexed children keep its keys."""
    return nn.Sequential(
        nn.Conv2d(in_chs, out_chs, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_chs),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expansion by ``t`` (ReLU6), 3x3 depthwise (ReLU6), linear 1x1 projection; residual when shapes match."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_chs * expand_ratio))
        self.use_res_connect = stride == 1 and in_chs == out_chs
        layers: list[nn.Module] = [conv_bn_relu6(in_chs, hidden, 1)] if expand_ratio != 1 else []
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_chs, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_chs),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# The paper's Table 2 after the 3x3/2 stem of 32 maps: (expansion t, output maps c, repeats n, stride s).
V2_CONFIG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
V2_CIFAR_CONFIG = (V2_CONFIG[0], (6, 24, 2, 1), *V2_CONFIG[2:])


class MobileNetV2(ZooModel):
    """MobileNet v2 with width multiplier ``width_mult`` (widths rounded to ``round_nearest``)."""

    classifier_name = "classifier.1"
    first_conv = "features.0.0"

    def __init__(
        self,
        width_mult: float = 1.0,
        cfg: tuple[tuple[int, int, int, int], ...] = V2_CONFIG,
        stem_stride: int = 2,
        round_nearest: int = 8,
        dropout: float = 0.2,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        chs = make_divisible(32 * width_mult, round_nearest)
        last = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        layers: list[nn.Module] = [conv_bn_relu6(in_chans, chs, 3, stem_stride)]
        strides, chans = [stem_stride], [chs]
        for t, c, n, s in cfg:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                layers.append(InvertedResidual(chs, out, stride, t))
                strides.append(stride)
                chans.append(out)
                chs = out
        layers.append(conv_bn_relu6(chs, last, 1))
        strides.append(1)
        chans.append(last)
        self.features = nn.Sequential(*layers)
        self.feature_info = _stages(strides, chans)
        self.num_features = last
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last, num_classes))
        init_he(self)  # torchvision's: kaiming_normal_ fan_out, BN to identity, N(0, 0.01) linear

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1280 x 7 x 7 at 224

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[0](global_pool(x))
        return x if pre_logits else self.classifier[1](x)


_V1_PAPER = "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"
_V2_PAPER = "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
_V1 = dict(family="mobilenet", paper=_V1_PAPER, arxiv="1704.04861", year=2017)
_V2 = dict(family="mobilenet", paper=_V2_PAPER, arxiv="1801.04381", year=2018)
_CIFAR_NOTE = "CIFAR-style: stride 1 in the stem and in the first downsampling unit (total stride 8)"


@register_model(ModelInfo(
    name="mobilenet_v1", **_V1, params=4_231_976, params_approx=4.23e6, gmacs=0.569, top1=70.6,
    source="paper Table 6 (1.0 MobileNet-224)", small_variant="mobilenet_v1_cifar",
))
def mobilenet_v1(**kwargs) -> MobileNetV1:
    return MobileNetV1(1.0, **kwargs)


@register_model(ModelInfo(
    name="mobilenet_v1_050", **_V1, params=1_331_592, gmacs=0.149, top1=63.7,
    source="paper Table 6 (0.5 MobileNet-224)", small_variant="mobilenet_v1_cifar",
    notes="width multiplier 0.5; paper: 1.3M params (2.4 % below the exact count, too coarse for params_approx)",
))
def mobilenet_v1_050(**kwargs) -> MobileNetV1:
    return MobileNetV1(0.5, **kwargs)


@register_model(ModelInfo(
    name="mobilenet_v1_cifar", **_V1, input_size=(3, 32, 32), num_classes=10, params=3_217_226,
    source="computed from the layer specs", notes=_CIFAR_NOTE,
))
def mobilenet_v1_cifar(**kwargs) -> MobileNetV1:
    return MobileNetV1(1.0, V1_CIFAR_CONFIG, stem_stride=1, **kwargs)


@register_model(ModelInfo(
    name="mobilenet_v2", **_V2, params=3_504_872, gmacs=0.301, top1=71.878, source="torchvision 0.29.1 metadata",
    torchvision="mobilenet_v2", preprocessing=Preprocessing(resize=256, crop=224), small_variant="mobilenet_v2_cifar",
))
def mobilenet_v2(**kwargs) -> MobileNetV2:
    return MobileNetV2(1.0, **kwargs)


@register_model(ModelInfo(
    name="mobilenet_v2_cifar", **_V2, input_size=(3, 32, 32), num_classes=10, params=2_236_682,
    source="computed from the layer specs", notes=_CIFAR_NOTE,
))
def mobilenet_v2_cifar(**kwargs) -> MobileNetV2:
    return MobileNetV2(1.0, V2_CIFAR_CONFIG, stem_stride=1, **kwargs)
