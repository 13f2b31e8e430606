"""The lecture's hand exercises as small modules, each answered by one :func:`~cnnzoo.analyze` call.

cs231n 2017 lecture 9 ("CNN Architectures") and the "1x1 convolution" notes work these by hand; the
modules here are exactly the layers they draw. Convolutions have no bias where the lecture counts
weights only (``k·k·Cin·Cout``), so the figures compare one to one. ``EXERCISES`` lists each with its
input and the lecture's own figure; ``docs/analysis.md`` shows them beside the exact ones.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn


def alexnet_conv1_pool1() -> nn.Sequential:
    """AlexNet's first two layers on a 227x227 image: conv1 96 11x11/4 (with bias), pool1 3x3/2."""
    return nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 96, 11, stride=4), pool1=nn.MaxPool2d(3, 2)))


def conv_stack(kernel: int, depth: int, channels: int) -> nn.Sequential:
    """``depth`` stride-1 ``kernel x kernel`` convolutions, ``channels`` in and out, "same" padding, no bias."""
    return nn.Sequential(OrderedDict(
        (f"conv{i + 1}", nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)) for i in range(depth)
    ))


def bottleneck(channels: int = 128, reduced: int = 32) -> nn.Sequential:
    """A 1x1 reduction to ``reduced`` maps before the 3x3 convolution back to ``channels`` (no bias)."""
    return nn.Sequential(OrderedDict(
        reduce=nn.Conv2d(channels, reduced, 1, bias=False),
        conv=nn.Conv2d(reduced, channels, 3, padding=1, bias=False),
    ))


class Inception(nn.Module):
    """The lecture's inception module: parallel 1x1, 3x3, 5x5 convolutions and a 3x3 max-pool, concatenated.

    Without reductions it is the "naive" module; ``reduce3``/``reduce5`` add 1x1 bottlenecks before the
    3x3 and 5x5 convolutions and ``pool_proj`` a 1x1 projection after the pool (Szegedy et al., Figure 2,
    https://arxiv.org/abs/1409.4842). No bias and no activations: the lecture counts the convolutions only.
    """

    def __init__(self, in_chs: int, c1: int, c3: int, c5: int, reduce3: int | None = None,
                 reduce5: int | None = None, pool_proj: int | None = None) -> None:
        super().__init__()

        def conv(cin: int, cout: int, k: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)

        def branch(cout: int, k: int, reduce: int | None) -> nn.Module:
            if reduce is None:
                return conv(in_chs, cout, k)
            return nn.Sequential(OrderedDict(reduce=conv(in_chs, reduce, 1), conv=conv(reduce, cout, k)))

        self.branch1 = conv(in_chs, c1, 1)
        self.branch3 = branch(c3, 3, reduce3)
        self.branch5 = branch(c5, 5, reduce5)
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.branch_pool = pool if pool_proj is None else nn.Sequential(
            OrderedDict(pool=pool, proj=conv(in_chs, pool_proj, 1)))

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x))
        return torch.cat(branches, 1)  # N x (c1 + c3 + c5 + pool) x H x W


def inception_naive() -> Inception:
    """The lecture's naive module: 1x1 128, 3x3 192, 5x5 96 and a 3x3 pool, on 28x28x256."""
    return Inception(256, 128, 192, 96)


def inception_bottleneck() -> Inception:
    """The same module with 1x1 64 reductions before the 3x3 and 5x5 and after the pool."""
    return Inception(256, 128, 192, 96, reduce3=64, reduce5=64, pool_proj=64)


@dataclass(frozen=True)
class Exercise:
    """One lecture exercise: what to build, at which input, and what the lecture says."""

    build: Callable[[], nn.Module] | str
    input_size: tuple[int, ...] | None
    lecture: str


EXERCISES: dict[str, Exercise] = {
    "alexnet-conv1-pool1": Exercise(
        alexnet_conv1_pool1, (3, 227, 227),
        "conv1 55x55x96, 35K params (11x11x3x96 = 34,848); pool1 27x27x96, 0 params"),
    "three-3x3": Exercise(partial(conv_stack, 3, 3, 64), (64, 56, 56), "receptive field 7x7; 3·(3²C²) = 27C² params"),
    "one-7x7": Exercise(partial(conv_stack, 7, 1, 64), (64, 56, 56), "receptive field 7x7; 7²C² = 49C² params"),
    "two-3x3-128": Exercise(partial(conv_stack, 3, 2, 128), (128, 28, 28), "3x3x128x128 x 2 = 294,912 params"),
    "one-5x5-128": Exercise(partial(conv_stack, 5, 1, 128), (128, 28, 28), "5x5x128x128 = 409,600 params"),
    "3x3-128": Exercise(partial(conv_stack, 3, 1, 128), (128, 28, 28), "3x3x128x128 = 147,456 params"),
    "bottleneck-128-32": Exercise(bottleneck, (128, 28, 28), "1x1x128x32 + 3x3x32x128 = 40,960 params"),
    "inception-naive": Exercise(inception_naive, (256, 28, 28), "output 28x28x672; 854M ops"),
    "inception-bottleneck": Exercise(inception_bottleneck, (256, 28, 28), "output 28x28x480; 358M ops"),
    "vgg16": Exercise("vgg16", None, "24M values x 4 bytes ≈ 96 MB memory per image (forward); 138M params"),
}
