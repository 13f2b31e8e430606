"""Models out of PyTorch: ONNX files, TorchScript archives and ``torch.export`` programs, each verified.

Every export is written atomically and can be checked against eager PyTorch with :func:`verify`: the
file is reloaded (ONNX through ``onnx.checker`` and ONNX Runtime) and run on a random batch of another
size than the one it was traced with, so a batch axis baked in as a constant is caught.

ONNX goes through the TorchScript-based exporter first (a second or less for most of the zoo), and
through the ``torch.export``-based one (``dynamo=True``) where that one refuses a model: the legacy
exporter cannot take adaptive pooling at sizes that do not divide (AlexNet's 6x6 pool of a 5x5 map at
small inputs), which the new one decomposes. Models are exported in eval form: dropout off, batch norm
with running statistics, stochastic depth and drop-path off, auxiliary heads not run.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..base import AuxOutputs
from ..errors import CnnzooError

FORMATS = ("onnx", "torchscript", "exported-program")
#: the ONNX opset written; ONNX Runtime 1.16 and later run it
OPSET = 18
#: a max abs difference above this, relative to the logits' scale (at least 1), fails verification
TOLERANCE = 1e-4
ONNX_HINT = "pip install 'cnnzoo[onnx]'"


class ExportError(CnnzooError):
    """A model that cannot be exported to a format, or an export that does not match eager PyTorch."""


class LogitsOnly(nn.Module):
    """``module`` in eval form returning one tensor: the logits of :class:`AuxOutputs` or of a tuple."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return first_tensor(self.module(x))


def first_tensor(out: Any) -> Tensor:
    if isinstance(out, AuxOutputs):
        return out.logits
    if isinstance(out, (tuple, list)):
        return next(o for o in out if isinstance(o, Tensor))
    return out


