"""Where datasets live, and fetching their official files (verified by MD5) when a network exists."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CnnzooError
from ..hub import fetch_file

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    md5: str


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"

SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "fashion-mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _FASHION + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", _FASHION + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _FASHION + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _FASHION + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _MNIST + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        RemoteFile("train-labels-idx1-ubyte.gz", _MNIST + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _MNIST + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _MNIST + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    "cifar10": (
        RemoteFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                   "c32a1d4ab5d03f1284b67883e8d87530"),
    ),
    "cifar100": (
        RemoteFile("cifar-100-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                   "03b5dce01913d631647c71ecec9e9cb8"),
    ),
}


def data_home() -> Path:
    """The data cache: ``$CNNZOO_DATA``, else ``$XDG_CACHE_HOME/cnnzoo/data``, else ``~/.cache/cnnzoo/data``."""
    if env := os.environ.get("CNNZOO_DATA"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnzoo" / "data"


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def installed_copy(name: str) -> Path | None:
    """A system-wide copy of ``name``'s files (Debian's ``dataset-fashion-mnist``), where one is installed."""
    if name == "fashion-mnist" and all((DEBIAN_FASHION_MNIST / rf.name).is_file() for rf in SOURCES[name]):
        return DEBIAN_FASHION_MNIST
    return None


def fetch(name: str, root: Path | None = None) -> Path:
    """Download ``name``'s official files into ``root`` (default: the data cache), verifying each MD5 (also
    of a file already there: a damaged one is downloaded again); see :func:`cnnzoo.hub.fetch_file`."""
    if name not in SOURCES:
        raise CnnzooError(f"no download is known for {name!r}; choose one of {', '.join(SOURCES)}")
    folder = (root or data_home()) / name
    for rf in SOURCES[name]:
        fetch_file(rf.url, folder / rf.name, lambda d, rf=rf: None if d["md5"] == rf.md5 else
                   f"MD5 {d['md5']}, expected {rf.md5}", f"put {rf.name} in {folder} by hand")
    return folder
