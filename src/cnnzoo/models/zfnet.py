"""ZFNet: AlexNet with a 7x7/2 first layer and a stride-2 second one, chosen by looking at the features.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", https://arxiv.org/abs/1311.2901

The network of the paper's Figure 3, read by :class:`~cnnzoo.models.alexnet.AlexNet` from its own spec.
"""

from __future__ import annotations

from ..registry import ModelInfo, register_model
from .alexnet import AlexNet, AlexNetSpec


class ZFNet(AlexNet):
    """ZFNet as the paper's Figure 3, https://arxiv.org/abs/1311.2901: 224 -> 110 -> 55 -> 26 -> 13 -> 6.

    Those sizes come from padding 1 in conv1 (7x7/2), none in conv2 (5x5/2), 1 in conv3-5, and 3x3/2 max-pools
    that round up (Caffe's rule). The paper's "contrast normalisation across feature maps", after pools 1 and
    2, is AlexNet's LRN (size 5, alpha 1e-4, beta 0.75, k 2): the paper gives no constants. One tower, dense
    convolutions. Init: N(0, 0.01) weights (the paper's "initialised to 10^-2", read as the std), zero biases.
    Its training-time renormalisation of conv filters whose RMS exceeds 0.1 belongs in the training loop.
    """


# Figure 3: each max-pool is followed by the contrast normalisation in layers 1 and 2.
ZFNET = AlexNetSpec(
    layers=((96, 7, 2, 1, 1), "M", "N", (256, 5, 2, 0, 1), "M", "N",
            (384, 3, 1, 1, 1), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), "M"),
    ceil_mode=True, init_std=0.01,
)
# Small images, as alexnet_cifar: ZF's widths and pool-then-normalise order, a 3x3/1 stem (ZF's lesson:
# smaller first-layer filters and stride), padded 3x3/2 pools to 4x4 maps, a 1024-1024 head, default init.
ZFNET_CIFAR = AlexNetSpec(
    layers=((96, 3, 1, 1, 1), "M", "N", (256, 5, 1, 2, 1), "M", "N",
            (384, 3, 1, 1, 1), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), "M"),
    pool_padding=1, pool_size=4, width=1024,
)

_PAPER = "Visualizing and Understanding Convolutional Networks"


@register_model(ModelInfo(
    name="zfnet", family="zfnet", paper=_PAPER, arxiv="1311.2901", year=2013,
    ilsvrc="ILSVRC 2013: 1st in classification (Clarifai entry)",
    min_size=47, params=62_357_608, gmacs=1.168, source="computed from the layer specs at 224 px",
    small_variant="zfnet_cifar",
    notes="Figure 3: 7x7/2 conv1, dense 96-256-384-384-256, LRN as its contrast normalisation",
))
def zfnet(**kwargs) -> ZFNet:
    return ZFNet(ZFNET, **kwargs)


@register_model(ModelInfo(
    name="zfnet_cifar", family="zfnet", paper=_PAPER, arxiv="1311.2901", year=2013,
    input_size=(3, 32, 32), num_classes=10, params=8_970_122, source="computed from the layer specs",
    notes="small images: 3x3/1 stem, padded 3x3/2 pools to 4x4 maps, 96-256-384-384-256, FC 1024-1024",
))
def zfnet_cifar(**kwargs) -> ZFNet:
    return ZFNet(ZFNET_CIFAR, **kwargs)
