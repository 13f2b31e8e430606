"""What a run leaves in its folder: metrics.csv, TensorBoard events, curves.png, confusion.png, report.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..weights import atomic_write

CSV_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "images_per_s",
              "epoch_time"]


def write_csv(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> None:
    """A CSV of ``rows`` (only ``fields``), written atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Rewritten whole each epoch from the checkpoint's history, so a resumed run has no duplicate rows.

    Runs on cached features log per evaluation, with the optimiser step of each (a ``step`` column).
    """
    stepped = bool(history) and "step" in history[0]
    write_csv(path, ["epoch", "step", *CSV_FIELDS[1:]] if stepped else CSV_FIELDS, history)


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))


class TensorBoard:
    """Scalars per epoch; a no-op if TensorBoard is not installed."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.writer = None
        else:
            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def log(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key in CSV_FIELDS[1:]:
            if key in row and row[key] is not None:
                self.writer.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: Path, history: list[dict[str, Any]]) -> None:
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r["train_loss"] for r in history], label="train")
    ax1.plot(epochs, [r["val_loss"] for r in history], label="validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.plot(epochs, [r["train_acc"] for r in history], label="train")
    ax2.plot(epochs, [r["val_acc"] for r in history], label="validation")
    ax2.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def plot_confusion(path: Path, confusion: list[list[int]], classes: list[str]) -> None:
    plt = _pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title="test confusion matrix")
    if n <= 20:
        top = max(max(r) for r in confusion) or 1
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(confusion[i][j]), ha="center", va="center", fontsize=7,
                        color="white" if confusion[i][j] > top / 2 else "black")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
