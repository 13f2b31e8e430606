"""Object detection on any zoo backbone, with torchvision's detectors (Faster R-CNN, RetinaNet, FCOS).

cnnzoo supplies the backbone: the deepest stage of each of the backbone's last four strides, read through
its ``feature_info`` (:class:`~cnnzoo.dense.backbone.StageFeatures`), under torchvision's
``FeaturePyramidNetwork`` with its extra max-pooled level, as torchvision's ``BackboneWithFPN`` builds it
(whose ``IntermediateLayerGetter`` only takes top-level children run in order, so it cannot reach stages such
as VGG's ``features.23``). The detector itself — anchors, RPN, RoI heads, losses, NMS — is torchvision's.

Sizes fitted to small images: the anchors of a level are 4 x its stride (16 px at stride 4, ..., 256 at
the pooled level), the transform keeps the images' own size (torchvision's default resizes them to 800
px), and Faster R-CNN keeps fewer proposals (600 before NMS, 300 after, in training; 64 sampled RoIs per image)
and a narrower box head (two 256-wide layers) than torchvision's (2000, 512, 1024), which suits scenes of
a few objects on a CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import Tensor, nn

from ..errors import ModelArgumentError
from .backbone import StageFeatures, last_per_stride

from .config import DETECTORS


class FPNBackbone(nn.Module):
    """Stage features of a zoo model under a feature pyramid: ``x`` -> ``OrderedDict`` of maps of
    ``out_channels`` (torchvision's ``BackboneWithFPN`` with the stages taken through ``feature_info``)."""

    def __init__(self, model: nn.Module, levels: int = 4, out_channels: int = 128) -> None:
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        super().__init__()
        stages = last_per_stride(model)
        stages = [s for s in stages if s.reduction >= 4][-levels:] or stages[-levels:]
        self.body = StageFeatures(model, stages)
        self.fpn = FeaturePyramidNetwork([s.num_chs for s in stages], out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels
        self.strides = [s.reduction for s in stages] + [stages[-1].reduction * 2]

    def forward(self, x: Tensor) -> "OrderedDict[str, Tensor]":
        maps = self.body(x)
        return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps)))


def create_detector(backbone: str, num_classes: int, kind: str = "fasterrcnn", weights: str | None = None,
                    image_size: int = 96, mean: tuple[float, ...] = (0.485, 0.456, 0.406),
                    std: tuple[float, ...] = (0.229, 0.224, 0.225), **kwargs: Any) -> nn.Module:
    """A torchvision detector (``fasterrcnn``, ``retinanet`` or ``fcos``) on the registered model
    ``backbone`` from its ``weights``, for ``num_classes`` classes counting the background as class 0.

    It takes a list of ``3 x H x W`` float images in [0, 1] (normalised with ``mean``/``std`` inside) and
    returns, in eval mode, one dict of ``boxes``, ``labels``, ``scores`` per image; in training mode, with
    targets, its losses. ``image_size``: the side images are resized to (as their shorter side). ``kwargs``
    go to :func:`cnnzoo.create_model`. ``detector.config`` holds what rebuilds it.
    """
    import warnings

    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    from ..registry import create_model

    if kind not in DETECTORS:
        raise ModelArgumentError(f"unknown detector {kind!r}: use {', '.join(DETECTORS)}")
    if num_classes < 2:
        raise ModelArgumentError(f"a detector needs at least 2 classes (background and one), got {num_classes}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classifier's head is dropped below
        model = create_model(backbone, weights=weights, **kwargs)
    model.reset_classifier(0)
    body = FPNBackbone(model)
    common = {"min_size": image_size, "max_size": image_size, "image_mean": list(mean), "image_std": list(std)}
    if kind == "fasterrcnn":
        anchors = AnchorGenerator(tuple((4 * s,) for s in body.strides), ((0.5, 1.0, 2.0),) * len(body.strides))
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

        box_head = TwoMLPHead(body.out_channels * 7 * 7, 256)
        det: nn.Module = FasterRCNN(body, None, rpn_anchor_generator=anchors, rpn_pre_nms_top_n_train=600,
                                    rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
                                    rpn_post_nms_top_n_test=100, box_batch_size_per_image=64, box_head=box_head,
                                    box_predictor=FastRCNNPredictor(256, num_classes), **common)
    elif kind == "retinanet":
        anchors = AnchorGenerator(tuple(tuple(4 * s * 2 ** (k / 3) for k in range(3)) for s in body.strides),
                                  ((0.5, 1.0, 2.0),) * len(body.strides))
        det = RetinaNet(body, num_classes, anchor_generator=anchors, **common)
    else:
        anchors = AnchorGenerator(tuple((4 * s,) for s in body.strides), ((1.0,),) * len(body.strides))
        det = FCOS(body, num_classes, anchor_generator=anchors, **common)
    det.config = {"backbone": backbone, "num_classes": num_classes, "kind": kind, "image_size": image_size,
                  "mean": list(mean), "std": list(std), "backbone_args": kwargs}
    return det


def detector_from_config(config: dict[str, Any]) -> nn.Module:
    """The detector ``config`` (``detector.config``) describes, with initial weights."""
    return create_detector(config["backbone"], config["num_classes"], config["kind"], None, config["image_size"],
                           tuple(config["mean"]), tuple(config["std"]), **config.get("backbone_args", {}))


def load_detector(path: Any) -> tuple[nn.Module, dict[str, Any]]:
    """The detector a training checkpoint of ``cnnzoo detect train`` holds, and the checkpoint's ``meta``."""
    from .checkpoint import read_dense_checkpoint

    ckpt = read_dense_checkpoint(path, "detection")
    det = detector_from_config(ckpt["detector"])
    det.load_state_dict(ckpt["model"])
    return det, ckpt["meta"]
