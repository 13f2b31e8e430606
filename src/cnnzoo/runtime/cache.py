"""The cache of exported graphs, compiled models and measured choices.

Exported graphs are cached under ``cache_dir``, else ``$CNNZOO_CACHE/onnx``, else
``$XDG_CACHE_HOME/cnnzoo/onnx`` (``~/.cache/cnnzoo/onnx``). A graph is keyed by the module's class, its
registry name and arguments, a hash of its weights, the input shape and the torch and onnx versions; a
measured choice of ``auto`` by the architecture alone (speed does not depend on the weights), the input,
batch, threads, the machine and the libraries' versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .export import _label, device_of, export_onnx, ort_session, verify

#: bumped when the export or the cache layout changes, so old cached graphs are not reused
CACHE_VERSION = "1"


def cache_home() -> Path:
    """Where exported graphs live: ``$CNNZOO_CACHE/onnx``, else ``$XDG_CACHE_HOME/cnnzoo/onnx``."""
    if env := os.environ.get("CNNZOO_CACHE"):
        return Path(env) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnzoo" / "onnx"


def architecture_key(module: nn.Module, input_shape: tuple[int, ...]) -> hashlib._Hash:
    """A hash of what ``module`` computes, without its weights, at ``input_shape``."""
    from importlib.metadata import version

    h = hashlib.sha256()
    named = next((m for m in module.modules() if getattr(m, "model_name", None)), None)
    parts: list[Any] = [CACHE_VERSION, f"{type(module).__module__}.{type(module).__qualname__}",
                        getattr(named, "model_name", None), _jsonable(getattr(named, "model_args", None)),
                        list(input_shape), torch.__version__, version("onnx")]
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    h.update(hashlib.sha256(repr(module).encode()).digest())  # the architecture, wrappers' settings included
    return h


def cache_key(module: nn.Module, input_shape: tuple[int, ...]) -> str:
    """A hex digest naming ``module`` with its weights at ``input_shape`` for this torch and onnx."""
    h = architecture_key(module, input_shape)
    h.update(state_hash(module).encode())
    return h.hexdigest()


def state_hash(module: nn.Module) -> str:
    """A digest of every tensor of the state dict: names, dtypes, shapes and bytes."""
    h = hashlib.blake2b(digest_size=32)
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def onnx_file(module: nn.Module, input_shape: tuple[int, ...], cache: Path) -> Path:
    """The module's verified ONNX export in ``cache``, exporting it only when it is not there yet."""
    path = cache / f"{_label(module)}-{cache_key(module, input_shape)[:20]}.onnx"
    if path.is_file():
        return path
    example = torch.randn(2, *input_shape).to(device_of(module))
    export_onnx(module, example, path)
    try:
        verify(module, _ort_runner(path), input_shape)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def read_choice(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_choice(path: Path, data: dict[str, Any]) -> None:
    from ..weights import atomic_write

    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))
    except OSError as exc:  # a read-only cache costs a re-measure next time, nothing else
        warnings.warn(f"cannot cache the engine choice in {path} ({exc})", stacklevel=3)


def _ort_runner(path: Path):
    session = ort_session(str(path))
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.detach().cpu().contiguous().numpy()})[0])


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str)) if value is not None else None
