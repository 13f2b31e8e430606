"""ResNet, its wide and aggregated (ResNeXt) forms, and the CIFAR ResNets.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385
Zagoruyko & Komodakis, "Wide Residual Networks", https://arxiv.org/abs/1605.07146
Xie, Girshick, Dollár, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks",
https://arxiv.org/abs/1611.05431
Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth", https://arxiv.org/abs/1603.09382

One class covers them all: a stem, stages of :class:`BasicBlock` or :class:`Bottleneck` residual
blocks, global average pooling and one linear layer. BN follows every convolution (the paper's rule),
convolutions get He init, and every model takes ``drop_path_rate`` (stochastic depth, linearly
decayed over all blocks). Keys and init are torchvision's, so its ``.pth`` files load unchanged.

Deliberate differences from the papers, each for a reason:

- Bottlenecks stride on the 3x3 conv ("v1.5", as torchvision and its weights; about +0.5% top-1);
  ``stride_in_1x1=True`` puts the stride on the first 1x1 conv as the ResNet paper did.
- The classifier keeps PyTorch's default init, as torchvision (the paper does not specify one).
- Option A shortcuts append their zero channels after the identity ones (the paper does not say where).
- ``resnet18_cifar`` is not from the paper: the common CIFAR adaptation (3x3/1 stem, no max-pool,
  https://github.com/kuangliu/pytorch-cifar).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn
from torch.nn import functional as F

from ..base import FeatureInfo, ZooModel
from ..layers import DropPath, NormLayer, global_pool, init_he, linear_decay
from ..registry import ModelInfo, Preprocessing, register_model


class ZeroPadShortcut(nn.Module):
    """The paper's option A: identity, subsampled by ``stride``, with zero channels appended; no parameters."""

    #: why ``cnnzoo prune`` refuses a network with this shortcut (see :func:`cnnzoo.training.prune.check_prunable`)
    unprunable = ("its option-A shortcuts append zero channels (F.pad), which tie each stage's channels to the "
                  "next stage's in a way Torch-Pruning's dependency graph does not follow; train it with "
                  "--model-arg shortcut=B (projection shortcuts, as Torch-Pruning's own CIFAR ResNets) to prune it")

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f"a zero-padding shortcut cannot shrink {in_chs} channels to {out_chs}; use shortcut='B'")
        self.extra, self.stride = out_chs - in_chs, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self) -> str:
        return f"extra={self.extra}, stride={self.stride}"


def make_shortcut(kind: str, in_chs: int, out_chs: int, stride: int, norm_layer: NormLayer) -> nn.Module | None:
    """``None`` (identity) where the shape is kept; else option A (zero padding) or B (1x1 conv + BN)."""
    if stride == 1 and in_chs == out_chs:
        return None
    if kind == "A":
        return ZeroPadShortcut(in_chs, out_chs, stride)
    return nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), norm_layer(out_chs))


