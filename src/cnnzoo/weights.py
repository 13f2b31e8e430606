"""Weights in and out: cnnzoo safetensors files, cnnzoo training checkpoints, torchvision ``.pth`` files.

Nothing is unpickled beyond tensors: safetensors files are plain data, and ``.pth`` files are read with
``torch.load(weights_only=True)``.

Key mapping: every model whose torchvision twin exists keeps torchvision's state-dict key names, so a
torchvision file loads unchanged; a family whose keys differ (torchvision's legacy DenseNet keys, say)
rewrites them in its ``convert_state_dict(state_dict)`` method, documented there.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .errors import CnnzooError, DiskFullError, WeightsError

FORMAT_KEY = "cnnzoo_format"
FORMAT_VERSION = "1"


def atomic_write(path: str | os.PathLike, write: Any, size: int | Callable[[], int] | None = None) -> None:
    """Call ``write(tmp_path)`` and move the result over ``path`` only once it is complete and synced.

    The file gets the mode a plain ``open`` would (``0666`` less the umask; ``mkstemp`` alone makes it
    private). Missing parent folders are created. A full disk is the user's one line
    (:class:`DiskFullError`: where, and ``size``, the bytes the file needs, where the caller knows them),
    and no part of the file is left behind.
    """
    path = Path(path)
    make_parents(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise CnnzooError(f"cannot write {path}: folder {path.parent} is not writable; write elsewhere") from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        written = Path(tmp).stat().st_size if os.path.exists(tmp) else 0
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Exception) and disk_full(exc, path.parent):
            raise DiskFullError.about(path, size() if callable(size) else size, written) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def make_parents(path: Path) -> None:
    """Create ``path``'s missing parent folders: the one rule of every command for an output it is given
    (as ``mkdir -p``); a file in the way, or a folder that cannot be written, is the user's one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), path.parent)
        raise CnnzooError(f"cannot write {path}: {blocker} is a file, not a folder; give another path") from None
    except PermissionError as exc:
        raise CnnzooError(f"cannot write {path}: cannot create folder {exc.filename or path.parent} (permission "
                          "denied); write elsewhere") from None


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``os.umask`` alone must set one)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` (or what caused it) is the disk running out of space under ``folder``.

    ``torch.save`` reports a short write as a ``RuntimeError`` ("unexpected pos ..."), without the
    errno: a failed write on a filesystem left with (almost) no free space counts as full.
    """
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("unexpected pos", "file write failed")):
        try:
            return shutil.disk_usage(folder).free < (1 << 20)
        except OSError:
            return False
    return False


def _state_bytes(obj: Any) -> int:
    """The bytes a ``torch.save`` of ``obj`` takes, to within its small container overhead."""
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes() if obj.device.type != "meta" else 0
    if isinstance(obj, dict):
        return sum(_state_bytes(v) for v in obj.values()) + 64 * len(obj)
    if isinstance(obj, (list, tuple)):
        return sum(_state_bytes(v) for v in obj) + 16 * len(obj)
    return 64


def saved_size(obj: Any) -> Callable[[], int]:
    """``size`` for :func:`atomic_write` of a ``torch.save``: computed only if the disk turns out full."""
    return lambda: _state_bytes(obj)


def save_model(model: nn.Module, path: str | os.PathLike) -> None:
    """Save ``model`` as safetensors with its registry name and constructor arguments in the metadata."""
    from safetensors.torch import save_file

    name = getattr(model, "model_name", None)
    if name is None:
        raise WeightsError("only models built with cnnzoo.create_model can be saved with their name; "
                           "use safetensors.torch.save_file for other modules")
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = {FORMAT_KEY: FORMAT_VERSION, "model_name": name, "model_args": json.dumps(model.model_args)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a weights file into ``(state_dict, info)``; ``info`` has ``model_name``/``model_args`` if known, and a
    training checkpoint's ``classes`` (its class names), ``pipeline`` and ``input_shape`` (what it was trained on)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist; give a .safetensors or .pth file")
    with open(p, "rb") as f:
        head = f.read(8)
    if p.suffix == ".safetensors" or _looks_like_safetensors(p, head):
        return _read_safetensors(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read {str(path)!r} as PyTorch weights ({type(exc).__name__}); "
                           "give a .safetensors file, a .pth state dict or a cnnzoo checkpoint") from exc
    return _unwrap(obj, path)


def _looks_like_safetensors(p: Path, head: bytes) -> bool:
    if len(head) < 8:
        return False
    n = int.from_bytes(head, "little")
    if not 2 <= n <= min(p.stat().st_size - 8, 100_000_000):
        return False
    with open(p, "rb") as f:
        f.seek(8)
        return f.read(1) == b"{"


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A safetensors file as ``(state_dict, info)``, whatever its name; never anything else."""
    return _read_safetensors(Path(path))


def _read_safetensors(p: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise WeightsError(f"{str(p)!r} is not a readable safetensors file ({exc}); was it truncated?") from exc
    info: dict[str, Any] = {}
    if "model_name" in meta:
        info["model_name"] = meta["model_name"]
        info["model_args"] = json.loads(meta.get("model_args", "{}"))
    return state, info


def _unwrap(obj: Any, path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    info: dict[str, Any] = {}
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        info = {k: obj[k] for k in ("model_name", "model_args", "classes", "input_shape", "pipeline") if k in obj}
        obj = obj["model"]
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{str(path)!r} holds no state dict of tensors; give a model's weights file")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
    return state, info


def load_weights(model: nn.Module, weights: str | os.PathLike | dict[str, torch.Tensor]) -> None:
    """Load weights into ``model``: a file path or a state dict (a registered tag such as ``"imagenet"`` goes
    through :func:`cnnzoo.load_weights`, which finds its file first).

    A classifier of another class count is dropped with a warning and stays freshly initialised; RGB
    weights on a model with ``in_chans != 3`` are adapted (summed over colour for one channel, repeated
    and rescaled otherwise). Any other mismatch raises :class:`WeightsError` naming the keys.
    """
    state = dict(weights) if isinstance(weights, dict) else read_weights(weights)[0]
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        state = convert(state)
    own = model.state_dict()
    _adapt_head(model, state, own)
    _adapt_in_chans(model, state, own)
    _check_fit(model, state, own)
    model.load_state_dict(state, strict=False)


def _adapt_head(model: nn.Module, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    names = [getattr(model, "classifier_name", None), *getattr(model, "aux_classifier_names", ())]
    dropped = []
    for name in filter(None, names):
        prefix = name + "."
        keys = [k for k in state if k.startswith(prefix)]
        if any(k not in own or own[k].shape != state[k].shape for k in keys):
            for k in keys:
                del state[k]
            dropped.append(name)
        elif not keys and any(k.startswith(prefix) for k in own):
            dropped.append(name)
    if dropped and any(k.startswith(n + ".") for n in dropped for k in own):
        warnings.warn(f"classifier {', '.join(dropped)} does not match the weights' class count: "
                      "re-initialised for the new classes", stacklevel=3)


def _adapt_in_chans(model: nn.Module, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    """Adapt the convolutions that read the image (``model.first_conv``: a name or a tuple of names)."""
    names = getattr(model, "first_conv", "conv1")
    for name in (names,) if isinstance(names, str) else names:
        key = f"{name}.weight"
        if key not in state or key not in own:
            continue
        w, target = state[key], own[key].shape
        if w.dim() != 4 or w.shape[1] == target[1] or w.shape[0] != target[0]:
            continue
        if target[1] == 1:
            state[key] = w.sum(dim=1, keepdim=True)
        else:
            reps = -(-target[1] // w.shape[1])
            state[key] = w.repeat(1, reps, 1, 1)[:, : target[1]] * (w.shape[1] / target[1])


def _check_fit(model: nn.Module, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    heads = tuple(n + "." for n in (getattr(model, "classifier_name", None),
                                    *getattr(model, "aux_classifier_names", ())) if n)
    # BN's step counters are not weights: files written before PyTorch 0.4.1, and some exports, leave them out.
    missing = [k for k in own if k not in state and not (heads and k.startswith(heads))
               and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
              if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        label = getattr(model, "model_name", None) or type(model).__name__
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches ({'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing keys ({', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])})")
        raise WeightsError(f"these weights do not fit {label}: {'; '.join(parts)}; "
                           "check the model name and its arguments")

