"""Inception-v4 and Inception-ResNet-v2.

Szegedy, Ioffe, Vanhoucke, Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual Connections
on Learning", https://arxiv.org/abs/1602.07261

Both networks are a stem, modules on the 35x35, 17x17 and 8x8 grids with a reduction module between
grids, then average pooling, dropout (keep 0.8) and the classifier. Convolutions the paper marks "V"
are unpadded (``padding=0``), the rest keep the grid size; every convolution is followed by batch
norm (epsilon 1e-3, as the authors' TensorFlow release) and ReLU, except the linear 1x1 projection
that closes each residual branch. Module and key names are those of the authors' TF-slim release as
ported by timm (``features.N`` for Inception-v4, ``conv2d_1a`` ... ``repeat_2`` for Inception-ResNet-v2),
so timm's weights load unchanged. Both need inputs of at least 75x75: the valid convolutions and
poolings leave a 1x1 map at 75 and nothing at 74.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import ConvNormAct, NormLayer, bn_eps, global_pool, init_he, relu_inplace
from ..registry import ModelInfo, register_model

ConvFactory = Callable[..., nn.Module]

# The paper's Table 1: filter counts k, l, m, n of Reduction-A (Figure 7).
REDUCTION_A = {"inception_v4": (192, 224, 256, 384), "inception_resnet_v2": (256, 256, 384, 384)}
# Modules on the 35x35, 17x17 and 8x8 grids: Figure 9 for Inception-v4, the authors' release for
# Inception-ResNet-v2 (see its class docstring).
DEPTHS = {"inception_v4": (4, 7, 3), "inception_resnet_v2": (10, 20, 10)}
# Scaling of the residual branches before the addition (Section 3.3), per grid.
RESIDUAL_SCALES = (0.17, 0.10, 0.20)


def conv_factory(norm_layer: NormLayer | None) -> ConvFactory:
    """Conv-BN-ReLU units, unpadded unless a padding is given (the paper's "V" is the default here)."""
    return partial(ConvNormAct, padding=0, norm_layer=norm_layer or bn_eps(1e-3), act_layer=relu_inplace)


# --- Inception-v4 (Figures 3-9) -----------------------------------------------------------------


class Mixed3a(nn.Module):
    """Stem, first split: 3x3/2 max-pool next to a 3x3/2 convolution (Figure 3), 147 -> 73, 64 -> 160."""

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = conv(64, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.maxpool(x), self.conv(x)), 1)


class Mixed4a(nn.Module):
    """Stem, second split: two 1x1-then-valid-3x3 towers, one factorised 7x7 between (Figure 3), 160 -> 192."""

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv(160, 64, kernel_size=1), conv(64, 96, kernel_size=3))
        self.branch1 = nn.Sequential(
            conv(160, 64, kernel_size=1),
            conv(64, 64, kernel_size=(1, 7), padding=(0, 3)),
            conv(64, 64, kernel_size=(7, 1), padding=(3, 0)),
            conv(64, 96, kernel_size=3),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x)), 1)


class Mixed5a(nn.Module):
    """Stem, last split: a 3x3/2 convolution next to a 3x3/2 max-pool (Figure 3), 71 -> 35, 192 -> 384."""

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.conv = conv(192, 192, kernel_size=3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.conv(x), self.maxpool(x)), 1)


