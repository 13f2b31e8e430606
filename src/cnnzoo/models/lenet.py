"""LeNet-5.

LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition", Proc. IEEE
1998, http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf

The modern form: C3 connects to all six C1 maps (the paper's sparse connection table was a 1998
compute saving), the output layer is linear (the paper used Euclidean RBF units), and the activation
(paper: scaled tanh) and subsampling (paper: trainable average pooling) are options, and so is
batch normalisation after every convolution and hidden linear layer (``norm="bn"``: Ioffe & Szegedy 2015's
fix for slow, fragile training, as d2l.ai applies it to LeNet), which lets LeNet-5 train at a high
learning rate and reach a given accuracy in fewer epochs.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..base import FeatureInfo, ZooModel
from ..layers import MaxPool2x2
from ..registry import ModelInfo, register_model


class LeNet5(ZooModel):
    """C1 (5x5, 6) - S2 - C3 (5x5, 16) - S4 - C5 (120) - F6 (84) - output, on 32x32 inputs."""

    classifier_name = "fc"
    first_conv = "conv1"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, act: str = "tanh", pool: str = "avg",
                 norm: str | None = None) -> None:
        super().__init__()
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
        pools = {"avg": lambda: nn.AvgPool2d(2), "max": MaxPool2x2}  # MaxPool2x2: nn.MaxPool2d(2), fast on CPU
        if act not in acts or pool not in pools or norm not in (None, "bn"):
            raise ValueError(f"act must be one of {sorted(acts)}, pool one of {sorted(pools)} and norm None or 'bn'")
        self.num_classes, self.in_chans, self.num_features = num_classes, in_chans, 84
        bn = norm == "bn"

        def bn2d(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if bn else nn.Identity()

        self.conv1 = nn.Conv2d(in_chans, 6, 5, bias=not bn)
        self.bn1 = bn2d(6)
        self.act1 = acts[act]()
        self.pool1 = pools[pool]()
        self.conv2 = nn.Conv2d(6, 16, 5, bias=not bn)
        self.bn2 = bn2d(16)
        self.act2 = acts[act]()
        self.pool2 = pools[pool]()
        # C5 is a 5x5 convolution over 5x5 maps, i.e. a fully connected layer over the flattened S4.
        self.conv3 = nn.Conv2d(16, 120, 5, bias=not bn)
        self.bn3 = bn2d(120)
        self.act3 = acts[act]()
        self.fc1 = nn.Linear(120, 84, bias=not bn)
        self.bn4 = nn.BatchNorm1d(84) if bn else nn.Identity()
        self.act4 = acts[act]()
        self.fc = nn.Linear(84, num_classes)
        self.feature_info = [FeatureInfo("pool1", 6, 2), FeatureInfo("pool2", 16, 4), FeatureInfo("act3", 120, 4)]

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))  # N x 6 x 14 x 14
        x = self.pool2(self.act2(self.bn2(self.conv2(x))))  # N x 16 x 5 x 5
        return self.act3(self.bn3(self.conv3(x)))  # N x 120 x 1 x 1

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.act4(self.bn4(self.fc1(x.flatten(1))))
        return x if pre_logits else self.fc(x)


@register_model(ModelInfo(
    name="lenet5", family="lenet", year=1998, arxiv=None,
    paper="Gradient-Based Learning Applied to Document Recognition",
    input_size=(1, 32, 32), min_size=32, num_classes=10, params=61_706,
    source="computed from the layer specs (full C3, linear output)",
    notes="28x28 MNIST-style images are zero-padded to 32x32, as LeCun did; act=relu, pool=max and norm=bn "
          "give the modern form the main job trains",
))
def lenet5(**kwargs) -> LeNet5:
    return LeNet5(**kwargs)
