"""Building blocks shared by several families; none of these is declared anywhere else."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]


class ConvNormAct(nn.Module):
    """Convolution, then optional normalisation, then optional activation.

    The key names ``conv`` and ``bn`` are torchvision's ``BasicConv2d`` ones, so GoogLeNet and
    Inception-v3 weights load unchanged. The convolution has a bias only when there is no norm.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        groups: int = 1,
        dilation: int = 1,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer | None = nn.ReLU,
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        if padding is None:
            k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = (dilation * (k[0] - 1) // 2, dilation * (k[1] - 1) // 2)
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride, padding, dilation=dilation, groups=groups,
            bias=(norm_layer is None) if bias is None else bias,
        )
        self.bn = norm_layer(out_chs) if norm_layer is not None else nn.Identity()
        self.act = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


def bn_eps(eps: float) -> NormLayer:
    """A BatchNorm2d factory with a given epsilon (TF-ported weights use 1e-3)."""

    def make(channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels, eps=eps)

    return make


def relu_inplace() -> nn.Module:
    return nn.ReLU(inplace=True)


def paper_lrn(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> nn.LocalResponseNorm:
    """Local response normalisation with the AlexNet paper's constants.

    The paper divides by ``(k + alpha * sum a^2)^beta``; ``torch.nn.LocalResponseNorm`` divides alpha by
    ``size``, so alpha is scaled up here to compute the paper's formula exactly.
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples with probability ``p`` in training.

    Kept branches are scaled by ``1 / (1 - p)`` so that evaluation is the identity (the paper scales by
    the survival probability at test time instead; the two agree in expectation).
    Huang et al., "Deep Networks with Stochastic Depth", https://arxiv.org/abs/1603.09382
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


def linear_decay(drop_path_rate: float, n: int) -> list[float]:
    """The stochastic-depth paper's rule: block ``l`` of ``n`` is dropped with probability ``l/n * p_L``."""
    return [drop_path_rate * (i + 1) / n for i in range(n)]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without going below 90% of ``v`` (MobileNet rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def init_he(module: nn.Module, fc_std: float | None = 0.01) -> None:
    """He (``fan_out``, ReLU) init for convolutions, BN to identity, N(0, ``fc_std``) for linear layers
    (``fc_std=None``: He, ``fan_in``, for them too).

    He et al., "Delving Deep into Rectifiers", https://arxiv.org/abs/1502.01852 — the lecture's
    "Xavier/2" initialisation.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if fc_std is None:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, fc_std)
            nn.init.zeros_(m.bias)


def init_truncnormal(module: nn.Module, std: float = 0.01) -> None:
    """Truncated-normal init (±2 std) of every conv and linear weight, as torchvision's GoogLeNet/Inception."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def global_pool(x: Tensor) -> Tensor:
    """Global average pooling to ``N x C``."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


class _MaxPool2x2Function(torch.autograd.Function):
    """2x2, stride-2 max pooling from four strided maxima, with PyTorch's own backward on the same indices."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        v = x.view(n, c, h // 2, 2, w // 2, 2)
        tl, tr, bl, br = v[:, :, :, 0, :, 0], v[:, :, :, 0, :, 1], v[:, :, :, 1, :, 0], v[:, :, :, 1, :, 1]
        top, bottom = torch.maximum(tl, tr), torch.maximum(bl, br)
        # Flat index of each window's first maximum in its plane (row-major ties, as max_pool2d picks).
        corner = (torch.arange(h // 2, device=x.device)[:, None] * (2 * w)
                  + torch.arange(w // 2, device=x.device)[None, :] * 2)
        indices = torch.where(bottom > top, (br > bl).long() + (corner + w), (tr > tl).long() + corner)
        ctx.save_for_backward(x, indices)
        return torch.maximum(top, bottom)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        x, indices = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)


class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` with a faster CPU training path: the same outputs and gradients, bit for bit.

    PyTorch's CPU max-pool kernel (NCHW, with indices) takes about 5 ms per batch of 256 LeNet-5 C1 maps
    (6 x 28 x 28), a fifth of a training step on one core; four strided maxima and the native backward on
    the same indices take half of that (``benchmarks/main_job_breakdown.py``). The fast path runs only where
    it is exact: on CPU, with a gradient to compute, contiguous NCHW, even sides. Elsewhere (inference, the
    analyzer's trace, CUDA, channels-last) this is ``nn.MaxPool2d(2)``.
    """

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: Tensor) -> Tensor:
        if (x.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu" and x.dim() == 4
                and x.is_contiguous() and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0):
            return _MaxPool2x2Function.apply(x)
        return super().forward(x)
