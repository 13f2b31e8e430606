"""Augmentation of whole batches on the training device: no per-image Python work in the loop.

Every function takes a float batch ``N x C x H x W`` in [0, 1] (or uint8 where stated) and a
``torch.Generator`` on the same device, so a run is reproducible and resumable from the generator's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Augment = Callable[[Tensor, torch.Generator], Tensor]

# AlexNet's "fancy PCA" lighting noise: ImageNet RGB eigenvalues and eigenvectors (as used by fb.resnet.torch).
_PCA_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
_PCA_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def random_crop(x: Tensor, g: torch.Generator, padding: int = 4) -> Tensor:
    """Zero-pad by ``padding`` and take a random crop of the original size per sample (ResNet's CIFAR rule)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # N x H
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # N x W
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # N x H x W x C
    return out.permute(0, 3, 1, 2).contiguous()


def hflip(x: Tensor, g: torch.Generator, p: float = 0.5) -> Tensor:
    """Flip each sample left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], generator=g, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_resized_crop(x: Tensor, g: torch.Generator, size: int | None = None,
                        scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Tensor:
    """Inception-style crops: area fraction in ``scale``, aspect ratio log-uniform in ``ratio``, resized to ``size``.

    One affine grid per sample, sampled bilinearly, so the whole batch is one ``grid_sample`` call.
    """
    n, _, h, w = x.shape
    size = size or h
    area = _uniform(n, *scale, g, x.device)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, x.device)
    r = torch.exp(log_r)
    cw = torch.sqrt(area * r).clamp(max=1.0)  # crop width as a fraction of the image
    ch = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(n, generator=g, device=x.device) * 2 - 1) * (1 - cw)
    cy = (torch.rand(n, generator=g, device=x.device) * 2 - 1) * (1 - ch)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = cw, cx, ch, cy
    grid = F.affine_grid(theta, (n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def color_jitter(x: Tensor, g: torch.Generator, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> Tensor:
    """Random brightness, contrast and saturation factors in ``[1 - s, 1 + s]`` per sample."""
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    b = _uniform(n, 1 - brightness, 1 + brightness, g, x.device).view(shape)
    c = _uniform(n, 1 - contrast, 1 + contrast, g, x.device).view(shape)
    s = _uniform(n, 1 - saturation, 1 + saturation, g, x.device).view(shape)
    x = x * b
    gray = _grayscale(x)
    x = (x - gray.mean(dim=(1, 2, 3), keepdim=True)) * c + gray.mean(dim=(1, 2, 3), keepdim=True)
    if x.shape[1] == 3:
        x = (x - _grayscale(x)) * s + _grayscale(x)
    return x.clamp(0, 1)


def _grayscale(x: Tensor) -> Tensor:
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def pca_lighting(x: Tensor, g: torch.Generator, std: float = 0.1) -> Tensor:
    """AlexNet's PCA colour noise: add ``eigvec @ (alpha * eigval)`` per image, alpha ~ N(0, std).

    Grayscale batches get the same noise's mean over colour (the luminance part of the perturbation).
    """
    n = x.shape[0]
    alpha = torch.randn(n, 3, generator=g, device=x.device) * std
    rgb = (alpha * _PCA_EIGVAL.to(x.device)) @ _PCA_EIGVEC.to(x.device).T  # N x 3
    if x.shape[1] != 3:
        rgb = rgb.mean(dim=1, keepdim=True).expand(n, x.shape[1])
    return x + rgb.to(x.dtype)[:, :, None, None]


def random_erasing(x: Tensor, g: torch.Generator, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                   ratio: tuple[float, float] = (0.3, 3.3)) -> Tensor:
    """Zhong et al.'s random erasing (Cutout with random size): one rectangle per sample, filled with noise."""
    n, c, h, w = x.shape
    area = _uniform(n, *scale, g, x.device) * h * w
    r = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, x.device))
    eh = torch.sqrt(area * r).clamp(max=h).long()
    ew = torch.sqrt(area / r).clamp(max=w).long()
    y0 = (torch.rand(n, generator=g, device=x.device) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=g, device=x.device) * (w - ew + 1)).long()
    apply = torch.rand(n, generator=g, device=x.device) < p
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= y0[:, None]) & (ys < (y0 + eh)[:, None])
    in_x = (xs >= x0[:, None]) & (xs < (x0 + ew)[:, None])
    mask = (in_y[:, :, None] & in_x[:, None, :] & apply[:, None, None])[:, None]
    noise = torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype)
    return torch.where(mask, noise, x)


AUGMENTATIONS: dict[str, Augment] = {
    "crop": random_crop,
    "flip": hflip,
    "rrc": random_resized_crop,
    "jitter": color_jitter,
    "pca": pca_lighting,
    "erase": random_erasing,
}


@dataclass(frozen=True)
class BatchPipeline:
    """uint8 batch → float in [0, 1] → resize/pad to the model's input → augmentations → normalisation."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int | None = None  # target side; None keeps the data's size
    fit: str = "resize"  # "resize" (bilinear) or "pad" (zero-pad, LeNet's 28 -> 32)
    augment: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)}")

    def __call__(self, images: Tensor, g: torch.Generator | None = None, train: bool = False) -> Tensor:
        x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
        x = self.fit_size(x)
        if train and g is not None:
            for name in self.augment:
                x = AUGMENTATIONS[name](x, g)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def fit_size(self, x: Tensor) -> Tensor:
        if self.size is None or x.shape[-1] == self.size and x.shape[-2] == self.size:
            return x
        if self.fit == "pad" and self.size >= max(x.shape[-2:]):
            dh, dw = self.size - x.shape[-2], self.size - x.shape[-1]
            return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=False)