def require_onnx() -> None:
    """Raise a one-line error naming the extra to install when onnx or onnxruntime is missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise CnnzooError(f"{' and '.join(missing)} not installed; {ONNX_HINT}")


def export_onnx(module: nn.Module, example: Tensor, path: str | os.PathLike, *, dynamic_batch: bool = True) -> str:
    """Write ``module`` (eval form) traced on ``example`` to ``path`` as ONNX; returns the exporter used.

    With ``dynamic_batch`` the first axis of input and output is symbolic (``batch``), so one file runs
    any batch size.
    """
    from ..weights import atomic_write

    data, exporter = onnx_bytes(module, example, dynamic_batch=dynamic_batch)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return exporter


def onnx_bytes(module: nn.Module, example: Tensor, *, dynamic_batch: bool = True) -> tuple[bytes, str]:
    """``module`` (eval form) as a serialised ONNX model, and the exporter that made it."""
    module = _eval_form(module)
    errors: list[str] = []
    for exporter in ("torchscript", "dynamo"):
        try:
            return _export_onnx_with(exporter, module, example, dynamic_batch), exporter
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # every exporter failure is a reason to try the next one
            errors.append(f"{exporter}: {_first_line(exc)}")
    raise ExportError(f"{_label(module)} cannot be exported to ONNX ({'; '.join(errors)})")


def _export_onnx_with(exporter: str, module: nn.Module, example: Tensor, dynamic_batch: bool) -> bytes:
    names = {"input_names": ["input"], "output_names": ["logits"]}
    with _quiet(), torch.no_grad():
        if exporter == "torchscript":
            axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
            buffer = io.BytesIO()
            torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET, dynamic_axes=axes,
                              do_constant_folding=True, **names)
            return buffer.getvalue()
        shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=OPSET,
                                    dynamic_shapes=shapes, verbose=False, **names)
        return program.model_proto.SerializeToString()


def export_torchscript(module: nn.Module, example: Tensor, path: str | os.PathLike) -> None:
    """Write ``module`` traced on ``example`` as a TorchScript archive (``torch.jit.load`` reads it)."""
    from ..weights import atomic_write

    module = _eval_form(module)
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(module, (example,), check_trace=False)
    except Exception as exc:
        raise ExportError(f"{_label(module)} cannot be traced to TorchScript ({_first_line(exc)})") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript; it still works
        atomic_write(path, lambda tmp: torch.jit.save(traced, tmp))


def export_program(module: nn.Module, example: Tensor, path: str | os.PathLike, *, dynamic_batch: bool = True) -> None:
    """Write ``module`` as a ``torch.export`` program (``.pt2``, read with ``torch.export.load``)."""
    from ..weights import atomic_write

    module = _eval_form(module)
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    try:
        with _quiet(), torch.no_grad():
            program = torch.export.export(module, (example,), dynamic_shapes=shapes)
    except Exception as exc:
        raise ExportError(f"{_label(module)} cannot be exported with torch.export ({_first_line(exc)})") from exc
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: torch.export.save wants a name ending in .pt2
            torch.export.save(program, f)

    atomic_write(path, write)


def export(module: nn.Module, example: Tensor, path: str | os.PathLike, fmt: str = "onnx", *,
           dynamic_batch: bool = True) -> None:
    """Export ``module`` to ``path`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "onnx":
        require_onnx()
        export_onnx(module, example, path, dynamic_batch=dynamic_batch)
    elif fmt == "torchscript":
        export_torchscript(module, example, path)
    elif fmt == "exported-program":
        export_program(module, example, path, dynamic_batch=dynamic_batch)
    else:
        raise CnnzooError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def load_exported(path: str | os.PathLike | bytes, fmt: str = "onnx",
                  threads: int | None = None) -> Callable[[Tensor], Tensor]:
    """A function running the exported file on a CPU float32 batch (ONNX through ONNX Runtime).

    An ONNX model (a file, or the bytes of :func:`onnx_bytes`) must pass ``onnx.checker`` first.
    """
    if fmt == "onnx":
        import onnx

        source = path if isinstance(path, bytes) else str(path)
        label = "the ONNX model" if isinstance(path, bytes) else str(path)
        try:
            onnx.checker.check_model(source, full_check=True)
        except Exception as exc:
            raise ExportError(f"{label} fails onnx.checker ({_first_line(exc)})") from exc
        session = ort_session(source, threads)
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.detach().cpu().contiguous().numpy()})[0])
    path = str(path)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            loaded = torch.jit.load(path, map_location="cpu")
    elif fmt == "exported-program":
        loaded = torch.export.load(path).module()
    else:
        raise CnnzooError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")

    def run(x: Tensor) -> Tensor:
        with torch.no_grad():
            return first_tensor(loaded(x))

    return run


def ort_session(path: str | bytes, threads: int | None = None, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session with all graph optimisations and ``threads`` (default torch's) intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle worker threads sleep instead of spinning: spinning holds the cores that the rest of the
    # program (PyTorch's own threads, the data pipeline) needs next; on the shared 2-core machine
    # MobileNet-v2 ran at 58-71 img/s without spinning and 45-52 img/s with it.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=providers or ["CPUExecutionProvider"])


def verify(module: nn.Module, run: Callable[[Tensor], Tensor], input_shape: tuple[int, ...], batch: int = 3,
           seed: int = 0) -> tuple[float, float]:
    """``(max abs diff, logits scale)`` of ``run`` against eager ``module`` on a random batch; raises above tolerance.

    The scale is the largest absolute eager logit, at least 1: the tolerance is :data:`TOLERANCE` relative
    to it, so a model with logits in the hundreds is held to the same float32 precision as one near 1.
    """
    module = _eval_form(module)
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(seed))
    device = device_of(module)
    with torch.no_grad():
        expected = module(x.to(device)).float().cpu()
    got = run(x).float().cpu()
    if got.shape != expected.shape:
        raise ExportError(f"the exported {_label(module)} gives shape {tuple(got.shape)} for a batch of {batch}, "
                          f"eager PyTorch {tuple(expected.shape)}")
    diff = (got - expected).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    if not diff <= TOLERANCE * scale:  # also catches NaN
        raise ExportError(f"the exported {_label(module)} differs from eager PyTorch by {diff:.3g} "
                          f"(tolerance {TOLERANCE * scale:.3g}); not written")
    return diff, scale


def _eval_form(module: nn.Module) -> nn.Module:
    module.eval()
    return module if isinstance(module, LogitsOnly) else LogitsOnly(module).eval()


def device_of(module: nn.Module) -> torch.device:
    for t in module.parameters():
        return t.device
    return torch.device("cpu")


def _label(module: nn.Module) -> str:
    for m in module.modules():
        name = getattr(m, "model_name", None)
        if name:
            return name
    inner = module.module if isinstance(module, LogitsOnly) else module
    return type(inner).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' tracer warnings and progress lines; errors still propagate."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), _stderr_fd_silenced(), _exportable_adaptive_pooling():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _stderr_fd_silenced():
    """File descriptor 2 to a scratch file: the TorchScript exporter's C++ side dumps a whole graph there
    when it gives up on a model, before the next exporter is tried."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedding host): nothing to silence
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _exportable_adaptive_pooling():
    """Adaptive average pooling as fixed operations while exporting.

    ONNX has no adaptive pooling; the TorchScript exporter refuses a non-divisible one (AlexNet's 6x6
    pool of a 3x3 map at small inputs, VGG's 7x7 of 1x1), and any one whose input shape it has lost.
    With the input size fixed at export, the pool is a mean (1x1), a plain average pool (sizes that
    divide), or exactly ``P_h @ x @ P_w^T`` with averaging matrices over PyTorch's windows
    ``[floor(i * n / m), ceil((i + 1) * n / m))``.
    """
    original = F.adaptive_avg_pool2d

    def pool(x: Tensor, output_size: Any) -> Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
        oh, ow = oh or h, ow or w
        if (oh, ow) == (1, 1):  # global pooling needs no shape: the exporter may have lost it (AlexNet-2012's
            return x.mean(dim=(-2, -1), keepdim=True)  # towers of chunk, LRN and cat)
        if h % oh == 0 and w % ow == 0:
            return F.avg_pool2d(x, (h // oh, w // ow))
        return _pool_matrix(oh, h, x) @ x @ _pool_matrix(ow, w, x).T

    F.adaptive_avg_pool2d = pool
    try:
        yield
    finally:
        F.adaptive_avg_pool2d = original


def _pool_matrix(out: int, size: int, like: Tensor) -> Tensor:
    m = torch.zeros(out, size, dtype=like.dtype, device=like.device)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m

