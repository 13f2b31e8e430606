"""Readers for the official dataset formats, into in-memory uint8 tensors.

- MNIST and Fashion-MNIST: the IDX files (``*-idx3-ubyte[.gz]``), from Debian's package, the data cache
  or a given folder;
- CIFAR-10/100: the official *binary* archives (``cifar-10-binary.tar.gz``), read as bytes — the
  Python-version archives are pickles, which we never load;
- ``folder:PATH``: one subfolder per class, any format Pillow reads, decoded once at the size the run
  needs (the model's input, or the pretrained weights' resize and centre crop) and cached.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import warnings
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import CnnzooError
from .fetch import DEBIAN_FASHION_MNIST, data_home, fetch

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass
class ImageDataset:
    """A whole dataset in memory: images ``N x C x H x W`` uint8, labels ``N`` int64."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())
    #: files of a folder dataset that could not be decoded (relative to the folder): said on every run
    skipped: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.mean:  # per-channel statistics of the training images, on [0, 1]
            x = self.train_images.float().div_(255)
            self.mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
            self.std = tuple(x.std(dim=(0, 2, 3)).tolist())

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or gzipped): the magic number gives the dtype and rank, then the dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise CnnzooError(f"cannot read {path} ({exc}); is it a complete IDX file?") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CnnzooError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise CnnzooError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_dataset(name: str, root: Path | None = None, classes: tuple[str, ...] | None = None) -> ImageDataset:
    """MNIST or Fashion-MNIST from a folder of the four IDX files (found or fetched)."""
    candidates = [root] if root else []
    if name == "fashion-mnist" and not root:
        candidates.append(DEBIAN_FASHION_MNIST)
    if not root:
        candidates.append(data_home() / name)
    folder = next((c for c in candidates if c and _find_idx(c, "train-images-idx3-ubyte")), None)
    if folder is None:
        if root:
            raise CnnzooError(f"no {name} IDX files (train-images-idx3-ubyte[.gz], ...) in {root}")
        folder = fetch(name)
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = (_find_idx(folder, f"{prefix}-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
        if images is None or labels is None:
            raise CnnzooError(f"{folder} lacks the {split} IDX files of {name}")
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise CnnzooError(f"{images} and {labels} do not match (shapes {x.shape} and {y.shape})")
        parts[split] = (torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64)))
    n_classes = int(parts["train"][1].max()) + 1
    classes = classes or tuple(str(i) for i in range(n_classes))
    return ImageDataset(name, *parts["train"], *parts["test"], classes=classes)


_CIFAR = {
    "cifar10": ("cifar-10-binary.tar.gz", "cifar-10-batches-bin", 1,
                [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], "batches.meta.txt"),
    "cifar100": ("cifar-100-binary.tar.gz", "cifar-100-binary", 2, ["train.bin"], ["test.bin"], "fine_label_names.txt"),
}


