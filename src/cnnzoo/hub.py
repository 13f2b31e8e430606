"""Downloading weight files, with ``torch.hub``'s semantics and none of its surprises.

- Files live in ``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``), so a file torchvision has
  already downloaded is used as it is, and the other way round.
- A file name ``name-<hex>.ext`` names the first hex digits of the file's SHA-256 (torchvision's
  convention); a download whose digest disagrees is refused and nothing is left behind.
- Downloads are written to a temporary file in the same folder and moved into place only when complete
  and checked, so an interrupted or corrupt download never leaves a file that later loads.
- A cached file is used without any network access. Where the file is neither cached nor downloadable,
  one line names the URL and the exact path to put the file at.
- ``CNNZOO_WEIGHTS_MIRROR`` (a base URL, ``file://`` included) replaces the host part of every URL:
  ``$CNNZOO_WEIGHTS_MIRROR/<file name>``, for sites without access to download.pytorch.org.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .errors import WeightsError

MIRROR_ENV = "CNNZOO_WEIGHTS_MIRROR"
_HASH_PREFIX = re.compile(r"-([a-f0-9]{6,64})\.")


def checkpoint_dir() -> Path:
    """Where downloaded weights live: ``torch.hub``'s own checkpoints folder."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_prefix(file_name: str) -> str | None:
    """The SHA-256 prefix a torchvision-style file name promises (``resnet50-11ad3fa6.pth`` -> ``11ad3fa6``)."""
    m = _HASH_PREFIX.search(file_name)
    return m.group(1) if m else None


def source_url(url: str) -> str:
    """``url``, or the same file under the mirror that ``CNNZOO_WEIGHTS_MIRROR`` names."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + url.rsplit("/", 1)[-1]


def cached_path(url: str) -> Path:
    """The path ``url``'s file has (or will have) in the cache."""
    return checkpoint_dir() / url.rsplit("/", 1)[-1]


def download(url: str, progress: bool = True, sha256: str | None = None) -> Path:
    """The cached file of ``url``, downloaded (checked, atomically) only when it is not there yet.

    ``sha256`` is the full digest when known; otherwise the file name's prefix is checked.
    """
    dest = cached_path(url)
    if dest.is_file():
        return dest
    src = source_url(url)
    expected = sha256 or hash_prefix(dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        digest = _fetch(src, tmp, progress)
        if expected and not digest.startswith(expected):
            raise WeightsError(f"the download of {src} is corrupt (SHA-256 {digest[:len(expected)]}, expected "
                               f"{expected}); nothing was saved; try again, or put the right file at {dest}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"cannot download {src} ({reason}); download it elsewhere and put it at {dest}"
                           + ("" if os.environ.get(MIRROR_ENV) else f", or set {MIRROR_ENV} to a mirror's base URL")
                           ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _fetch(url: str, tmp: Path, progress: bool) -> str:
    """Stream ``url`` into ``tmp``; returns the SHA-256 hex digest of what was written."""
    sha = hashlib.sha256()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "cnnzoo"}), timeout=30) as r:
        total = int(r.headers.get("Content-Length") or 0)
        done = 0
        show = progress and sys.stderr.isatty()
        with open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if show:
                    pct = f" {100 * done / total:5.1f}%" if total else ""
                    print(f"\rdownloading {url.rsplit('/', 1)[-1]}: {done / 1e6:,.1f} MB{pct}", end="", file=sys.stderr)
            f.flush()
            os.fsync(f.fileno())
        if show:
            print(file=sys.stderr)
        if total and done != total:
            raise OSError(f"connection closed after {done:,} of {total:,} bytes")
    return sha.hexdigest()