class BasicBlock(nn.Module):
    """Two 3x3 convs (the first one strided) plus the shortcut: ResNet-18/34 and the CIFAR ResNets."""

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
        drop_path: float = 0.0,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock takes no groups or bottleneck width; ResNeXt and wide ResNets use Bottleneck")
        self.conv1 = nn.Conv2d(in_chs, planes, 3, stride, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.drop_path(out) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand by 4, plus the shortcut: ResNet-50 and deeper.

    The inner width is ``planes * base_width / 64 * groups``: 64 and 1 give the ResNet bottleneck,
    128 gives the wide ResNets' doubled one, ``groups`` the ResNeXt cardinality.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: NormLayer = nn.BatchNorm2d,
        drop_path: float = 0.0,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_chs, width, 1, s1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, s3, 1, groups=groups, bias=False)
        self.bn2 = norm_layer(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.drop_path(out) + shortcut)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(ZooModel):
    """Stem, then ``len(layers)`` stages (``layer1`` ...) of residual blocks, the first at stride 1 and
    the others halving the map, then global average pooling and ``fc``.

    ``stem="imagenet"`` is the paper's 7x7/2 conv and 3x3/2 max-pool; ``"cifar"`` a 3x3/1 conv and no
    pool. ``widths`` are the stages' ``planes`` (a block outputs ``planes * block.expansion``).
    ``shortcut`` is the paper's option ``"A"`` (parameter-free zero padding) or ``"B"`` (projection),
    used only where the shape changes.
    """

    classifier_name = "fc"
    first_conv = "conv1"

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: int = 64,
        shortcut: str = "B",
        stride_in_1x1: bool = False,
        zero_init_residual: bool = False,
        drop_path_rate: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}")
        if len(layers) != len(widths):
            raise ValueError(f"give one width per stage: {len(layers)} stages but {len(widths)} widths")
        self.num_classes, self.in_chans = num_classes, in_chans
        imagenet = stem == "imagenet"
        k, s = (7, 2) if imagenet else (3, 1)
        self.conv1 = nn.Conv2d(in_chans, stem_width, k, s, k // 2, bias=False)
        self.bn1 = norm_layer(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        self.feature_info = [FeatureInfo("relu", stem_width, s, "conv1")]

        drop_rates = iter(linear_decay(drop_path_rate, sum(layers)))
        in_chs, reduction = stem_width, s * (2 if imagenet else 1)
        self.stage_names: list[str] = []
        for i, (n, planes) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            out_chs = planes * block.expansion
            blocks = []
            for j in range(n):
                blocks.append(block(
                    in_chs, planes, stride if j == 0 else 1,
                    make_shortcut(shortcut, in_chs, out_chs, stride if j == 0 else 1, norm_layer),
                    groups, width_per_group, norm_layer, next(drop_rates), stride_in_1x1,
                ))
                in_chs = out_chs
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.feature_info.append(FeatureInfo(name, out_chs, reduction, f"conv{i + 2}_x"))  # the paper's Table 1
        self.num_features = in_chs
        self.fc = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()

        init_he(self)
        self.init_classifier(self.fc)
        if zero_init_residual:  # Goyal et al., https://arxiv.org/abs/1706.02677: each block starts as identity
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    def init_classifier(self, layer: nn.Module) -> None:
        """PyTorch's default linear init (uniform in ±1/sqrt(fan_in)), as torchvision's ResNets."""
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # N x 64 x 56 x 56 at 224 (ImageNet stem)
        for name in self.stage_names:
            x = self.get_submodule(name)(x)
        return x  # N x 2048 x 7 x 7 at 224 for bottleneck ResNets, 512 for basic ones

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = global_pool(x)
        return x if pre_logits else self.fc(x)


# The ResNet paper's Table 1: block type and blocks per stage (conv2_x ... conv5_x).
ARCHS: dict[int, tuple[Block, tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}

_PAPERS = {  # key: (title, arXiv id, year)
    "resnet": ("Deep Residual Learning for Image Recognition", "1512.03385", 2015),
    "wide_resnet": ("Wide Residual Networks", "1605.07146", 2016),
    "resnext": ("Aggregated Residual Transformations for Deep Neural Networks", "1611.05431", 2016),
    "stochastic_depth": ("Deep Networks with Stochastic Depth", "1603.09382", 2016),
}
_ILSVRC = {
    "resnet": "ILSVRC 2015: 1st in classification, detection and localisation",
    "resnext": "ILSVRC 2016: 2nd in classification",
}
_TV = "torchvision 0.29.1 metadata (IMAGENET1K_V1 weights; top-1 to two decimals)"
_RESIZE_CROP = Preprocessing(resize=256, crop=224)

# name: (paper, depth, groups, width_per_group, exact params, GMACs, top-1, small variant)
_IMAGENET = {
    "resnet18": ("resnet", 18, 1, 64, 11_689_512, 1.814, 69.76, "resnet18_cifar"),
    "resnet34": ("resnet", 34, 1, 64, 21_797_672, 3.664, 73.31, "resnet18_cifar"),
    "resnet50": ("resnet", 50, 1, 64, 25_557_032, 4.089, 76.13, "resnet18_cifar"),
    "resnet101": ("resnet", 101, 1, 64, 44_549_160, 7.801, 77.37, "resnet18_cifar"),
    "resnet152": ("resnet", 152, 1, 64, 60_192_808, 11.514, 78.31, "resnet18_cifar"),
    "wide_resnet50_2": ("wide_resnet", 50, 1, 128, 68_883_240, 11.398, 78.47, "resnet18_cifar"),
    "wide_resnet101_2": ("wide_resnet", 101, 1, 128, 126_886_696, 22.753, 78.85, "resnet18_cifar"),
    "resnext50_32x4d": ("resnext", 50, 32, 4, 25_028_904, 4.23, 77.62, "resnext29_8x64d"),
    "resnext101_32x8d": ("resnext", 101, 32, 8, 88_791_336, 16.414, 79.31, "resnext29_8x64d"),
}

# The ResNet paper's §4.2: 6n + 2 layers, n basic blocks per stage at 16/32/64 channels, option A.
# name: (depth, exact params at 10 classes, paper's rounded figure if within 1%, CIFAR-10 error %)
_CIFAR = {
    "resnet20_cifar": (20, 269_722, 0.27e6, 8.75),
    "resnet32_cifar": (32, 464_154, 0.46e6, 7.51),
    "resnet44_cifar": (44, 658_586, 0.66e6, 7.17),
    "resnet56_cifar": (56, 853_018, 0.85e6, 6.97),
    "resnet110_cifar": (110, 1_727_962, None, 6.43),  # the paper's "1.7M" is 1.6% below the exact count
}

# ResNeXt paper's CIFAR setup (§5.3, Table 7): 3x3 64 stem, 3 stages of 3 bottlenecks, outputs 256/512/1024.
# name: (cardinality, bottleneck width d, exact params at 10 classes, paper's figure, CIFAR-10 error %)
_RESNEXT_CIFAR = {
    "resnext29_8x64d": (8, 64, 34_426_698, 34.4e6, 3.65),
    "resnext29_16x64d": (16, 64, 68_155_210, 68.1e6, 3.58),
}


def _info(name: str, paper_key: str, **kwargs) -> ModelInfo:
    paper, arxiv, year = _PAPERS[paper_key]
    return ModelInfo(name=name, family="resnet", paper=paper, arxiv=arxiv, year=year, **kwargs)


def _register_imagenet(name: str, paper_key: str, depth: int, groups: int, wpg: int, params: int, gmacs: float,
                       top1: float, small: str) -> None:
    block, layers = ARCHS[depth]

    @register_model(_info(
        name, paper_key, ilsvrc=_ILSVRC.get(paper_key), min_size=1, params=params, gmacs=gmacs, top1=top1,
        source=_TV, torchvision=name, small_variant=small, preprocessing=_RESIZE_CROP,
    ))
    def build(**kwargs) -> ResNet:
        return ResNet(block, layers, groups=groups, width_per_group=wpg, **kwargs)


def _register_cifar(name: str, depth: int, params: int, approx: float | None, error: float,
                    paper_key: str = "resnet", drop_path_rate: float = 0.0, note: str = "") -> None:
    n = (depth - 2) // 6

    @register_model(_info(
        name, paper_key, input_size=(3, 32, 32), min_size=1, num_classes=10, params=params, params_approx=approx,
        source="computed from the layer specs (10 classes)",
        notes=note or f"CIFAR ResNet ({depth} layers, option A shortcuts); paper: CIFAR-10 error {error}%",
    ))
    def build(**kwargs) -> ResNet:
        kwargs.setdefault("shortcut", "A")
        kwargs.setdefault("drop_path_rate", drop_path_rate)
        return ResNet(BasicBlock, (n, n, n), widths=(16, 32, 64), stem="cifar", stem_width=16, **kwargs)


def _register_resnext_cifar(name: str, cardinality: int, d: int, params: int, approx: float, error: float) -> None:
    @register_model(_info(
        name, "resnext", input_size=(3, 32, 32), min_size=1, num_classes=10, params=params, params_approx=approx,
        source="computed from the layer specs (10 classes)",
        notes=f"CIFAR ResNeXt-29 {cardinality}x{d}d; paper: CIFAR-10 error {error}%",
    ))
    def build(**kwargs) -> ResNet:
        return ResNet(Bottleneck, (3, 3, 3), groups=cardinality, width_per_group=d, widths=(64, 128, 256),
                      stem="cifar", **kwargs)


for _name, _row in _IMAGENET.items():
    _register_imagenet(_name, *_row)

for _name, (_depth, _params, _approx, _error) in _CIFAR.items():
    _register_cifar(_name, _depth, _params, _approx, _error)

_register_cifar(
    "resnet110_sd_cifar", 110, _CIFAR["resnet110_cifar"][1], None, 5.25, paper_key="stochastic_depth",
    drop_path_rate=0.5,
    note="ResNet-110 with stochastic depth (drop probability linear in depth up to p_L = 0.5); "
         "paper: CIFAR-10 error 5.25%",
)

for _name, _row in _RESNEXT_CIFAR.items():
    _register_resnext_cifar(_name, *_row)


@register_model(_info(
    "resnet18_cifar", "resnet", input_size=(3, 32, 32), min_size=1, num_classes=10, params=11_173_962,
    source="computed from the layer specs (10 classes)",
    notes="ResNet-18 with a 3x3/1 stem and no max-pool (common CIFAR practice, kuangliu/pytorch-cifar)",
))
def resnet18_cifar(**kwargs) -> ResNet:
    return ResNet(BasicBlock, ARCHS[18][1], stem="cifar", **kwargs)