def load_cifar(name: str, root: Path | None = None) -> ImageDataset:
    """CIFAR-10 or CIFAR-100 (fine labels) from the official binary archive or its extracted folder."""
    archive, folder_name, label_bytes, train_files, test_files, meta = _CIFAR[name]
    search = [root] if root else [data_home() / name, data_home()]
    source: Path | None = None
    for base in search:
        for cand in (base / archive, base / folder_name, base):
            if cand.is_file() or (cand / train_files[0]).is_file():
                source = cand
                break
        if source:
            break
    if source is None:
        if root:
            raise CnnzooError(f"no {archive} or {folder_name}/ in {root}")
        source = fetch(name) / archive
    members = _read_members(source, [*train_files, *test_files, meta])
    record = label_bytes + 3072

    def decode(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raw = np.frombuffer(b"".join(members[f] for f in files), dtype=np.uint8)
        if raw.size % record:
            raise CnnzooError(f"{name} data in {source} is truncated")
        raw = raw.reshape(-1, record)
        labels = torch.from_numpy(raw[:, label_bytes - 1].astype(np.int64))
        return torch.from_numpy(raw[:, label_bytes:].reshape(-1, 3, 32, 32).copy()), labels

    names = tuple(line for line in members[meta].decode().split("\n") if line.strip()) if meta in members else None
    train, test = decode(train_files), decode(test_files)
    classes = names or (CIFAR10_CLASSES if name == "cifar10" else tuple(str(i) for i in range(100)))
    return ImageDataset(name, *train, *test, classes=classes)


def _read_members(source: Path, wanted: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if source.is_file():
        try:
            with tarfile.open(source, "r:*") as tar:
                for m in tar.getmembers():
                    base = os.path.basename(m.name)
                    if m.isfile() and base in wanted:
                        out[base] = tar.extractfile(m).read()  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CnnzooError(f"cannot read the archive {source} ({exc}); is it complete?") from exc
    else:
        for w in wanted:
            if (source / w).is_file():
                out[w] = (source / w).read_bytes()
    missing = [w for w in wanted[:-1] if w not in out]
    if missing:
        raise CnnzooError(f"{source} lacks {', '.join(missing)}")
    return out


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def load_folder(path: Path, image_size: int = 64, test_fraction: float = 0.2, seed: int = 0,
                cache: bool = True, resize: int | None = None) -> ImageDataset:
    """A folder with one subfolder per class. Images are decoded once (RGB) to ``image_size`` squared —
    the shorter side resized to ``resize`` and the centre cropped where ``resize`` is given, else the whole
    image resized — and cached in the data cache; files Pillow cannot read are skipped and counted in one
    warning. If the folder has ``train/`` and ``test/`` subfolders they are the splits; otherwise a
    seeded ``test_fraction`` of each class is held out as the test set. At least two classes are needed."""
    path = Path(path)
    if not path.is_dir():
        raise CnnzooError(f"dataset folder {path} does not exist; "
                          "give a folder with one subfolder of images per class, as --data folder:PATH")
    split_dirs = {s: path / s for s in ("train", "test")}
    if all(d.is_dir() for d in split_dirs.values()):
        train = _scan(split_dirs["train"])
        test = _scan(split_dirs["test"], classes=list(train))
    else:
        train, test = _scan(path), None
    classes = tuple(train)
    key = hashlib.sha1(repr((str(path.resolve()), image_size, resize, sorted(
        (str(f), f.stat().st_mtime_ns) for files in train.values() for f in files))).encode()).hexdigest()[:16]
    cache_file = data_home() / "folders" / f"{path.name}-{key}.pt"
    blob = _read_cache(cache_file) if cache and test is None else None
    if blob is not None:
        images, labels, bad = blob["images"], blob["labels"], list(blob["skipped"])
    else:
        images, labels, bad = _decode_all(train, image_size, resize, path)
        if cache and test is None:
            from ..weights import atomic_write, saved_size

            blob = {"images": images, "labels": labels, "skipped": bad}
            atomic_write(cache_file, lambda tmp: torch.save(blob, tmp), size=saved_size(blob))
    if test is not None:
        test_images, test_labels, bad_test = _decode_all(test, image_size, resize, path)
        bad += bad_test
    if bad:  # on every run, from the cache too: the user who missed it once hears it again
        warnings.warn(skipped_message(bad), stacklevel=3)
    if test is not None:
        return ImageDataset(f"folder:{path}", images, labels, test_images, test_labels, classes=classes,
                            skipped=tuple(bad))
    g = torch.Generator().manual_seed(seed)
    test_idx = []
    for c in range(len(classes)):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test_idx.append(idx[: max(1, round(len(idx) * test_fraction))] if len(idx) > 1 else idx[:0])
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[torch.cat(test_idx)] = True
    return ImageDataset(f"folder:{path}", images[~is_test], labels[~is_test], images[is_test], labels[is_test],
                        classes=classes, skipped=tuple(bad))


def skipped_message(skipped: list[str] | tuple[str, ...], shown: int = 3) -> str:
    """The unreadable image files a folder dataset skipped: the count and the first few names."""
    names = ", ".join(skipped[:shown]) + (f" and {len(skipped) - shown} more" if len(skipped) > shown else "")
    return f"skipped {len(skipped)} unreadable image file(s): {names}"


def _read_cache(path: Path) -> dict[str, Any] | None:
    """The decoded cache, or None where it is missing, unreadable (truncated by a crash) or of an older
    version (without the list of skipped files): then the folder is decoded again and the cache rewritten."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - any damage means: decode again
        return None
    if not isinstance(blob, dict) or not {"images", "labels", "skipped"} <= set(blob):
        return None
    if len(blob["images"]) != len(blob["labels"]):
        return None
    return blob


def _scan(folder: Path, classes: list[str] | None = None) -> dict[str, list[Path]]:
    found = {d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
             for d in sorted(folder.iterdir()) if d.is_dir()}
    if classes is not None:
        found = {c: found.get(c, []) for c in classes}
    if not found:
        raise CnnzooError(f"{folder} has no class subfolders; put each class's images in a folder of its own")
    if len(found) < 2:
        raise CnnzooError(f"{folder} has only one class folder ({next(iter(found))}); a classifier needs at least "
                          "two: put each class's images in a folder of its own")
    empty = [c for c, files in found.items() if not files]
    if empty:
        raise CnnzooError(f"class folder(s) {', '.join(empty)} in {folder} hold no images")
    return found


def _decode_all(files: dict[str, list[Path]], size: int, resize: int | None = None, root: Path | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images and labels, and the files that could not be decoded (relative to ``root``)."""
    from PIL import Image, ImageOps

    images, labels, bad = [], [], []
    for label, paths in enumerate(files.values()):
        for p in paths:
            try:
                with Image.open(p) as im:
                    im = ImageOps.exif_transpose(im).convert("RGB")
                    if resize:
                        scale = resize / min(im.size)
                        im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))),
                                       Image.BILINEAR, reducing_gap=3.0)
                        left, top = (im.width - size) // 2, (im.height - size) // 2
                        im = im.crop((left, top, left + size, top + size))
                    else:
                        im = im.resize((size, size), Image.BILINEAR)
                    images.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
                    labels.append(label)
            except Exception:  # any undecodable file is skipped and counted
                bad.append(str(p.relative_to(root)) if root is not None else str(p))
    if not images:
        raise CnnzooError("no readable images in the dataset folder")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), bad


def load_dataset(spec: str, root: str | os.PathLike | None = None, image_size: int = 64,
                 resize: int | None = None) -> ImageDataset:
    """A dataset by name: ``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100`` or ``folder:PATH``.

    ``image_size`` and ``resize`` are the size folder images are decoded at (see :func:`load_folder`).
    """
    r = Path(root) if root else None
    if spec == "fashion-mnist":
        return load_idx_dataset(spec, r, FASHION_CLASSES)
    if spec == "mnist":
        return load_idx_dataset(spec, r)
    if spec in _CIFAR:
        return load_cifar(spec, r)
    if spec.startswith("folder:"):
        return load_folder(Path(spec[len("folder:"):]), image_size, resize=resize)
    raise CnnzooError(f"unknown dataset {spec!r}: use fashion-mnist, mnist, cifar10, cifar100 or folder:PATH")
