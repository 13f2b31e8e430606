"""Files hosted on the Hugging Face hub, fetched with ``huggingface_hub`` into its own cache.

- The cache is the hub's (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``),
  where timm puts the same files: a file already there is used with no network access at all.
- ``HF_HUB_OFFLINE=1`` never touches the network; ``HF_ENDPOINT`` names a mirror of the hub. Both are
  read when a file is asked for, not when Python starts.
- ``huggingface_hub`` downloads into ``blobs/`` under a temporary name, checks the size, and only then
  links the file into ``snapshots/``; an interrupted download is resumed on the next call.
- What arrives must be a complete safetensors file; anything else (a mirror's HTML page, a truncated
  file) is refused with one line, and a file this call downloaded is removed again.
- The hub publishes the SHA-256 of every large (LFS) file as its ETag, and its cache names the blob by it:
  a blob so named is checked against its name, after a download and once for a file found in the cache
  (a note beside the blob records the check); a damaged cached file is removed and fetched again.
- ``CNNZOO_WEIGHTS_MIRROR`` (a plain file server, ``file://`` included) serves these files too, at
  ``$CNNZOO_WEIGHTS_MIRROR/<repo id>/<file name>`` (``.../timm/inception_v4.tf_in1k/model.safetensors``),
  when ``HF_ENDPOINT`` is not set. The file goes into the hub's cache layout (blob named by its SHA-256,
  snapshot link, ``refs/main``), where timm finds it too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import hub
from ..errors import WeightsError

OFFLINE_ENV = "HF_HUB_OFFLINE"
ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"


def cache_dir() -> Path:
    """The Hugging Face hub cache, as ``huggingface_hub`` resolves it from the environment."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def repo_folder(repo_id: str) -> Path:
    """Where ``repo_id``'s files live in the cache (``models--timm--inception_v4.tf_in1k``)."""
    return cache_dir() / ("models--" + repo_id.replace("/", "--"))


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cached_file(repo_id: str, filename: str) -> Path | None:
    """The cached copy of ``repo_id/filename`` (its ``main`` revision), or None; never uses the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir()))
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def hub_file(repo_id: str, filename: str) -> Path:
    """``repo_id/filename`` from the cache, else downloaded into it; a complete safetensors file or a
    :class:`WeightsError` of one line naming the file, the cache path and the mirror setting."""
    cached = cached_file(repo_id, filename)
    if cached is not None and _digest_ok(cached):
        check_safetensors(cached, downloaded=False)
        return cached
    if os.environ.get(hub.MIRROR_ENV, "").strip() and not os.environ.get(ENDPOINT_ENV, "").strip():
        return _from_mirror(repo_id, filename)
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip().rstrip("/") or DEFAULT_ENDPOINT
    url = f"{endpoint}/{repo_id}/resolve/main/{filename}"
    where = f"{repo_folder(repo_id)}/snapshots/<revision>/{filename}"
    mirror = (f"{ENDPOINT_ENV}={endpoint}" if os.environ.get(ENDPOINT_ENV)
              else f"set {ENDPOINT_ENV} to a Hugging Face mirror, or {hub.MIRROR_ENV} to a file server holding "
                   f"{repo_id}/{filename}")
    if offline():
        raise WeightsError(f"{repo_id}/{filename} is not in the Hugging Face cache and {OFFLINE_ENV}=1: copy it to "
                           f"{where} (or run once online, or `hf download {repo_id} {filename}`); {mirror}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise WeightsError(f"{repo_id}/{filename} comes from the Hugging Face hub: pip install huggingface_hub"
                           ) from None
    try:
        path = Path(hf_hub_download(repo_id, filename, cache_dir=str(cache_dir()), endpoint=endpoint,
                                    library_name="cnnzoo"))
    except Exception as exc:  # huggingface_hub's HTTP, metadata and cache errors, and plain OSErrors
        raise WeightsError(f"cannot download {url} ({_reason(exc)}); put the file at {where}, or {mirror}"
                           if not os.environ.get(ENDPOINT_ENV) else
                           f"cannot download {url} ({_reason(exc)}); put the file at {where} ({mirror})") from None
    if not _digest_ok(path):
        raise WeightsError(f"the download of {url} does not match the SHA-256 the hub published for it; nothing "
                           "was kept; run the command again")
    check_safetensors(path, downloaded=True)
    return path


def _digest_ok(path: Path) -> bool:
    """Whether the blob behind ``path`` has the SHA-256 it is named by (the hub's LFS ETag); a blob with
    another name (a small file's git hash) has nothing to be checked against. A damaged blob is removed
    with a warning, and its snapshot link with it."""
    blob = path.resolve()
    if not re.fullmatch(r"[0-9a-f]{64}", blob.name):
        return True
    if hub.usable(blob, lambda d: None if d["sha256"] == blob.name else
                  f"SHA-256 {d['sha256'][:16]}..., the hub published {blob.name[:16]}..."):
        return True
    path.unlink(missing_ok=True)
    return False


def _from_mirror(repo_id: str, filename: str) -> Path:
    """``repo_id/filename`` from ``CNNZOO_WEIGHTS_MIRROR``, put into the hub's cache layout."""
    folder = repo_folder(repo_id)
    src = os.environ[hub.MIRROR_ENV].strip().rstrip("/") + f"/{repo_id}/{filename}"
    arrived = hub.fetch_file(src, folder / "blobs" / f"mirror-{filename}", lambda digests: None,
                             f"put {repo_id}'s {filename} at {src}", WeightsError)
    digests = hub.file_digests(arrived)
    blob = arrived.with_name(digests["sha256"])
    os.replace(arrived, blob)
    hub.note_path(arrived).unlink(missing_ok=True)
    hub.remember(blob, digests)
    ref = folder / "refs" / "main"
    revision = ref.read_text().strip() if ref.is_file() else "0" * 40  # a mirror has no commit to name
    link = folder / "snapshots" / revision / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    if not ref.is_file():
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(revision)
    check_safetensors(link, downloaded=True)
    return link


def check_safetensors(path: Path, downloaded: bool) -> None:
    """``path`` holds a whole safetensors file (its header, then exactly the bytes the header describes)."""
    import json

    problem = None
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= size - 8:
            problem = "not a safetensors file" if size else "an empty file"
        else:
            try:
                header = json.loads(f.read(n))
                end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            except (ValueError, KeyError, TypeError):
                problem = "not a safetensors file"
            else:
                if size != 8 + n + end:
                    problem = f"truncated: {size:,} of {8 + n + end:,} bytes"
    if problem is None:
        return
    if downloaded:
        _remove(path)
        raise WeightsError(f"the download of {path.name} from the Hugging Face hub is {problem}; nothing was kept "
                           f"(does {ENDPOINT_ENV} name a Hugging Face mirror?)")
    raise WeightsError(f"{path} in the Hugging Face cache is {problem}; delete it and run again "
                       f"(it is downloaded afresh), or put the right file there")


def _remove(path: Path) -> None:
    """A downloaded file: the snapshot link, the blob it points to and the note of the blob's digest."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)
    hub.note_path(blob).unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    """The HTTP status behind ``exc`` (huggingface_hub wraps it in a cache-miss error), else its first line."""
    seen: BaseException | None = exc
    while seen is not None:
        status = getattr(getattr(seen, "response", None), "status_code", None)
        if status:
            return f"HTTP {status}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
