from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import cnnzoo


def pytest_configure(config: pytest.Config) -> None:
    # Exported graphs and engine choices (cnnzoo.runtime) go to a throwaway cache, not the user's.
    if "CNNZOO_CACHE" not in os.environ:
        cache = tempfile.mkdtemp(prefix="cnnzoo-test-cache-")
        os.environ["CNNZOO_CACHE"] = cache
        config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    # Each pytest-xdist worker is a process of its own: with torch's default of one intra-op thread per
    # core, `-n 2` runs four threads on two cores. One thread each made the registry tests 31% faster.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


def small_size(name: str) -> int:
    """A small input the model takes: its minimum where it has one, else 28 (Fashion-MNIST's size)."""
    info = cnnzoo.model_info(name)
    return info.min_size if info.min_size > 1 else min(28, info.input_size[1])



def trained_lenet5(root: Path, *, epochs: int, val_size: int) -> tuple[Path, Path]:
    """A LeNet-5 run trained with its recipe on generated MNIST-format gratings in ``root``: (data, run folder)."""
    from cnnzoo.cli import main
    from datagen import write_idx_dataset

    data = write_idx_dataset(root / "mnist", n_train=200, n_test=60, gratings=True)
    run = root / "run"
    assert main(["train", "lenet5", "--data", "mnist", "--data-root", str(data), "--epochs", str(epochs),
                 "--val-size", str(val_size), "--batch-size", "40", "--out", str(run), "--no-progress",
                 "--precision", "fp32"]) == 0
    return data, run


def logits_of(out) -> torch.Tensor:
    return out.logits if isinstance(out, cnnzoo.AuxOutputs) else out


def assert_torchvision_parity(name: str, tv_model: torch.nn.Module, tmp_path: Path, size: int | None = None,
                              **create_kwargs) -> None:
    """A torchvision model with random weights, saved as a .pth, loads into ours with equal outputs."""
    torch.manual_seed(0)
    for p in tv_model.parameters():  # random, not init-scale, so every weight matters
        torch.nn.init.normal_(p, 0.0, 0.05)
    for b_name, b in tv_model.named_buffers():
        if b_name.endswith("running_mean"):
            torch.nn.init.normal_(b, 0.0, 0.1)
        elif b_name.endswith("running_var"):
            torch.nn.init.uniform_(b, 0.5, 1.5)
    path = tmp_path / f"{name}.pth"
    torch.save(tv_model.state_dict(), path)
    ours = cnnzoo.create_model(name, weights=str(path), **create_kwargs)
    tv_model.eval()
    ours.eval()
    size = size or cnnzoo.model_info(name).input_size[1]
    x = torch.randn(2, ours.in_chans, size, size)
    with torch.no_grad():
        expected, got = tv_model(x), ours(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
