"""GoogLeNet (Inception-v1): 22 layers of Inception modules, with two auxiliary classifiers for training.

Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich, "Going Deeper with
Convolutions", https://arxiv.org/abs/1409.4842 (ILSVRC 2014 classification winner).

An Inception module runs four branches side by side and concatenates them: a 1x1 convolution; a 1x1
reduction then a 3x3; a 1x1 reduction then a 5x5; a 3x3 max-pool then a 1x1 projection. One
:class:`Inception` class builds all of them: the convolution factory chooses BN or the paper's biased
convolutions, and the kernels after the second reduction choose the paper's 5x5, torchvision's 3x3 or
BN-Inception's two 3x3 (:mod:`cnnzoo.models.inception` builds BN-Inception from the same classes).

In training mode the model returns ``AuxOutputs(logits, aux=(aux1, aux2))``: ``aux1`` reads the output
of inception (4a), ``aux2`` that of (4d); the paper adds their losses with weight 0.3 and drops them at
inference. In eval mode, and with ``aux_logits=False`` (no auxiliary heads at all), it returns logits.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..base import AuxClassifierModel, FeatureInfo
from ..layers import ConvNormAct, bn_eps, init_he, init_truncnormal, paper_lrn, relu_inplace
from ..registry import ModelInfo, Preprocessing, register_model

ConvFactory = Callable[..., nn.Module]


def bn_conv(in_chs: int, out_chs: int, kernel_size: int | tuple[int, int], stride: int = 1,
            padding: int | tuple[int, int] | None = None) -> nn.Module:
    """torchvision's ``BasicConv2d``: a bias-free convolution, BN (eps 1e-3, from the TF ports), ReLU."""
    return ConvNormAct(in_chs, out_chs, kernel_size, stride, padding, norm_layer=bn_eps(1e-3), act_layer=relu_inplace)


def plain_conv(in_chs: int, out_chs: int, kernel_size: int | tuple[int, int], stride: int = 1,
               padding: int | tuple[int, int] | None = None) -> nn.Module:
    """The 2014 paper's layer: a convolution with bias, then ReLU (no normalisation)."""
    return ConvNormAct(in_chs, out_chs, kernel_size, stride, padding, norm_layer=None, act_layer=relu_inplace)


