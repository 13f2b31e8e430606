"""Pre-activation ResNet: BN-ReLU-conv residual units on a clean identity path.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", https://arxiv.org/abs/1603.05027

Each unit computes ``x + F(x)`` with nothing after the addition, and ``F`` starts with BN-ReLU (the
paper's Fig. 4(e)). Where a unit changes shape, that BN-ReLU is shared by both paths, so the 1x1
projection reads the pre-activated input (in the paper's nets the first unit thus takes its activation
right after conv1), and the last unit is followed by a final BN-ReLU (section 4.1). The layout is the
authors' code:
``resnet-pre-act.lua`` (CIFAR: conv1 alone, then units) and fb.resnet.torch's ``preresnet.lua``
(ImageNet: conv1-BN-ReLU-max-pool, whose BN-ReLU is the first unit's pre-activation). Convolutions
have no bias, as there: every path meets a BN before any non-linearity.

Deliberate differences:

- bottleneck units stride on the 3x3, as ``preresnet.lua`` and torchvision do, where the CIFAR release
  strides the first 1x1 — the same parameters, and no input pixels skipped;
- each residual branch's last convolution starts at zero (``zero_init_residual=True``; Goyal et al.'s
  zero-init, https://arxiv.org/abs/1706.02677, as timm's ResNetV2), so every unit starts as the identity:
  with the paper's He init alone an untrained ResNet-1001 overflows float32 in eval mode.
  ``zero_init_residual=False`` gives the paper's init.
"""

from __future__ import annotations

from typing import Sequence, Union

from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import DropPath, global_pool, init_he, linear_decay
from ..registry import ModelInfo, register_model


def _projection(in_chs: int, out_chs: int, stride: int) -> nn.Conv2d | None:
    """The 1x1 projection shortcut where a unit changes shape; ``None`` keeps the identity."""
    if stride == 1 and in_chs == out_chs:
        return None
    return nn.Conv2d(in_chs, out_chs, 1, stride, bias=False)


def _preact(chs: int, enabled: bool) -> tuple[nn.Module, nn.Module]:
    if not enabled:  # the stem's BN-ReLU already pre-activates this unit
        return nn.Identity(), nn.Identity()
    return nn.BatchNorm2d(chs), nn.ReLU(inplace=True)


class PreActBasicBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, added to the shortcut; WRN's B(3,3)."""

    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int = 1, preact: bool = True,
                 drop_path: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.bn1, self.act1 = _preact(in_chs, preact)
        self.conv1 = nn.Conv2d(in_chs, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(planes, out_chs, 3, 1, 1, bias=False)
        self.drop_path = DropPath(drop_path)
        self.downsample = _projection(in_chs, out_chs, stride)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.drop(self.act2(self.bn2(out))))
        return self.drop_path(out) + shortcut


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (strided), BN-ReLU-conv1x1 to ``4 * planes``, added to the shortcut."""

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1, preact: bool = True,
                 drop_path: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        if dropout:
            raise ValueError("dropout between convolutions is for basic (WRN) blocks; "
                             "use drop_path_rate with bottleneck blocks")
        out_chs = planes * self.expansion
        self.bn1, self.act1 = _preact(in_chs, preact)
        self.conv1 = nn.Conv2d(in_chs, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.act3 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, out_chs, 1, bias=False)
        self.drop_path = DropPath(drop_path)
        self.downsample = _projection(in_chs, out_chs, stride)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.conv3(self.act3(self.bn3(out)))
        return self.drop_path(out) + shortcut


Block = Union[type[PreActBasicBlock], type[PreActBottleneck]]


class PreActResNet(ZooModel):
    """A pre-activation ResNet: a stem, stages of ``layers[i]`` blocks of width ``planes[i]``, a final BN-ReLU.

    The first stage keeps the stem's resolution, each later one halves it in its first block.
    ``small_input`` selects the CIFAR stem (one 3x3 conv, stride 1) over the ImageNet one (7x7/2 conv,
    BN-ReLU, 3x3/2 max-pool). ``drop_path_rate`` is stochastic depth's last-block drop probability,
    decayed linearly towards the input; ``dropout`` sits between the two convolutions of basic blocks;
    ``zero_init_residual`` starts every residual branch's last convolution at zero. ``stem_norm=False``
    leaves the ImageNet stem at conv and max-pool and gives the first unit its own BN-ReLU (timm's
    ResNetV2 layout: the BN-ReLU comes after the max-pool, not before it; the same parameters).
    """

    classifier_name = "fc"
    first_conv = "conv1"

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        planes: Sequence[int],
        stem_width: int = 64,
        small_input: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
        dropout: float = 0.0,
        zero_init_residual: bool = True,
        stem_norm: bool = True,
    ) -> None:
        super().__init__()
        if len(layers) != len(planes) or not layers or min(layers) < 1:
            raise ValueError(f"need one width per stage and at least one block each, got {layers} and {planes}")
        self.num_classes, self.in_chans = num_classes, in_chans
        if small_input:
            self.conv1 = nn.Conv2d(in_chans, stem_width, 3, 1, 1, bias=False)
            self.bn1, self.relu, self.maxpool = nn.Identity(), nn.Identity(), nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_chans, stem_width, 7, 2, 3, bias=False)
            self.bn1, self.relu = nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True)
            if not stem_norm:
                self.bn1, self.relu = nn.Identity(), nn.Identity()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        rates = iter(linear_decay(drop_path_rate, sum(layers)))
        chs, reduction = stem_width, 1 if small_input else 4
        self.feature_info = []
        self.stage_names: tuple[str, ...] = tuple(f"layer{i + 1}" for i in range(len(layers)))
        for i, (name, depth, width) in enumerate(zip(self.stage_names, layers, planes)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                # After the ImageNet stem's BN-ReLU, the first unit has no pre-activation of its own.
                preact = small_input or not stem_norm or (i, j) != (0, 0)
                blocks.append(block(chs, width, stride if j == 0 else 1, preact=preact,
                                    drop_path=next(rates), dropout=dropout))
                chs = width * block.expansion
            self.add_module(name, nn.Sequential(*blocks))
            reduction *= stride
            self.feature_info.append(FeatureInfo(name, chs, reduction, f"conv{i + 2}_x"))
        self.norm = nn.BatchNorm2d(chs)
        self.act = nn.ReLU(inplace=True)
        self.feature_info[-1] = FeatureInfo("act", chs, reduction, self.feature_info[-1].name)
        self.num_features = chs
        self.fc = nn.Linear(chs, num_classes)
        init_he(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (PreActBasicBlock, PreActBottleneck)):
                    m.zero_init_last()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # N x 64 x 56 x 56 at 224; N x 16 x 32 x 32 on CIFAR
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.act(self.norm(x))  # N x 2048 x 7 x 7 for ResNet-50 at 224; N x 256 x 8 x 8 for ResNet-164

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = global_pool(x)
        return x if pre_logits else self.fc(x)


def preact_resnet_cifar(depth: int, **kwargs) -> PreActResNet:
    """The paper's CIFAR net of ``depth = 9n + 2`` layers: conv1 (16), then three stages of ``n`` bottleneck
    units of 16-64, 32-128 and 64-256 channels (ResNet-164: n = 18; ResNet-1001: n = 111)."""
    if depth < 11 or (depth - 2) % 9:
        raise ValueError(f"a pre-activation CIFAR ResNet has 9n+2 layers (11, 20, ..., 164, ..., 1001), got {depth}")
    n = (depth - 2) // 9
    return PreActResNet(PreActBottleneck, (n, n, n), (16, 32, 64), stem_width=16, small_input=True, **kwargs)


_PAPER = "Identity Mappings in Deep Residual Networks"
_COMPUTED = "params computed from the layer specs"

# The ResNet paper's Table 1, as preresnet.lua builds it: block and units per stage, widths 64-128-256-512
# (x4 at a bottleneck's output). Exact parameter counts at 1000 classes.
IMAGENET: dict[str, tuple[Block, tuple[int, ...], int]] = {
    "preact_resnet18": (PreActBasicBlock, (2, 2, 2, 2), 11_687_720),
    "preact_resnet34": (PreActBasicBlock, (3, 4, 6, 3), 21_795_880),
    "preact_resnet50": (PreActBottleneck, (3, 4, 6, 3), 25_549_352),
    "preact_resnet101": (PreActBottleneck, (3, 4, 23, 3), 44_541_480),
    "preact_resnet152": (PreActBottleneck, (3, 8, 36, 3), 60_185_128),
}
# The paper's CIFAR bottleneck nets: depth, exact params at 10 classes, the paper's rounded figure.
# The paper's 10.2M for ResNet-1001 matches its weights without BN's scales and shifts (10,178,490); with
# them, as cnnzoo counts, it is 10.33M, outside the 1% check, so no rounded figure is recorded for it.
CIFAR: dict[str, tuple[int, int, float | None]] = {
    "preact_resnet164_cifar": (164, 1_703_258, 1.7e6),
    "preact_resnet1001_cifar": (1001, 10_327_706, None),
}


def _register_imagenet(name: str, block: Block, layers: tuple[int, ...], params: int) -> None:
    @register_model(ModelInfo(
        name=name, family="preact_resnet", paper=_PAPER, arxiv="1603.05027", year=2016,
        params=params, source=_COMPUTED, small_variant="preact_resnet18_cifar",
        notes="ResNet's ImageNet layout with pre-activation units, as fb.resnet.torch preresnet.lua",
    ))
    def build(**kwargs) -> PreActResNet:
        return PreActResNet(block, layers, (64, 128, 256, 512), **kwargs)


def _register_cifar(name: str, depth: int, params: int, approx: float | None) -> None:
    @register_model(ModelInfo(
        name=name, family="preact_resnet", paper=_PAPER, arxiv="1603.05027", year=2016,
        input_size=(3, 32, 32), min_size=1, num_classes=10, params=params, params_approx=approx,
        source=_COMPUTED + ("; rounded figure from the paper" if approx else ""),
        notes=f"the paper's CIFAR bottleneck net, 9n+2 layers with n = {(depth - 2) // 9}"
              + ("" if approx else "; the paper's 10.2M leaves out BN's scales and shifts"),
    ))
    def build(**kwargs) -> PreActResNet:
        return preact_resnet_cifar(depth, **kwargs)


for _name, (_block, _layers, _params) in IMAGENET.items():
    _register_imagenet(_name, _block, _layers, _params)
for _name, (_depth, _params, _approx) in CIFAR.items():
    _register_cifar(_name, _depth, _params, _approx)


@register_model(ModelInfo(
    name="preact_resnet18_cifar", family="preact_resnet", paper=_PAPER, arxiv="1603.05027", year=2016,
    input_size=(3, 32, 32), min_size=1, num_classes=10, params=11_172_170, source=_COMPUTED,
    notes="the common CIFAR form of PreAct-ResNet-18: 3x3 stem, 64-128-256-512 basic blocks, final BN-ReLU",
))
def preact_resnet18_cifar(**kwargs) -> PreActResNet:
    return PreActResNet(PreActBasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), stem_width=64, small_input=True, **kwargs)