class InceptionA(nn.Module):
    """The 35x35 module (Figure 4): 1x1, 1x1-3x3, 1x1-3x3-3x3 and avg-pool-1x1 towers of 96 each."""

    figure_name = "Inception-A"  # as the paper's figures name it

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = conv(384, 96, kernel_size=1)
        self.branch1 = nn.Sequential(conv(384, 64, kernel_size=1), conv(64, 96, kernel_size=3, padding=1))
        self.branch2 = nn.Sequential(
            conv(384, 64, kernel_size=1),
            conv(64, 96, kernel_size=3, padding=1),
            conv(96, 96, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                                     conv(384, 96, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class ReductionA(nn.Module):
    """35x35 to 17x17 (Figure 7): valid 3x3/2 conv (n), 1x1 (k)-3x3 (l)-3x3/2 (m), and 3x3/2 max-pool.

    Shared by both networks with the filter counts of the paper's Table 1; ``in_chs + m + n`` maps out.
    """

    figure_name = "Reduction-A"  # as the paper's figures name it

    def __init__(self, conv: ConvFactory, in_chs: int, k: int, l: int, m: int, n: int) -> None:
        super().__init__()
        self.branch0 = conv(in_chs, n, kernel_size=3, stride=2)
        self.branch1 = nn.Sequential(
            conv(in_chs, k, kernel_size=1),
            conv(k, l, kernel_size=3, padding=1),
            conv(l, m, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionB(nn.Module):
    """The 17x17 module (Figure 5): 1x1 (384), factorised 7x7 (256), factorised 7x7 twice (256), pool-1x1 (128).

    The deepest tower starts with 7x1 where the figure starts with 1x7, as in the authors' release.
    """

    figure_name = "Inception-B"  # as the paper's figures name it

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = conv(1024, 384, kernel_size=1)
        self.branch1 = nn.Sequential(
            conv(1024, 192, kernel_size=1),
            conv(192, 224, kernel_size=(1, 7), padding=(0, 3)),
            conv(224, 256, kernel_size=(7, 1), padding=(3, 0)),
        )
        self.branch2 = nn.Sequential(
            conv(1024, 192, kernel_size=1),
            conv(192, 192, kernel_size=(7, 1), padding=(3, 0)),
            conv(192, 224, kernel_size=(1, 7), padding=(0, 3)),
            conv(224, 224, kernel_size=(7, 1), padding=(3, 0)),
            conv(224, 256, kernel_size=(1, 7), padding=(0, 3)),
        )
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                                     conv(1024, 128, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class ReductionB(nn.Module):
    """17x17 to 8x8 (Figure 8): 1x1-3x3/2 (192), 1x1-1x7-7x1-3x3/2 (320) and a 3x3/2 max-pool, 1024 -> 1536."""

    figure_name = "Reduction-B"  # as the paper's figures name it

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv(1024, 192, kernel_size=1), conv(192, 192, kernel_size=3, stride=2))
        self.branch1 = nn.Sequential(
            conv(1024, 256, kernel_size=1),
            conv(256, 256, kernel_size=(1, 7), padding=(0, 3)),
            conv(256, 320, kernel_size=(7, 1), padding=(3, 0)),
            conv(320, 320, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionC(nn.Module):
    """The 8x8 module (Figure 6): 1x1, split 1x3/3x1 heads on two towers, and pool-1x1; 256 maps per output.

    The deeper tower runs 3x1 then 1x3 where the figure runs 1x3 then 3x1, as in the authors' release.
    """

    figure_name = "Inception-C"  # as the paper's figures name it

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = conv(1536, 256, kernel_size=1)
        self.branch1_0 = conv(1536, 384, kernel_size=1)
        self.branch1_1a = conv(384, 256, kernel_size=(1, 3), padding=(0, 1))
        self.branch1_1b = conv(384, 256, kernel_size=(3, 1), padding=(1, 0))
        self.branch2_0 = conv(1536, 384, kernel_size=1)
        self.branch2_1 = conv(384, 448, kernel_size=(3, 1), padding=(1, 0))
        self.branch2_2 = conv(448, 512, kernel_size=(1, 3), padding=(0, 1))
        self.branch2_3a = conv(512, 256, kernel_size=(1, 3), padding=(0, 1))
        self.branch2_3b = conv(512, 256, kernel_size=(3, 1), padding=(1, 0))
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                                     conv(1536, 256, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.branch1_0(x)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        return torch.cat((
            self.branch0(x),
            self.branch1_1a(x1), self.branch1_1b(x1),
            self.branch2_3a(x2), self.branch2_3b(x2),
            self.branch3(x),
        ), 1)


class InceptionV4(ZooModel):
    """Inception-v4 (Figure 9): stem, 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C.

    https://arxiv.org/abs/1602.07261 — faithful to the figures; the only departure is the 1x7/7x1 order
    inside Inception-B and -C, taken from the authors' release so that its weights load (same cost).
    ``depths`` sets the number of modules per grid.
    """

    classifier_name = "last_linear"
    first_conv = "features.0.conv"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        depths: tuple[int, int, int] = DEPTHS["inception_v4"],
        dropout: float = 0.2,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 1536
        conv = conv_factory(norm_layer)
        n35, n17, n8 = depths
        features: list[nn.Module] = [
            conv(in_chans, 32, kernel_size=3, stride=2),  # 299 -> 149
            conv(32, 32, kernel_size=3),  # 147
            conv(32, 64, kernel_size=3, padding=1),  # 147
            Mixed3a(conv),  # 73, 160
            Mixed4a(conv),  # 71, 192
            Mixed5a(conv),  # 35, 384
        ]
        features += [InceptionA(conv) for _ in range(n35)]
        features.append(ReductionA(conv, 384, *REDUCTION_A["inception_v4"]))  # 17, 1024
        features += [InceptionB(conv) for _ in range(n17)]
        features.append(ReductionB(conv))  # 8, 1536
        features += [InceptionC(conv) for _ in range(n8)]
        self.features = nn.Sequential(*features)
        ends = (2, 3, 5 + n35, 6 + n35 + n17, len(features) - 1)
        self.feature_info = [FeatureInfo(f"features.{i}", c, r)
                             for i, c, r in zip(ends, (64, 160, 384, 1024, 1536), (2, 4, 8, 16, 32))]
        self.head_drop = nn.Dropout(dropout)
        self.last_linear = nn.Linear(self.num_features, num_classes)
        init_he(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # N x 1536 x 8 x 8 at 299

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.head_drop(global_pool(x))
        return x if pre_logits else self.last_linear(x)


# --- Inception-ResNet-v2 (Figures 15-19, as released) --------------------------------------------


class Mixed5b(nn.Module):
    """End of the released stem: an Inception-v3 35x35 module, 192 -> 320 maps (96 + 64 + 96 + 64)."""

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = conv(192, 96, kernel_size=1)
        self.branch1 = nn.Sequential(conv(192, 48, kernel_size=1), conv(48, 64, kernel_size=5, padding=2))
        self.branch2 = nn.Sequential(
            conv(192, 64, kernel_size=1),
            conv(64, 96, kernel_size=3, padding=1),
            conv(96, 96, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                                     conv(192, 64, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class _Residual(nn.Module):
    """Shared forward of the residual modules: towers, concatenation, linear 1x1, scaled sum, ReLU."""

    towers: tuple[str, ...]
    conv2d: nn.Conv2d

    def __init__(self, scale: float, act: bool) -> None:
        super().__init__()
        self.scale = scale
        self.relu = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2d(torch.cat([getattr(self, t)(x) for t in self.towers], 1))
        return self.relu(out * self.scale + x)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class InceptionResNetA(_Residual):
    """The 35x35 residual module (Figure 16): 1x1 (32), 1x1-3x3 (32), 1x1-3x3-3x3 (48, 64); 128 -> 320 linear."""

    figure_name = "Inception-ResNet-A"  # as the paper's figures name it

    towers = ("branch0", "branch1", "branch2")

    def __init__(self, conv: ConvFactory, scale: float = 0.17, act: bool = True) -> None:
        super().__init__(scale, act)
        self.branch0 = conv(320, 32, kernel_size=1)
        self.branch1 = nn.Sequential(conv(320, 32, kernel_size=1), conv(32, 32, kernel_size=3, padding=1))
        self.branch2 = nn.Sequential(
            conv(320, 32, kernel_size=1),
            conv(32, 48, kernel_size=3, padding=1),
            conv(48, 64, kernel_size=3, padding=1),
        )
        self.conv2d = nn.Conv2d(128, 320, kernel_size=1)


class InceptionResNetB(_Residual):
    """The 17x17 residual module (Figure 17): 1x1 (192), 1x1-1x7-7x1 (128, 160, 192); 384 -> 1088 linear."""

    figure_name = "Inception-ResNet-B"  # as the paper's figures name it

    towers = ("branch0", "branch1")

    def __init__(self, conv: ConvFactory, scale: float = 0.10, act: bool = True) -> None:
        super().__init__(scale, act)
        self.branch0 = conv(1088, 192, kernel_size=1)
        self.branch1 = nn.Sequential(
            conv(1088, 128, kernel_size=1),
            conv(128, 160, kernel_size=(1, 7), padding=(0, 3)),
            conv(160, 192, kernel_size=(7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1088, kernel_size=1)


class InceptionResNetC(_Residual):
    """The 8x8 residual module (Figure 19): 1x1 (192), 1x1-1x3-3x1 (192, 224, 256); 448 -> 2080 linear."""

    figure_name = "Inception-ResNet-C"  # as the paper's figures name it

    towers = ("branch0", "branch1")

    def __init__(self, conv: ConvFactory, scale: float = 0.20, act: bool = True) -> None:
        super().__init__(scale, act)
        self.branch0 = conv(2080, 192, kernel_size=1)
        self.branch1 = nn.Sequential(
            conv(2080, 192, kernel_size=1),
            conv(192, 224, kernel_size=(1, 3), padding=(0, 1)),
            conv(224, 256, kernel_size=(3, 1), padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(448, 2080, kernel_size=1)


class ResNetReductionB(nn.Module):
    """17x17 to 8x8 for Inception-ResNet-v2 (Figure 18): three 1x1 (256) towers ending in 3x3/2, and a max-pool.

    Outputs 384 + 288 + 320 + 1088 = 2080 maps.
    """

    def __init__(self, conv: ConvFactory) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv(1088, 256, kernel_size=1), conv(256, 384, kernel_size=3, stride=2))
        self.branch1 = nn.Sequential(conv(1088, 256, kernel_size=1), conv(256, 288, kernel_size=3, stride=2))
        self.branch2 = nn.Sequential(
            conv(1088, 256, kernel_size=1),
            conv(256, 288, kernel_size=3, padding=1),
            conv(288, 320, kernel_size=3, stride=2),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResNetV2(ZooModel):
    """Inception-ResNet-v2 as the authors released it: residual Inception modules with scaled residuals.

    https://arxiv.org/abs/1602.07261 — the paper's own figures do not add up (Reduction-A gives 1152 maps
    where Inception-ResNet-B adds 1154 to its input; Reduction-B gives 2146 where Inception-ResNet-C adds
    2048), so this follows the authors' TF-slim release, the network behind the published accuracy: an
    Inception-v3 stem ending in a 320-map module (the paper shares Inception-v4's 384-map stem), 320/1088/2080
    maps per grid, 10/20/10 modules (the paper draws 5/10/5), the last 8x8 module unscaled and without
    ReLU, and a 1x1 conv to 1536 maps before pooling. The residual branches are scaled by 0.17, 0.10 and
    0.20 (Section 3.3: "between 0.1 and 0.3").
    """

    classifier_name = "classif"
    first_conv = "conv2d_1a.conv"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        depths: tuple[int, int, int] = DEPTHS["inception_resnet_v2"],
        scales: tuple[float, float, float] = RESIDUAL_SCALES,
        dropout: float = 0.2,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        if depths[2] < 1:
            raise ValueError(f"Inception-ResNet-v2 needs at least one 8x8 module, got depths={tuple(depths)}")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 1536
        conv = conv_factory(norm_layer)
        n35, n17, n8 = depths
        s35, s17, s8 = scales
        self.conv2d_1a = conv(in_chans, 32, kernel_size=3, stride=2)
        self.conv2d_2a = conv(32, 32, kernel_size=3)
        self.conv2d_2b = conv(32, 64, kernel_size=3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = conv(64, 80, kernel_size=1)
        self.conv2d_4a = conv(80, 192, kernel_size=3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)
        self.mixed_5b = Mixed5b(conv)
        self.repeat = nn.Sequential(*[InceptionResNetA(conv, s35) for _ in range(n35)])
        self.mixed_6a = ReductionA(conv, 320, *REDUCTION_A["inception_resnet_v2"])
        self.repeat_1 = nn.Sequential(*[InceptionResNetB(conv, s17) for _ in range(n17)])
        self.mixed_7a = ResNetReductionB(conv)
        self.repeat_2 = nn.Sequential(*[InceptionResNetC(conv, s8) for _ in range(n8 - 1)])
        self.block8 = InceptionResNetC(conv, scale=1.0, act=False)
        self.conv2d_7b = conv(2080, self.num_features, kernel_size=1)
        self.feature_info = [
            FeatureInfo("conv2d_2b", 64, 2), FeatureInfo("conv2d_4a", 192, 4), FeatureInfo("repeat", 320, 8),
            FeatureInfo("repeat_1", 1088, 16), FeatureInfo("conv2d_7b", self.num_features, 32),
        ]
        self.head_drop = nn.Dropout(dropout)
        self.classif = nn.Linear(self.num_features, num_classes)
        init_he(self)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))  # N x 64 x 147 x 147 at 299
        x = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))  # N x 192 x 71 x 71
        x = self.repeat(self.mixed_5b(self.maxpool_5a(x)))  # N x 320 x 35 x 35
        x = self.repeat_1(self.mixed_6a(x))  # N x 1088 x 17 x 17
        x = self.block8(self.repeat_2(self.mixed_7a(x)))  # N x 2080 x 8 x 8
        return self.conv2d_7b(x)  # N x 1536 x 8 x 8

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.head_drop(global_pool(x))
        return x if pre_logits else self.classif(x)


# --- registered builders ---------------------------------------------------------------------------

_PAPER = "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"


@register_model(ModelInfo(
    name="inception_v4", family="inception_v4", paper=_PAPER, arxiv="1602.07261", year=2016,
    input_size=(3, 299, 299), min_size=75, params=42_679_816, params_approx=42.68e6,
    gmacs=12.28, top1=80.1, source="timm results, TF-Slim",
    notes="parameters equal timm's inception_v4 exactly; no auxiliary head (the paper draws none)",
))
def inception_v4(**kwargs) -> InceptionV4:
    return InceptionV4(**kwargs)


@register_model(ModelInfo(
    name="inception_resnet_v2", family="inception_v4", paper=_PAPER, arxiv="1602.07261", year=2016,
    input_size=(3, 299, 299), min_size=75, params=55_843_464, params_approx=55.84e6,
    gmacs=13.18, top1=80.4, source="timm results, Keras",
    notes="the authors' released layout (the paper's figures are inconsistent); parameters equal timm's exactly",
))
def inception_resnet_v2(**kwargs) -> InceptionResNetV2:
    return InceptionResNetV2(**kwargs)
