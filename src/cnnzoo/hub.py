"""Downloading weight files, with ``torch.hub``'s semantics and none of its surprises.

- Files live in ``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``), so a file torchvision has
  already downloaded is used as it is, and the other way round.
- A file name ``name-<hex>.ext`` names the first hex digits of the file's SHA-256 (torchvision's
  convention); a download whose digest disagrees is refused and nothing is left behind.
- Downloads are written to a temporary file in the same folder and moved into place only when complete
  and checked, so an interrupted or corrupt download never leaves a file that later loads. A web page
  answered instead of the file (status 200 from a proxy or a wrong mirror), an HTTP error, a connection
  cut half-way and a disk that fills are each one line saying what to do; two processes fetching the
  same file take turns.
- A cached file is used without any network access, once checked against its digest where one is known
  (a damaged one is downloaded again). Where the file is neither cached nor downloadable,
  one line names the URL and the exact path to put the file at.
- ``CNNZOO_WEIGHTS_MIRROR`` (a base URL, ``file://`` included) replaces the host part of every URL:
  ``$CNNZOO_WEIGHTS_MIRROR/<file name>``, for sites without access to download.pytorch.org.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Callable, Iterator

from .errors import CnnzooError, DiskFullError, WeightsError
from .weights import disk_full

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

    ``sha256`` is the full digest when known; otherwise the file name's prefix is checked. A cached file
    whose digest is known is checked before use (once: a ``.sha256`` note beside it records the size and
    time it was checked at); a damaged one is downloaded again.
    """
    dest = cached_path(url)
    src = source_url(url)
    expected = sha256 or hash_prefix(dest.name)
    fix = f"download it elsewhere and put it at {dest}" + (
        "" if os.environ.get(MIRROR_ENV) else f", or set {MIRROR_ENV} to a mirror's base URL")

    def check(digests: dict[str, str]) -> str | None:
        if expected and not digests["sha256"].startswith(expected):
            return f"SHA-256 {digests['sha256'][:len(expected)]}, expected {expected}"
        return None

    return fetch_file(src, dest, check, fix, WeightsError, progress)


