"""Dataset readers on generated files in the official formats, and the batched augmentations."""

from __future__ import annotations

import gzip

import pytest
import torch

from cnnzoo.datasets.readers import load_dataset, read_idx
from cnnzoo.errors import CnnzooError
from cnnzoo.training.augment import AUGMENTATIONS, BatchPipeline
from datagen import class_images, write_cifar_binary, write_idx_dataset, write_image_folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader(tmp_path, gz):
    write_idx_dataset(tmp_path, n_train=30, n_test=10, gz=gz)
    d = load_dataset("mnist", tmp_path)
    x, y = class_images(30, 10, 28, 1, 0)
    assert d.train_images.shape == (30, 1, 28, 28) and d.train_images.dtype == torch.uint8
    assert d.test_images.shape == (10, 1, 28, 28)
    assert torch.equal(d.train_images, torch.from_numpy(x))
    assert torch.equal(d.train_labels, torch.from_numpy(y).long())


def test_truncated_idx_is_a_clear_error(tmp_path):
    write_idx_dataset(tmp_path, n_train=30, n_test=10)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(CnnzooError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_binary_reader(tmp_path, hundred):
    name = "cifar100" if hundred else "cifar10"
    archive = write_cifar_binary(tmp_path / f"{'cifar-100' if hundred else 'cifar-10'}-binary.tar.gz", hundred)
    d = load_dataset(name, archive.parent)
    assert d.train_images.shape == (50, 3, 32, 32) and d.test_images.shape == (20, 3, 32, 32)
    assert d.num_classes == (100 if hundred else 10)
    x, y = class_images(20, 100 if hundred else 10, 32, 3, 1 if hundred else 9)
    assert torch.equal(d.test_images, torch.from_numpy(x))
    assert torch.equal(d.test_labels, torch.from_numpy(y).long())
    if not hundred:
        assert d.classes[3] == "cat"


def test_folder_reader_skips_corrupt_files_with_one_warning(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    (root / "cat" / "broken.jpg").write_bytes(b"not an image")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG truncated")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        d = load_dataset(f"folder:{root}", image_size=24)
    assert d.classes == ("cat", "dog", "owl")
    assert d.train_images.shape[1:] == (3, 24, 24)
    assert len(d.train_labels) + len(d.test_labels) == 18
    assert set(d.test_labels.tolist()) == {0, 1, 2}


def test_folder_errors(tmp_path):
    with pytest.raises(CnnzooError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    root = write_image_folder(tmp_path / "pets")
    (root / "empty").mkdir()
    with pytest.raises(CnnzooError, match="empty.*hold no images"):
        load_dataset(f"folder:{root}")
    with pytest.raises(CnnzooError, match="no class subfolders"):
        load_dataset(f"folder:{root / 'cat'}")
    with pytest.raises(CnnzooError, match="unknown dataset"):
        load_dataset("imagenet-22k")


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_augmentations_keep_shape_and_are_seeded(name, channels):
    x = torch.rand(16, channels, 32, 32)
    a = AUGMENTATIONS[name](x, torch.Generator().manual_seed(3))
    b = AUGMENTATIONS[name](x, torch.Generator().manual_seed(3))
    c = AUGMENTATIONS[name](x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.isfinite(a).all()


def test_random_crop_moves_content_by_at_most_the_padding():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    out = AUGMENTATIONS["crop"](x, torch.Generator().manual_seed(0))
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert ((rows - 4).abs() <= 4).all() and ((cols - 4).abs() <= 4).all()
    assert len(set(pos.tolist())) > 5


def test_flip_flips_about_half():
    x = torch.arange(8.0).view(1, 1, 1, 8).expand(1000, 1, 1, 8)
    out = AUGMENTATIONS["flip"](x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).float().mean().item()
    assert 0.45 < flipped < 0.55


def test_pipeline_pads_lenet_input_and_normalises():
    p = BatchPipeline((0.5,), (0.25,), size=32, fit="pad")
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    out = p(x)
    assert out.shape == (2, 1, 32, 32)
    assert out[0, 0, 0, 0].item() == pytest.approx(-2.0)  # padded zero
    assert out[0, 0, 16, 16].item() == pytest.approx(2.0)  # (1 - 0.5) / 0.25


def test_pipeline_upsamples_when_asked():
    p = BatchPipeline((0.0,), (1.0,), size=64)
    assert p(torch.zeros(3, 1, 28, 28, dtype=torch.uint8)).shape == (3, 1, 64, 64)


def test_unknown_augmentation_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'"):
        BatchPipeline((0.0,), (1.0,), augment=("crop", "mixup"))


def test_data_fetch_says_when_debians_fashion_mnist_is_there(tmp_path, monkeypatch, capsys):
    from cnnzoo.cli import main
    from cnnzoo.datasets import fetch as sources

    write_idx_dataset(tmp_path, n_train=30, n_test=10)  # the four files, under Debian's names
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path)
    assert main(["data", "fetch", "fashion-mnist"]) == 0
    assert f"already installed at {tmp_path}" in capsys.readouterr().out
