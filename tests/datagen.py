"""Small datasets written in the official formats, for tests (learnable: each class has its own pattern)."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np


def class_images(n: int, classes: int, side: int, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, channels, side, side)).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 2 + (int(c) * (side - 6)) // max(1, classes - 1)
        images[i, :, row:row + 3, :] = 230
    return images, labels


def grating_images(n: int, classes: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey images of waves on noise, with :func:`class_images`' stripe: the class is the waves' direction
    (even classes horizontal, odd vertical) and frequency (0.08 to 0.40 cycles per pixel), and the stripe's
    height. The waves survive global average pooling, flips and crops, the stripe flattening heads, so every
    architecture and every recipe's augmentation can learn the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.uint8)
    freq = 2 * np.pi * 0.08 * (1 + labels // 2)
    phase = rng.uniform(0, 2 * np.pi, n)
    waves = np.sin(freq[:, None] * np.arange(side, dtype=np.float32)[None] + phase[:, None])
    waves = waves[:, :, None].repeat(side, axis=2)  # constant along x: horizontal waves
    waves[labels % 2 == 1] = waves[labels % 2 == 1].transpose(0, 2, 1)
    images = 100 + 70 * waves + rng.normal(0, 20, (n, side, side))
    for i, c in enumerate(labels):  # and class_images' stripe, for the nets that keep positions
        row = 2 + (int(c) * (side - 6)) // max(1, classes - 1)
        images[i, row:row + 3, :] = 250
    return np.clip(images, 0, 255).astype(np.uint8)[:, None], labels


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx_dataset(folder: Path, n_train: int = 400, n_test: int = 100, gz: bool = True, seed: int = 0,
                      gratings: bool = False) -> Path:
    """MNIST-format files: train-images-idx3-ubyte(.gz) etc. (``gratings``: :func:`grating_images`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        x, y = grating_images(n, 10, 28, s) if gratings else class_images(n, 10, 28, 1, s)
        for kind, arr in (("images-idx3-ubyte", x[:, 0]), ("labels-idx1-ubyte", y)):
            data = _idx(arr)
            name = f"{prefix}-{kind}" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return folder


def write_cifar_binary(path: Path, hundred: bool = False, n_train: int = 50, n_test: int = 20) -> Path:
    """An archive in the layout of cifar-10-binary.tar.gz / cifar-100-binary.tar.gz."""
    classes = 100 if hundred else 10
    members: dict[str, bytes] = {}

    def records(n: int, seed: int) -> bytes:
        x, y = class_images(n, classes, 32, 3, seed)
        label_bytes = [np.stack([y // 5, y], 1)] if hundred else [y[:, None]]
        return np.concatenate([*label_bytes, x.reshape(n, -1)], axis=1).astype(np.uint8).tobytes()

    if hundred:
        root = "cifar-100-binary"
        members[f"{root}/train.bin"] = records(n_train, 0)
        members[f"{root}/test.bin"] = records(n_test, 1)
        members[f"{root}/fine_label_names.txt"] = "\n".join(f"class{i}" for i in range(100)).encode()
    else:
        root = "cifar-10-batches-bin"
        for i in range(1, 6):
            members[f"{root}/data_batch_{i}.bin"] = records(n_train // 5, i)
        members[f"{root}/test_batch.bin"] = records(n_test, 9)
        members[f"{root}/batches.meta.txt"] = "\n".join(
            ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]).encode() + b"\n\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_image_folder(folder: Path, per_class: int = 6, classes: tuple[str, ...] = ("cat", "dog", "owl")) -> Path:
    from PIL import Image

    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        x, _ = class_images(per_class, len(classes), 40, 3, c)
        for i in range(per_class):
            fmt = ("png", "jpeg", "bmp")[i % 3]
            Image.fromarray(x[i].transpose(1, 2, 0)).save(folder / name / f"{i}.{fmt}", format=fmt.upper())
    return folder


def write_scenes(root: Path, size: int, n_train: int = 6, n_val: int = 3, **spec) -> Path:
    """A small fashion-scenes folder (VOC and COCO layouts) under ``root``, from generated Fashion-MNIST-like
    items; ``spec``: the other :class:`~cnnzoo.datasets.scenes.SceneSpec` settings."""
    from cnnzoo.datasets.scenes import SceneSpec, generate

    items = write_idx_dataset(root / "fashion", n_train=40, n_test=20)
    out = root / "scenes"
    generate(out, n_train, n_val, SceneSpec(size=size, **spec), items, log=lambda *a: None)
    return out