class _Digests:
    """SHA-256 and MD5 of a stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self.sha256, self.md5 = hashlib.sha256(), hashlib.md5()

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.md5.update(chunk)

    def hex(self) -> dict[str, str]:
        return {"sha256": self.sha256.hexdigest(), "md5": self.md5.hexdigest()}


def file_digests(path: Path) -> dict[str, str]:
    d = _Digests()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            d.update(chunk)
    return d.hex()


def fetch_file(src: str, dest: Path, check: Callable[[dict[str, str]], str | None], fix: str,
               error: type[CnnzooError] = CnnzooError, progress: bool = True) -> Path:
    """``dest``, downloaded from ``src`` unless a checked copy is there: the one safe way files arrive.

    ``check(digests)`` says what is wrong with a file (``{"sha256", "md5"}`` of its bytes), None if
    nothing. The download streams to a temporary file beside ``dest`` and is moved into place only when
    complete and checked, so no truncated or foreign file is ever left where a later run would trust it.
    Processes downloading the same file take turns (an ``flock``): the second finds the first's file.
    Each failure is one line (``error``) saying what happened and, with ``fix``, what to do.
    """
    if usable(dest, check):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _turn(dest):
        if usable(dest, check):  # another process downloaded it while we waited
            return dest
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
        sizes = {"total": 0, "done": 0}
        try:
            digests = _fetch(src, tmp, progress, sizes)
            if (why := check(digests)) is not None:
                raise error(f"the download of {src} is corrupt ({why}); nothing was saved; try again, or {fix}")
            os.replace(tmp, dest)
            remember(dest, digests)
        except CnnzooError:
            raise
        except urllib.error.HTTPError as exc:
            raise error(f"{src} answered HTTP {exc.code} {exc.reason}; nothing was saved; {fix}") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if disk_full(exc, dest.parent):
                raise DiskFullError.about(dest, sizes["total"] or None, sizes["done"]) from None
            if isinstance(exc, _Html):
                raise error(f"{src}: {exc}; nothing was saved; {fix}") from None
            reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, http.client.IncompleteRead):
                reason = f"connection closed after {len(exc.partial) + sizes['done']:,} of {sizes['total']:,} bytes"
            raise error(f"cannot download {src} ({reason}); nothing was saved; run the command again, or {fix}"
                        ) from None
        finally:
            tmp.unlink(missing_ok=True)
    return dest


class _Html(ValueError):
    pass


def _fetch(url: str, tmp: Path, progress: bool, sizes: dict[str, int]) -> dict[str, str]:
    """Stream ``url`` into ``tmp``; returns the digests of what was written. ``sizes`` follows the bytes
    announced (``total``) and written (``done``), for the message of a failure."""
    digests = _Digests()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "cnnzoo"}), timeout=30) as r:
        total = sizes["total"] = int(r.headers.get("Content-Length") or 0)
        done = 0
        show = progress and sys.stderr.isatty()
        with open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                if not done and _looks_like_html(chunk, r.headers.get("Content-Type", "")):
                    raise _Html("the server answered a web page (HTML), not the file: a proxy's login or error "
                                "page, or a wrong mirror URL")
                f.write(chunk)
                digests.update(chunk)
                done += len(chunk)
                sizes["done"] = done
                if show:
                    pct = f" {100 * done / total:5.1f}%" if total else ""
                    print(f"\rdownloading {url.rsplit('/', 1)[-1]}: {done / 1e6:,.1f} MB{pct}", end="", file=sys.stderr)
            f.flush()
            os.fsync(f.fileno())
        if show:
            print(file=sys.stderr)
        if total and done != total:
            raise OSError(f"connection closed after {done:,} of {total:,} bytes")
        if not done:
            raise OSError("the server sent an empty file")
    return digests.hex()


def _looks_like_html(head: bytes, content_type: str) -> bool:
    start = head[:512].lstrip().lower()
    return content_type.split(";")[0].strip().lower() == "text/html" or start.startswith((b"<!doctype html", b"<html"))


def note_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.sha256")


def remember(dest: Path, digests: dict[str, str]) -> None:
    """A note beside ``dest``: its digests at its size and time, so that a later run checks it cheaply."""
    st = dest.stat()
    note = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, **digests}
    try:
        note_path(dest).write_text(json.dumps(note))
    except OSError:
        pass  # the note only saves time


def usable(dest: Path, check: Callable[[dict[str, str]], str | None]) -> bool:
    """Whether ``dest`` is there and passes ``check``; a damaged file (truncated by a crash, say) is removed
    with a warning, to be downloaded again."""
    if not dest.is_file():
        return False
    st = dest.stat()
    try:
        note = json.loads(note_path(dest).read_text())
        known = note if (note["size"], note["mtime_ns"]) == (st.st_size, st.st_mtime_ns) else None
    except (OSError, ValueError, KeyError, TypeError):
        known = None
    digests = known or file_digests(dest)
    why = check(digests) if st.st_size else "empty"
    if why is None:
        if known is None:
            remember(dest, digests)
        return True
    warnings.warn(f"{dest} in the cache is damaged ({why}; truncated by an earlier crash?); it is removed and "
                  "downloaded again", stacklevel=3)
    dest.unlink(missing_ok=True)
    note_path(dest).unlink(missing_ok=True)
    return False


@contextlib.contextmanager
def _turn(dest: Path) -> Iterator[None]:
    """Hold ``dest``'s download lock; a process that finds it held says so and waits its turn."""
    import fcntl

    lock = dest.with_name(f".{dest.name}.lock")
    with open(lock, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process that is downloading {dest.name} ...", file=sys.stderr)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            # Removed while held: a process that opened it meanwhile finds the file there when its turn
            # comes (at worst two download it, each to a file of its own, and the last move wins whole).
            lock.unlink(missing_ok=True)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