def fit_aux_heads(model: nn.Module, state: dict[str, Tensor], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """Fit a state dict's auxiliary heads (keys starting with ``prefixes``) to ``model``.

    torchvision's files carry the heads (its pretrained GoogLeNet's are untrained): they are dropped for a
    model built with ``aux_logits=False``; a file saved without them leaves the model's own heads at their
    fresh initialisation, with a warning.
    """
    own = model.state_dict()
    if not any(k.startswith(prefixes) for k in own):
        return {k: v for k, v in state.items() if not k.startswith(prefixes)}
    if not any(k.startswith(prefixes) for k in state):
        warnings.warn("these weights have no auxiliary classifiers; the model's keep their fresh initialisation",
                      stacklevel=3)
        return {**state, **{k: v for k, v in own.items() if k.startswith(prefixes)}}
    return state


class Inception(nn.Module):
    """Four branches concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> ``branch3`` kernels | 3x3 pool -> 1x1.

    ``ch1x1=0`` drops the first branch and ``pool_proj=0`` passes the pooled input through unprojected
    (BN-Inception's grid-reduction modules, which also set ``stride=2``). Keys are torchvision's:
    ``branch1``, ``branch2.{0,1}``, ``branch3.{0,1,...}``, ``branch4.1``.
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        pool: str = "max",
        stride: int = 1,
        conv: ConvFactory = bn_conv,
        branch3: Sequence[int] = (5,),
    ) -> None:
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.branch1 = conv(in_chs, ch1x1, 1) if ch1x1 else None
        self.branch2 = nn.Sequential(conv(in_chs, ch3x3red, 1), conv(ch3x3red, ch3x3, 3, stride))
        layers, chs = [conv(in_chs, ch5x5red, 1)], ch5x5red
        for i, k in enumerate(branch3):
            layers.append(conv(chs, ch5x5, k, stride if i == len(branch3) - 1 else 1))
            chs = ch5x5
        self.branch3 = nn.Sequential(*layers)
        pool_layer = (nn.MaxPool2d if pool == "max" else nn.AvgPool2d)(3, stride, 1)
        self.branch4 = nn.Sequential(pool_layer, conv(in_chs, pool_proj, 1)) if pool_proj else nn.Sequential(pool_layer)
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + (pool_proj or in_chs)

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches if b is not None], 1)


class PaperAuxPool(nn.Module):
    """The paper's 5x5/3 average pool (4x4 maps at 224 px); at other input sizes the result is then
    averaged adaptively to the 4x4 that the auxiliary FC expects, so training works at any size."""

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, 3)
        return F.adaptive_avg_pool2d(x, 4)


class InceptionAux(nn.Module):
    """Auxiliary classifier: pool to 4x4, 1x1 conv to 128, FC 1024 + ReLU, dropout, FC to the classes."""

    def __init__(self, in_chs: int, num_classes: int, conv: ConvFactory = bn_conv, dropout: float = 0.7,
                 pool: nn.Module | None = None) -> None:
        super().__init__()
        self.pool = pool if pool is not None else nn.AdaptiveAvgPool2d(4)
        self.conv = conv(in_chs, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x)).flatten(1)  # N x 2048
        return self.fc2(self.dropout(self.act(self.fc1(x))))


# The paper's Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj; "M" is a stride-2 max-pool.
GOOGLENET: list[tuple[str, tuple] | str] = [
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    "M",
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    "M",
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
]


Layer = tuple[str, nn.Module, int, int]  # name, module, stride, output channels


def make_stem(kind: str, in_chans: int, conv: ConvFactory, lrn: bool) -> list[Layer]:
    """``"imagenet"``: 7x7/2 conv 64, 3x3/2 pool, [LRN], 1x1 conv 64, 3x3 conv 192, [LRN], 3x3/2 pool;
    ``"separable"``: the same with BN-Inception's depthwise-separable 7x7 (depth multiplier 8);
    ``"cifar"``: one 3x3 conv of 192 maps, no downsampling."""
    if kind == "cifar":
        return [("conv1", conv(in_chans, 192, 3), 1, 192)]
    if kind == "separable":
        conv1: nn.Module = nn.Sequential(OrderedDict(
            dw=nn.Conv2d(in_chans, in_chans * 8, 7, 2, 3, groups=in_chans, bias=False),
            pw=conv(in_chans * 8, 64, 1),
        ))
    elif kind == "imagenet":
        conv1 = conv(in_chans, 64, 7, 2)
    else:
        raise ValueError(f"stem must be 'imagenet', 'separable' or 'cifar', got {kind!r}")
    layers = [("conv1", conv1, 2, 64), ("maxpool1", nn.MaxPool2d(3, 2, ceil_mode=True), 2, 64)]
    layers += [("lrn1", paper_lrn(), 1, 64)] if lrn else []
    layers += [("conv2", conv(64, 64, 1), 1, 64), ("conv3", conv(64, 192, 3), 1, 192)]
    layers += [("lrn2", paper_lrn(), 1, 192)] if lrn else []
    return layers + [("maxpool2", nn.MaxPool2d(3, 2, ceil_mode=True), 2, 192)]


class GoogLeNet(AuxClassifierModel):
    """GoogLeNet from a table of Inception rows, https://arxiv.org/abs/1409.4842.

    The options select the paper's network, torchvision's BN variant, BN-Inception or a CIFAR form:
    ``stem`` (see :func:`make_stem`), ``batch_norm`` (else biased convolutions), ``lrn`` (the paper's two
    LRN layers in the stem), ``branch3`` (the kernels after the second reduction), ``pool_kernels`` (of
    the "M" pools: the paper's 3 and 3, torchvision's 3 and 2; padded 3x3 pools in the CIFAR form),
    ``aux_logits`` (the heads on (4a) and (4d)). The final 7x7/1 average pool is global pooling, which is
    the same at 224 px and lets other sizes through.
    """

    classifier_name = "fc"
    first_conv = "conv1.conv"

    def __init__(
        self,
        blocks: Sequence[tuple[str, tuple] | str],
        num_classes: int = 1000,
        in_chans: int = 3,
        *,
        batch_norm: bool = True,
        lrn: bool = False,
        branch3: Sequence[int] = (3,),
        stem: str = "imagenet",
        pool_kernels: Sequence[int] = (3, 2),
        dropout: float = 0.2,
        aux_logits: bool = True,
        aux_dropout: float = 0.7,
        paper_aux_pool: bool = False,
        transform_input: bool = False,
    ) -> None:
        super().__init__()
        if transform_input and in_chans != 3:
            raise ValueError("transform_input re-normalises RGB inputs; use it only with in_chans=3")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.aux_logits, self.transform_input = aux_logits, transform_input
        if stem == "separable":
            self.first_conv = "conv1.dw"
        conv = bn_conv if batch_norm else plain_conv

        layers = make_stem(stem, in_chans, conv, lrn)
        chs, kernels, key = layers[-1][3], iter(pool_kernels), ""
        for block in blocks:
            if block == "M":  # named after the stage it ends, as torchvision's maxpool3 and maxpool4
                pool = nn.MaxPool2d(3, 2, 1) if stem == "cifar" else nn.MaxPool2d(next(kernels), 2, ceil_mode=True)
                layers.append((f"maxpool{key[0]}", pool, 2, chs))
                continue
            key, row = block
            module = Inception(chs, *row, conv=conv, branch3=branch3)
            module.figure_name = f"Inception ({key})"
            chs = module.out_chs
            layers.append((f"inception{key}", module, row[7] if len(row) > 7 else 1, chs))

        self._trunk = [name for name, *_ in layers]
        stages: dict[int, FeatureInfo] = {}
        reduction = 1
        for name, module, stride, out_chs in layers:
            self.add_module(name, module)
            reduction *= stride
            stages[reduction] = FeatureInfo(name, out_chs, reduction)
        self.feature_info = list(stages.values())

        self._aux_taps: dict[str, str] = {}
        if aux_logits:
            for tap, aux in (("inception4a", "aux1"), ("inception4d", "aux2")):
                tap_chs = self.get_submodule(tap).out_chs
                pool = PaperAuxPool() if paper_aux_pool else None
                self.add_module(aux, InceptionAux(tap_chs, num_classes, conv, aux_dropout, pool))
                self._aux_taps[tap] = aux
        self.aux_classifier_names = tuple(f"{aux}.fc2" for aux in self._aux_taps.values())

        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(chs, num_classes)
        self.num_features = chs
        if batch_norm:
            init_truncnormal(self, std=0.01)
        else:
            init_he(self)

    def init_classifier(self, layer: nn.Module) -> None:
        init_truncnormal(layer, std=0.01)

    def convert_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        return fit_aux_heads(self, state, ("aux1.", "aux2."))

    def _transform(self, x: Tensor) -> Tensor:
        """torchvision's ``transform_input``: map ImageNet-normalised inputs to the (x - 0.5) / 0.5 scaling."""
        if not self.transform_input:
            return x
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def _forward_trunk(self, x: Tensor, aux: list[Tensor] | None) -> Tensor:
        # At 224 px: conv1 N x 64 x 112 x 112, maxpool2 N x 192 x 28 x 28, inception3b N x 480 x 28 x 28,
        # inception4e N x 832 x 14 x 14, inception5b N x 1024 x 7 x 7.
        x = self._transform(x)
        for name in self._trunk:
            x = getattr(self, name)(x)
            if aux is not None and name in self._aux_taps:
                aux.append(getattr(self, self._aux_taps[name])(x))
        return x

    @property
    def has_aux(self) -> bool:
        return bool(self._aux_taps)


_PAPER = "Going Deeper with Convolutions"
_ILSVRC = "ILSVRC 2014: 1st in classification"


@register_model(ModelInfo(
    name="googlenet", family="googlenet", paper=_PAPER, arxiv="1409.4842", year=2014, ilsvrc=_ILSVRC,
    min_size=15, params=13_004_888, gmacs=1.498, top1=69.778, source="torchvision 0.29.1 metadata",
    torchvision="googlenet", small_variant="googlenet_cifar", preprocessing=Preprocessing(resize=256, crop=224),
    notes="torchvision's BN variant, aux heads included (6,624,904 params with aux_logits=False); "
          "its '5x5' branch uses 3x3 kernels, kept so torchvision weights load",
))
def googlenet(**kwargs) -> GoogLeNet:
    """torchvision's GoogLeNet: BN after every convolution, 3x3 where the paper has 5x5, a 2x2 last pool,
    dropout 0.2; its keys and initialisation, so its weights load unchanged."""
    return GoogLeNet(GOOGLENET, **kwargs)


@register_model(ModelInfo(
    name="googlenet_paper", family="googlenet", paper=_PAPER, arxiv="1409.4842", year=2014, ilsvrc=_ILSVRC,
    min_size=31, params=13_378_280, source="computed from the paper's Table 1 and auxiliary-head description",
    small_variant="googlenet_cifar",
    notes="as published: no BN, biased convolutions, LRN in the stem, 5x5 branches, dropout 0.4, "
          "aux heads with 5x5/3 average pools; LRN constants are AlexNet's (the paper gives none)",
))
def googlenet_paper(**kwargs) -> GoogLeNet:
    """The 2014 network as published (He initialisation: the paper gives none)."""
    return GoogLeNet(GOOGLENET, **{
        "batch_norm": False, "lrn": True, "branch3": (5,), "pool_kernels": (3, 3), "dropout": 0.4,
        "paper_aux_pool": True, **kwargs,
    })


@register_model(ModelInfo(
    name="googlenet_cifar", family="googlenet", paper=_PAPER, arxiv="1409.4842", year=2014,
    input_size=(3, 32, 32), num_classes=10, params=6_158_346, source="computed from the layer specs",
    notes="the common CIFAR form: one 3x3 conv of 192 maps as the stem, 3x3/2 padded pools after (3b) and (4e), "
          "two 3x3 convolutions in place of each 5x5, BN, no auxiliary heads; takes 28x28 too",
))
def googlenet_cifar(**kwargs) -> GoogLeNet:
    return GoogLeNet(GOOGLENET, **{"stem": "cifar", "branch3": (3, 3), "dropout": 0.0, "aux_logits": False, **kwargs})
