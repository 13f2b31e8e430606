"""Inception-v2 (BN-Inception) and Inception-v3.

BN-Inception: Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
Internal Covariate Shift", https://arxiv.org/abs/1502.03167 — GoogLeNet's layout with BN after every
convolution, each 5x5 replaced by two 3x3, a third 28x28 module, grid reduction inside modules (3c) and
(4e) instead of pools between them (Figure 5). Built from :mod:`cnnzoo.models.googlenet`'s classes.

Inception-v3: Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for
Computer Vision", https://arxiv.org/abs/1512.00567 — factorised convolutions (two 3x3 for a 5x5, 1xn
then nx1), grid reduction by parallel stride-2 convolution and pooling, 299x299 inputs, and one
auxiliary classifier with BN on the 17x17 grid. In training mode it returns ``AuxOutputs(logits,
aux=(aux,))``; in eval mode, or with ``aux_logits=False``, logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..base import AuxClassifierModel, FeatureInfo
from ..layers import global_pool, init_truncnormal
from ..registry import ModelInfo, Preprocessing, register_model
from .googlenet import GoogLeNet, bn_conv, fit_aux_heads

# Figure 5 of the BN paper: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool proj, pool, stride.
# A pool proj of 0 is the table's "pass through"; a #1x1 of 0 drops that branch.
BN_INCEPTION: list[tuple[str, tuple]] = [
    ("3a", (64, 64, 64, 64, 96, 32, "avg")),
    ("3b", (64, 64, 96, 64, 96, 64, "avg")),
    ("3c", (0, 128, 160, 64, 96, 0, "max", 2)),
    ("4a", (224, 64, 96, 96, 128, 128, "avg")),
    ("4b", (192, 96, 128, 96, 128, 128, "avg")),
    ("4c", (160, 128, 160, 128, 160, 128, "avg")),
    ("4d", (96, 128, 192, 160, 192, 128, "avg")),
    ("4e", (0, 128, 192, 192, 256, 0, "max", 2)),
    ("5a", (352, 192, 320, 160, 224, 128, "avg")),
    ("5b", (352, 192, 320, 192, 224, 128, "max")),
]


@register_model(ModelInfo(
    name="inception_v2", family="inception", year=2015, arxiv="1502.03167",
    paper="Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
    min_size=7, params=11_278_528, source="computed from the paper's Figure 5",
    notes="BN-Inception; widths are Figure 5's filter columns (as in the Caffe BN-Inception release: "
          "608 maps out of 4c/4d, 1056 out of 4e); no dropout and no auxiliary heads, as in the paper",
))
def inception_v2(**kwargs) -> GoogLeNet:
    """BN-Inception: the first convolution is depthwise-separable with depth multiplier 8, as in the paper.

    The paper does not give pool padding; stride-2 pools are padded by 1 so that they match the stride-2
    convolutions beside them at every input size.
    """
    return GoogLeNet(BN_INCEPTION, **{
        "stem": "separable", "branch3": (3, 3), "pool_kernels": (), "dropout": 0.0, "aux_logits": False, **kwargs,
    })


class InceptionA(nn.Module):
    """35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1."""

    def __init__(self, in_chs: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = bn_conv(in_chs, 64, 1)
        self.branch5x5_1 = bn_conv(in_chs, 48, 1)
        self.branch5x5_2 = bn_conv(48, 64, 5)
        self.branch3x3dbl_1 = bn_conv(in_chs, 64, 1)
        self.branch3x3dbl_2 = bn_conv(64, 96, 3)
        self.branch3x3dbl_3 = bn_conv(96, 96, 3)
        self.branch_pool = bn_conv(in_chs, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(F.avg_pool2d(x, 3, 1, 1)),
        ], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 grid reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool 3x3/2 (Figure 10)."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch3x3 = bn_conv(in_chs, 384, 3, stride=2, padding=0)
        self.branch3x3dbl_1 = bn_conv(in_chs, 64, 1)
        self.branch3x3dbl_2 = bn_conv(64, 96, 3)
        self.branch3x3dbl_3 = bn_conv(96, 96, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, 2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 module with 7x7 factorised into 1x7 and 7x1 (Figure 6): 1x1 | 1x7 -> 7x1 | twice that | pool."""

    def __init__(self, in_chs: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = bn_conv(in_chs, 192, 1)
        self.branch7x7_1 = bn_conv(in_chs, c7, 1)
        self.branch7x7_2 = bn_conv(c7, c7, (1, 7))
        self.branch7x7_3 = bn_conv(c7, 192, (7, 1))
        self.branch7x7dbl_1 = bn_conv(in_chs, c7, 1)
        self.branch7x7dbl_2 = bn_conv(c7, c7, (7, 1))
        self.branch7x7dbl_3 = bn_conv(c7, c7, (1, 7))
        self.branch7x7dbl_4 = bn_conv(c7, c7, (7, 1))
        self.branch7x7dbl_5 = bn_conv(c7, 192, (1, 7))
        self.branch_pool = bn_conv(in_chs, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7dbl = layer(b7dbl)
        return torch.cat([self.branch1x1(x), b7, b7dbl, self.branch_pool(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 grid reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max-pool 3x3/2."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch3x3_1 = bn_conv(in_chs, 192, 1)
        self.branch3x3_2 = bn_conv(192, 320, 3, stride=2, padding=0)
        self.branch7x7x3_1 = bn_conv(in_chs, 192, 1)
        self.branch7x7x3_2 = bn_conv(192, 192, (1, 7))
        self.branch7x7x3_3 = bn_conv(192, 192, (7, 1))
        self.branch7x7x3_4 = bn_conv(192, 192, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (Figure 7): the 3x3s split into parallel 1x3 and 3x1."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch1x1 = bn_conv(in_chs, 320, 1)
        self.branch3x3_1 = bn_conv(in_chs, 384, 1)
        self.branch3x3_2a = bn_conv(384, 384, (1, 3))
        self.branch3x3_2b = bn_conv(384, 384, (3, 1))
        self.branch3x3dbl_1 = bn_conv(in_chs, 448, 1)
        self.branch3x3dbl_2 = bn_conv(448, 384, 3)
        self.branch3x3dbl_3a = bn_conv(384, 384, (1, 3))
        self.branch3x3dbl_3b = bn_conv(384, 384, (3, 1))
        self.branch_pool = bn_conv(in_chs, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl),
            self.branch_pool(F.avg_pool2d(x, 3, 1, 1)),
        ], 1)


class InceptionAux(nn.Module):
    """The auxiliary classifier on the 17x17 grid: 5x5/3 avg-pool, 1x1 conv 128, 5x5 conv 768 (with BN), FC.

    torchvision's head only works from 299 px up (the 5x5 conv needs a 5x5 pooled map); below that the
    pooled map is brought to 5x5 adaptively, so training works at every size the trunk accepts.
    """

    def __init__(self, in_chs: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = bn_conv(in_chs, 128, 1)
        self.conv1 = bn_conv(128, 768, 5, padding=0)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, 3)  # N x 768 x 5 x 5 at 299 px
        if min(x.shape[-2:]) < 5:
            x = F.adaptive_avg_pool2d(x, 5)
        return self.fc(global_pool(self.conv1(self.conv0(x))))


class Inception3(AuxClassifierModel):
    """Inception-v3, https://arxiv.org/abs/1512.00567, as released (torchvision's keys, BN eps 1e-3, init).

    The released model, whose weights everyone uses, differs from the paper in three places, kept here:
    the stem ends 1x1 80 -> 3x3 192 -> max-pool where Table 1 lists 3x3 80 -> 3x3/2 192 -> 3x3 288; the
    35x35 modules have a 5x5 branch beside the double 3x3 one; the auxiliary FC has no BN ("BN-auxiliary").
    """

    classifier_name = "fc"
    first_conv = "Conv2d_1a_3x3.conv"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        if transform_input and in_chans != 3:
            raise ValueError("transform_input re-normalises RGB inputs; use it only with in_chans=3")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 2048
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.Conv2d_1a_3x3 = bn_conv(in_chans, 32, 3, stride=2, padding=0)
        self.Conv2d_2a_3x3 = bn_conv(32, 32, 3, padding=0)
        self.Conv2d_2b_3x3 = bn_conv(32, 64, 3)
        self.maxpool1 = nn.MaxPool2d(3, 2)
        self.Conv2d_3b_1x1 = bn_conv(64, 80, 1)
        self.Conv2d_4a_3x3 = bn_conv(80, 192, 3, padding=0)
        self.maxpool2 = nn.MaxPool2d(3, 2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.aux_classifier_names = ("AuxLogits.fc",) if aux_logits else ()
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        self.feature_info = [
            FeatureInfo("Conv2d_2b_3x3", 64, 2), FeatureInfo("Conv2d_4a_3x3", 192, 4),
            FeatureInfo("Mixed_5d", 288, 8), FeatureInfo("Mixed_6e", 768, 16), FeatureInfo("Mixed_7c", 2048, 32),
        ]
        init_truncnormal(self, std=0.1)
        if self.AuxLogits is not None:
            init_truncnormal(self.AuxLogits.conv1, std=0.01)
            init_truncnormal(self.AuxLogits.fc, std=0.001)

    def init_classifier(self, layer: nn.Module) -> None:
        init_truncnormal(layer, std=0.1)

    def convert_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        return fit_aux_heads(self, state, ("AuxLogits.",))

    def _forward_trunk(self, x: Tensor, aux: list[Tensor] | None) -> Tensor:
        if self.transform_input:  # torchvision's: ImageNet-normalised inputs to (x - 0.5) / 0.5
            mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            x = x * (std / 0.5) + (mean - 0.5) / 0.5
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # N x 64 x 147 x 147
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))  # N x 192 x 71 x 71
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(self.maxpool2(x))))  # N x 288 x 35 x 35
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x)))))  # N x 768 x 17 x 17
        if aux is not None:
            aux.append(self.AuxLogits(x))
        return self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # N x 2048 x 8 x 8

    @property
    def has_aux(self) -> bool:
        return self.AuxLogits is not None


@register_model(ModelInfo(
    name="inception_v3", family="inception", year=2015, arxiv="1512.00567",
    paper="Rethinking the Inception Architecture for Computer Vision",
    input_size=(3, 299, 299), min_size=75, params=27_161_264, gmacs=5.713, top1=77.294,
    source="torchvision 0.29.1 metadata", torchvision="inception_v3",
    preprocessing=Preprocessing(resize=342, crop=299),
    notes="auxiliary head included (23,834,568 params with aux_logits=False)",
))
def inception_v3(**kwargs) -> Inception3:
    return Inception3(**kwargs)
