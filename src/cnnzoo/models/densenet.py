"""DenseNet: every layer of a block sees the concatenated maps of all the layers before it.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks",
https://arxiv.org/abs/1608.06993

All models here are DenseNet-BC: each dense layer is BN-ReLU-1x1 conv (``bn_size * k`` maps) then
BN-ReLU-3x3 conv (``k`` maps, the growth rate); each transition is BN-ReLU-1x1 conv (compression
θ = 0.5) then 2x2 average pooling. Keys and initialisation are torchvision's, so torchvision weights load
unchanged, and :meth:`DenseNet.convert_state_dict` also reads torchvision's legacy checkpoints. The
``*_cifar`` variants follow the paper's CIFAR setup: three blocks and a 3x3 stem of ``2k`` maps, with
no stem norm or pooling.

``memory_efficient=True`` recomputes each layer's concatenation and bottleneck in the backward pass
instead of storing them (Pleiss et al., https://arxiv.org/abs/1707.06990). Outputs and gradients are
unchanged, but in training mode the recomputation updates ``norm1``'s running statistics a second
time, as torchvision's does.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import global_pool
from ..registry import ModelInfo, Preprocessing, register_model

# torchvision's first DenseNet checkpoints (still the ones it serves) name the dense layers' modules
# 'norm.1', 'relu.1', 'conv.1', 'norm.2', 'relu.2', 'conv.2'; the modern names drop the dot.
# torchvision's own regex, widened to num_batches_tracked for legacy-named files that carry it.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck) then BN-ReLU-3x3 conv: ``k`` new maps from all earlier ones."""

    def __init__(self, in_chs: int, growth_rate: int, bn_size: int, drop_rate: float,
                 memory_efficient: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_chs)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def bottleneck(self, *inputs: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def forward(self, features: list[Tensor]) -> Tensor:
        if self.memory_efficient and any(t.requires_grad for t in features):
            out = cp.checkpoint(self.bottleneck, *features, use_reentrant=False)
        else:
            out = self.bottleneck(*features)
        out = self.conv2(self.relu2(self.norm2(out)))
        return F.dropout(out, p=self.drop_rate, training=self.training) if self.drop_rate > 0 else out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; the output concatenates the input and every layer's ``k`` maps."""

    def __init__(self, num_layers: int, in_chs: int, growth_rate: int, bn_size: int, drop_rate: float,
                 memory_efficient: bool = False) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_chs + i * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv to ``out_chs`` maps (compression), then 2x2 average pooling."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(ZooModel):
    """DenseNet-BC with growth rate ``k``, one dense block per entry of ``block_config``.

    ``small_input`` selects the CIFAR stem (3x3 conv, stride 1) in place of the ImageNet one
    (7x7/2 conv, BN, ReLU, 3x3/2 max-pool).
    """

    classifier_name = "classifier"
    first_conv = "features.conv0"

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        if small_input:
            stem = [("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=3, padding=1, bias=False))]
            self.feature_info = []
            reduction = 1
        else:
            stem = [
                ("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
            self.feature_info = [FeatureInfo("features.relu0", num_init_features, 2)]
            reduction = 4
        self.features = nn.Sequential(OrderedDict(stem))

        chs = num_init_features
        last = len(block_config)
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, chs, growth_rate, bn_size, drop_rate, memory_efficient)
            block.figure_name = f"Dense block ({i})"
            self.features.add_module(f"denseblock{i}", block)
            chs += num_layers * growth_rate
            if i == last:
                break
            self.feature_info.append(FeatureInfo(f"features.denseblock{i}", chs, reduction))
            out_chs = int(chs * compression)
            transition = Transition(chs, out_chs)
            transition.figure_name = f"Transition layer ({i})"
            self.features.add_module(f"transition{i}", transition)
            chs = out_chs
            reduction *= 2
        # norm5 in torchvision's four-block nets: the BN that ends the last block.
        self.features.add_module(f"norm{last + 1}", nn.BatchNorm2d(chs))
        self.feature_info.append(FeatureInfo(f"features.norm{last + 1}", chs, reduction))

        self.num_features = chs
        self.classifier = nn.Linear(chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.init_classifier(self.classifier)

    def forward_features(self, x: Tensor) -> Tensor:
        return F.relu(self.features(x))  # N x 1024 x 7 x 7 at 224 (densenet121)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = global_pool(x)
        return x if pre_logits else self.classifier(x)

    def init_classifier(self, layer: nn.Module) -> None:
        """torchvision's rule: PyTorch's default weight init, zero bias."""
        if isinstance(layer, nn.Linear):
            nn.init.zeros_(layer.bias)

    def convert_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rename torchvision's legacy dense-layer keys and fill in the BN counters old files lack.

        ``...denselayerN.norm.1.weight`` becomes ``...denselayerN.norm1.weight`` (likewise ``relu.1``,
        ``conv.1``, ``norm.2``, ``relu.2``, ``conv.2``), exactly as torchvision's ``_load_state_dict``
        does. Checkpoints from before PyTorch 0.4.1 have no ``num_batches_tracked``; a BN whose running
        mean is present gets a zero counter, as ``BatchNorm2d`` itself assumes for such files. Modern
        keys pass through unchanged.
        """
        out = {}
        for key, value in state_dict.items():
            m = _LEGACY_KEY.match(key)
            out[m.group(1) + m.group(2) if m else key] = value
        for name, module in self.named_modules():
            if isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
                key = f"{name}.num_batches_tracked"
                if key not in out and f"{name}.running_mean" in out:
                    out[key] = torch.tensor(0, dtype=torch.long)
        return out


_PAPER = "Densely Connected Convolutional Networks"
_TV = "torchvision 0.29.1 metadata"
_SMALL = "densenet_bc_100_12_cifar"

# The paper's Table 1 (ImageNet): name -> (k, layers per block, stem width).
CONFIGS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet264": (32, (6, 12, 64, 48), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),  # the authors' k=48 release, not in the paper's table
}
# torchvision twins: name -> (params, GMACs, top-1)
_TORCHVISION = {
    "densenet121": (7_978_856, 2.834, 74.434),
    "densenet169": (14_149_480, 3.36, 75.600),
    "densenet201": (20_013_928, 4.291, 76.896),
    "densenet161": (28_681_000, 7.728, 77.138),
}
# No torchvision twin: name -> exact params. The paper's ~33M for DenseNet-264 is 1.02 % below the exact
# count, too coarse for params_approx.
_COMPUTED = {"densenet264": 33_337_704}
# CIFAR DenseNet-BC (the paper's Table 2): name -> (L, k, exact params at 10 classes, paper's params,
# paper's C10+ error %). The paper's "0.8M" is 4 % above the exact 769,162, so it stays out of params_approx.
_CIFAR = {
    "densenet_bc_100_12_cifar": (100, 12, 769_162, None, "0.8M", 4.51),
    "densenet_bc_190_40_cifar": (190, 40, 25_624_430, 25.6e6, "25.6M", 3.46),
}


def _register_imagenet(name: str) -> None:
    k, blocks, stem = CONFIGS[name]
    if name in _TORCHVISION:
        params, gmacs, top1 = _TORCHVISION[name]
        extra = dict(params=params, gmacs=gmacs, top1=top1, source=_TV, torchvision=name,
                     preprocessing=Preprocessing(resize=256, crop=224))
    else:
        extra = dict(params=_COMPUTED[name], source="computed from the paper's Table 1 (paper: ~33M)",
                     notes="no torchvision weights")

    @register_model(ModelInfo(
        name=name, family="densenet", paper=_PAPER, arxiv="1608.06993", year=2016,
        min_size=29, small_variant=_SMALL, **extra,
    ))
    def build(**kwargs) -> DenseNet:
        return DenseNet(k, blocks, stem, **kwargs)


def _register_cifar(name: str) -> None:
    depth, k, params, approx, paper_params, error = _CIFAR[name]
    n = (depth - 4) // 6  # three blocks of bottleneck layers (2 convs each), the stem, two transitions, the FC

    @register_model(ModelInfo(
        name=name, family="densenet", paper=_PAPER, arxiv="1608.06993", year=2016,
        input_size=(3, 32, 32), min_size=4, num_classes=10, params=params, params_approx=approx,
        source="computed from the layer specs",
        notes=f"DenseNet-BC L={depth} k={k}; paper: {paper_params} params, CIFAR-10+ error {error} %",
    ))
    def build(**kwargs) -> DenseNet:
        return DenseNet(k, (n, n, n), 2 * k, small_input=True, **kwargs)


for _name in CONFIGS:
    _register_imagenet(_name)
for _name in _CIFAR:
    _register_cifar(_name)
