"""Fully convolutional networks for semantic segmentation on any zoo backbone.

Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015
(https://arxiv.org/abs/1411.4038): a classifier's fully connected layers become convolutions, so that
it maps an image of any size to a coarse map of class scores; learnable upsampling (transposed
convolutions initialised as bilinear interpolation) brings the map back to the input's size, and
skips from finer stages (FCN-16s: the stride-16 stage, FCN-8s: and the stride-8 stage) sharpen it.

- The stages come from the backbone's ``feature_info``: the deepest stage of each stride (see
  :func:`~cnnzoo.dense.backbone.last_per_stride`). ``fcn32s`` scores the deepest stage only; ``fcn16s``
  adds the next finer stride, ``fcn8s`` the one after (on backbones whose strides run 8, 16, 32 these are
  the paper's pool3 and pool4; on others, such as ZFNet's 4, 16, 32, the next strides they have).
- Backbones with fully connected layers before their classifier (VGG, AlexNet, ZFNet) keep them,
  convolutionalised as the paper does: fc6 as a ``k x k`` convolution over the last map (VGG's 7 x 7)
  and fc7 as a 1 x 1, with their weights; the others get torchvision's ``FCNHead`` (3 x 3 convolution,
  batch norm, ReLU, dropout, 1 x 1), as torchvision's FCN on ResNet does.
- Skip score layers start at zero, as the paper's new layers do, so FCN-16s/8s begin where the coarser
  net is.
- Departure from the paper: it pads the input by 100 pixels and crops the upsampled maps at offsets
  worked out for VGG; here fc6 is padded to keep the map's size ("same"), every upsampling is
  ``ConvTranspose2d(kernel 2f, stride f, padding f/2)``, which puts input pixel ``i`` at the centre of
  output block ``[i f, (i + 1) f)``, and the result is cropped (or, where a stage rounded down, padded by
  its edge) at the bottom and right to the finer map's size. So the maps line up at every input size and
  on every backbone, not only VGG's.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ModelArgumentError
from .backbone import StageFeatures, last_per_stride
from .config import HEADS


def bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """A ``channels x channels x k x k`` transposed-convolution weight that upsamples each channel bilinearly
    (the FCN code's ``upsample_filt``, one filter per channel on the diagonal)."""
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    grid = torch.arange(kernel_size, dtype=torch.float32)
    filt = 1 - (grid - centre).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return weight


def upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """Learnable ``factor``-times upsampling of ``channels`` maps, initialised as bilinear interpolation;
    an ``n``-pixel side becomes ``n * factor``."""
    k = 2 * factor - factor % 2
    up = nn.ConvTranspose2d(channels, channels, k, stride=factor, padding=(factor - factor % 2) // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, k))
    return up


def fit_to(x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """``x`` cropped at the bottom and right to ``size``, or padded there with its edge where it is smaller."""
    h, w = int(size[0]), int(size[1])
    x = x[..., :h, :w]
    dh, dw = h - x.shape[-2], w - x.shape[-1]
    if dh > 0 or dw > 0:
        x = nn.functional.pad(x, (0, max(dw, 0), 0, max(dh, 0)), mode="replicate")
    return x


def convolutionalised(model: nn.Module, in_channels: int, num_classes: int) -> tuple[nn.Sequential, str] | None:
    """The fully connected layers before ``model``'s classifier as convolutions with their weights, then a
    1 x 1 score layer (fc6 as ``k x k`` over the last map, fc7 as 1 x 1), and the classifier's parent name;
    None where the model has no such layers."""
    parent_name, _, _ = getattr(model, "classifier_name", "").rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else None
    if not isinstance(parent, nn.Sequential):
        return None
    layers = list(parent)
    linear_at = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    if len(linear_at) < 2:
        return None
    first = layers[linear_at[0]]
    k = round((first.in_features / in_channels) ** 0.5)
    if k * k * in_channels != first.in_features:
        return None
    convs: list[nn.Module] = []
    for m in layers[: linear_at[-1]]:
        if isinstance(m, nn.Linear):
            side = k if m is first else 1
            conv = nn.Conv2d(m.in_features // (side * side), m.out_features, side, padding="same")
            with torch.no_grad():
                conv.weight.copy_(m.weight.reshape(conv.weight.shape))
                conv.bias.copy_(m.bias)
            convs.append(conv)
        elif isinstance(m, (nn.ReLU, nn.Dropout)):
            convs.append(m)
        else:
            return None
    convs.append(nn.Conv2d(layers[linear_at[-1]].in_features, num_classes, 1))
    return nn.Sequential(*convs), parent_name


class FCN(nn.Module):
    """An FCN: stage features of a zoo backbone, a score head on the deepest, skip scores, upsampling.

    ``model(x)`` returns per-pixel class scores ``N x num_classes x H x W`` at the input's own size.
    Build it with :func:`create_segmenter`.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, head: str = "fcn8s", input_scale: float = 1.0) -> None:
        super().__init__()
        if head not in HEADS:
            raise ModelArgumentError(f"unknown head {head!r}: use {', '.join(HEADS)}")
        if not 0 < input_scale <= 8:
            raise ModelArgumentError(f"input_scale must be in (0, 8], got {input_scale}")
        name = getattr(backbone, "model_name", None) or type(backbone).__name__
        by_stride = last_per_stride(backbone)
        skips = HEADS[head]
        if len(by_stride) < skips + 1:
            strides = ", ".join(str(s.reduction) for s in by_stride)
            raise ModelArgumentError(f"{name} has stages at stride(s) {strides} only: {head} needs {skips + 1} "
                                     f"strides; use {next(h for h, n in HEADS.items() if n == len(by_stride) - 1)}")
        stages = by_stride[-(skips + 1):]
        deep = stages[-1]
        fc = convolutionalised(backbone, deep.num_chs, num_classes)
        if fc is not None:
            self.score, parent = fc
            backbone.set_submodule(parent, nn.Identity())  # fc6/fc7 now live in the head
        else:
            from torchvision.models.segmentation.fcn import FCNHead

            self.score = FCNHead(deep.num_chs, num_classes)
            backbone.reset_classifier(0)  # unused: dropped (aux heads too) so that it holds no parameters
        self.features = StageFeatures(backbone, stages)
        self.skip_scores = nn.ModuleList(nn.Conv2d(s.num_chs, num_classes, 1) for s in stages[:-1])
        for conv in self.skip_scores:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        ratios = [b.reduction // a.reduction for a, b in zip(stages[:-1], stages[1:])]
        self.upsample = nn.ModuleList(upsampler(num_classes, r) for r in [*ratios[::-1], stages[0].reduction])
        self.num_classes = num_classes
        self.head = head
        self.strides = [s.reduction for s in stages]
        self.backbone_name = name
        self.input_scale = float(input_scale)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        if self.input_scale != 1:  # N x C x sH x sW
            x = nn.functional.interpolate(x, scale_factor=self.input_scale, mode="bilinear", align_corners=False)
        maps = self.features(x)  # shallow to deep
        score = self.score(maps[-1])  # N x K x H/32 x W/32 (on a stride-32 backbone)
        for up, skip, fmap in zip(self.upsample, self.skip_scores[::-1], maps[-2::-1]):
            score = fit_to(up(score), fmap.shape[-2:]) + skip(fmap)
        score = fit_to(self.upsample[-1](score), x.shape[-2:])  # N x K x sH x sW
        if self.input_scale != 1:
            score = nn.functional.interpolate(score, size=size, mode="bilinear", align_corners=False)
        return score  # N x K x H x W

    @property
    def in_chans(self) -> int:
        return self.features.body.in_chans


def create_segmenter(backbone: str, num_classes: int, head: str = "fcn8s", weights: str | None = None,
                     input_scale: float = 1.0, **kwargs: Any) -> FCN:
    """An FCN (``fcn32s``, ``fcn16s`` or ``fcn8s``) for ``num_classes`` classes (background included) on the
    registered model ``backbone``, from its ``weights`` (a tag such as ``"imagenet"`` or a file; None: its
    initial weights). ``kwargs`` go to :func:`cnnzoo.create_model` (``in_chans=1``, ...).

    ``input_scale``: the image is enlarged by this factor (bilinear) before the backbone, and the scores are
    brought back to the image's own size, so the output is always ``N x num_classes x H x W``. On small
    images it puts the finest skip on finer cells (at 96 px and a scale of 2, FCN-8s's stride-8 stage sees
    4 x 4-pixel cells instead of 8 x 8) at the cost of scale² the computation.

    ``segmenter.config`` holds what rebuilds it (:func:`segmenter_from_config`).
    """
    from ..registry import create_model

    if num_classes < 2:
        raise ModelArgumentError(f"a segmenter needs at least 2 classes (background and one), got {num_classes}")
    model = create_model(backbone, weights=weights, **kwargs)
    seg = FCN(model, num_classes, head, input_scale)
    seg.config = {"backbone": backbone, "num_classes": num_classes, "head": head, "input_scale": float(input_scale),
                  "backbone_args": kwargs}
    return seg


def segmenter_from_config(config: dict[str, Any]) -> FCN:
    """The segmenter ``config`` (``segmenter.config``) describes, with initial weights."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the backbone's own head is dropped anyway
        return create_segmenter(config["backbone"], config["num_classes"], config["head"],
                                input_scale=config.get("input_scale", 1.0), **config.get("backbone_args", {}))


def load_segmenter(path: str | os.PathLike) -> tuple[FCN, dict[str, Any]]:
    """The segmenter a training checkpoint of ``cnnzoo segment train`` holds, and the checkpoint's
    ``meta`` (class names, normalisation, input size)."""
    from .checkpoint import read_dense_checkpoint

    ckpt = read_dense_checkpoint(path, "segmentation")
    seg = segmenter_from_config(ckpt["segmenter"])
    seg.load_state_dict(ckpt["model"])
    return seg, ckpt["meta"]
