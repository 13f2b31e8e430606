"""The lecture's two pictures: per-layer memory and parameters of one model (VGG: memory early,
parameters late), and the complexity chart of several (top-1 against GMACs, bubble area = parameters)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .result import Analysis


def _figure(width: float, height: float, rows: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True) if rows > 1 else fig.subplots()
    return fig, axes


def plot_layers(a: Analysis, path: str | os.PathLike, depth: int | None = None) -> None:
    """Bars of activation memory (values per sample) and parameters for each row that has either."""
    rows = [r for r in a.collapse(depth) if r.mem_elements or r.params]
    labels = [r.label for r in rows]
    x = range(len(rows))
    fig, (top, bottom) = _figure(max(8.0, 0.28 * len(rows)), 6.5, rows=2)
    top.bar(x, [r.mem_elements / 1e6 for r in rows], color="tab:blue")
    top.set_ylabel("activation memory\n(M values / sample)")
    top.set_title(f"{a.model} at {a.describe_input()}: "
                  f"{a.totals.activation_elements / 1e6:.2f}M values, {a.totals.params / 1e6:.2f}M parameters")
    bottom.bar(x, [r.params / 1e6 for r in rows], color="tab:orange")
    bottom.set_ylabel("parameters (M)")
    bottom.set_xticks(list(x), labels, rotation=90, fontsize=7)
    save_figure(fig, path, dpi=120)


@dataclass(frozen=True)
class Point:
    """One model on the complexity chart."""

    name: str
    gmacs: float
    top1: float
    params: int


def plot_complexity(points: Sequence[Point], path: str | os.PathLike, *,
                    x_label: str = "GMACs per image (conv + linear)", y_label: str = "ImageNet top-1 (%)",
                    title: str = "Accuracy against operations; bubble area = parameters", chain: bool = False) -> None:
    """Top-1 accuracy against GMACs, bubble area proportional to parameters, each bubble labelled.

    The axes can say other things (``cnnzoo compare`` of files: measured latency, bubble = file size);
    ``chain`` joins each point to the next with an arrow (original -> pruned -> distilled -> int8).
    """
    fig, ax = _figure(8.0, 5.5)
    biggest = max(p.params for p in points)
    for a, b in zip(points, points[1:]) if chain else ():
        ax.annotate("", xy=(b.gmacs, b.top1), xytext=(a.gmacs, a.top1),
                    arrowprops={"arrowstyle": "->", "color": "0.3", "shrinkA": 6, "shrinkB": 6})
    for p in points:
        area = 3000 * p.params / biggest
        ax.scatter(p.gmacs, p.top1, s=area, alpha=0.45, edgecolors="black", linewidths=0.6)
        ax.annotate(p.name, (p.gmacs, p.top1), xytext=(0, 0.6 * math.sqrt(area) + 2), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    save_figure(fig, path, dpi=120)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int) -> None:
    """``fig`` written atomically to ``path`` (its suffix is the format), missing folders created."""
    from ..weights import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix[1:].lower() or "png", dpi=dpi))
