"""Tracing one forward pass on the meta device into per-layer rows.

A :class:`~torch.overrides.TorchFunctionMode` sees every torch call of the forward pass — the
functional ones too (``torch.cat`` of an inception module, the ``+`` of a residual, ``F.relu``,
``flatten``), which module hooks alone miss — while forward pre/post hooks keep the stack of
qualified module names. Tensors live on the meta device: shapes propagate, nothing is allocated,
so VGG-16 at 224 or ResNet-152 analyse in milliseconds.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode

from ..errors import CnnzooError, InputSizeError
from .ops import MAC_KINDS, Call, cost, fmt_shape, is_inplace, op_name
from .receptive_field import ReceptiveField
from .result import DTYPE_BYTES, Analysis, LayerRow, Totals


class _LayerError(InputSizeError):
    """An input that does not fit, located at a layer by the tracer."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


def _tensors(value: Any, found: list[Tensor] | None = None) -> list[Tensor]:
    """The tensors in nested lists, tuples and dicts, in order."""
    found = [] if found is None else found
    if isinstance(value, Tensor):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, Tensor):
                found.append(v)
            elif isinstance(v, (list, tuple, dict)):
                _tensors(v, found)
    elif isinstance(value, dict):
        _tensors(list(value.values()), found)
    return found


def _shortcut_table() -> dict[str, tuple[str, bool]]:
    """Function name -> (shape rule, in place) for :func:`_shortcut`."""
    table = {"batch_norm": ("norm", False), "cat": ("cat", False), "concat": ("cat", False),
             "stack": ("stack", False), "linear": ("linear", False), "mean": ("mean", False),
             "local_response_norm": ("same", False)}
    unary = "relu relu6 hardtanh leaky_relu elu selu celu gelu silu mish hardswish hardsigmoid sigmoid tanh softplus"
    for op in unary.split():
        table[op] = ("unary", False)
        table[op + "_"] = ("unary", True)
    for op in "add sub mul div".split():
        table[op] = table[f"__{op}__"] = ("binary", False)
        table[op + "_"] = table[f"__i{op}__"] = ("binary", True)
    table["__truediv__"], table["__itruediv__"] = ("binary", False), ("binary", True)
    for n in (1, 2, 3):
        table[f"adaptive_avg_pool{n}d"] = ("adaptive", False)
        table[f"conv{n}d"] = ("conv", False)
        table[f"max_pool{n}d"] = table[f"avg_pool{n}d"] = ("pool", False)
    return table


_SHORTCUTS = _shortcut_table()


def _empty(shape: Sequence[int], like: Tensor) -> Tensor:
    return torch.empty(tuple(shape), dtype=like.dtype, device="meta")


def _shortcut(func, args: tuple, kwargs: dict) -> Tensor | None:
    """The result of a shape-preserving (or trivially shaped) operation on meta tensors without running
    its meta kernel: those of batch norm, elementwise operations, concatenation and adaptive pooling are
    Python decompositions, 10-100x slower than this, and those of linear, pooling, mean, stack and
    LRN import sympy and torch._dynamo on first use (about 2 s of a `cnnzoo summary`). Anything
    unusual goes to the real kernel, which also raises the errors."""
    rule = _SHORTCUTS.get(getattr(func, "__name__", ""))
    if rule is None or not args:
        return None
    kind, inplace = rule
    x = args[0]
    if kind in ("cat", "stack"):
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        return _cat(x, dim, kwargs) if kind == "cat" else _stack(x, dim, kwargs)
    if not isinstance(x, Tensor) or not x.is_meta or not x.is_floating_point():
        return None
    if kind == "norm":
        stats = args[1] if len(args) > 1 else kwargs.get("running_mean")
        if x.dim() < 2 or isinstance(stats, Tensor) and stats.numel() != x.shape[1]:
            return None
        return _empty(x.shape, x)
    if kind == "adaptive":
        return _adaptive(x, args[1] if len(args) > 1 else kwargs.get("output_size"), int(func.__name__[-2]))
    if kind == "conv":
        return _conv(x, args, kwargs)
    if kind == "linear":
        return _linear(x, args, kwargs)
    if kind == "pool":
        return _pool(x, func.__name__, args, kwargs)
    if kind == "mean":
        return _mean(x, args, kwargs)
    if kind == "same":
        return _empty(x.shape, x) if x.dim() >= 3 and len(args) <= 5 and not kwargs.keys() - {"alpha", "beta", "k"} else None
    if len(args) != (1 if kind == "unary" else 2) or any(isinstance(v, Tensor) for v in kwargs.values()):
        return None
    if kind == "binary":
        other = args[1]
        if isinstance(other, Tensor):
            if other.shape != x.shape or other.dtype != x.dtype or not other.is_meta:
                return None
        elif not isinstance(other, (int, float)) or isinstance(other, bool):
            return None
    return x if inplace or kwargs.get("inplace") else _empty(x.shape, x)


def _cat(tensors: Any, dim: Any, kwargs: dict) -> Tensor | None:
    if kwargs.keys() - {"dim"} or not isinstance(tensors, (list, tuple)) or not tensors or not isinstance(dim, int):
        return None
    first = tensors[0]
    if not all(isinstance(t, Tensor) and t.is_meta and t.dtype == first.dtype and t.dim() == first.dim()
               for t in tensors) or first.dim() == 0:
        return None
    dim = dim % first.dim()
    shape = list(first.shape)
    for t in tensors[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != dim):
            return None
        shape[dim] += t.shape[dim]
    return _empty(shape, first)


def _stack(tensors: Any, dim: Any, kwargs: dict) -> Tensor | None:
    if kwargs.keys() - {"dim"} or not isinstance(tensors, (list, tuple)) or not tensors or not isinstance(dim, int):
        return None
    first = tensors[0]
    if not all(isinstance(t, Tensor) and t.is_meta and t.dtype == first.dtype and t.shape == first.shape
               for t in tensors) or not -first.dim() - 1 <= dim <= first.dim():
        return None
    shape = list(first.shape)
    shape.insert(dim % (first.dim() + 1), len(tensors))
    return _empty(shape, first)


def _linear(x: Tensor, args: tuple, kwargs: dict) -> Tensor | None:
    bound = dict(zip(("input", "weight", "bias"), args)) | kwargs
    w, bias = bound.get("weight"), bound.get("bias")
    if bound.keys() - {"input", "weight", "bias"} or not isinstance(w, Tensor) or not w.is_meta or w.dim() != 2:
        return None
    if x.dim() < 1 or x.shape[-1] != w.shape[1] or w.dtype != x.dtype:
        return None
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (w.shape[0],)):
        return None
    return _empty((*x.shape[:-1], w.shape[0]), x)


_POOL_ARGS = {"max": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
              "avg": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                      "divisor_override")}


def _pool(x: Tensor, name: str, args: tuple, kwargs: dict) -> Tensor | None:
    """Max and average pooling's output size, as ATen's ``pooling_output_shape`` computes it."""
    kind, n = name[:3], int(name[-2])
    names = _POOL_ARGS[kind]
    if kwargs.keys() - set(names) or len(args) > len(names):
        return None
    bound = dict(zip(names, args)) | kwargs
    if bound.get("return_indices") or x.dim() not in (n + 1, n + 2):
        return None
    kernel = bound.get("kernel_size")
    stride = bound.get("stride") or kernel  # None or () means the kernel's size
    geometry = [kernel, stride, bound.get("padding", 0), bound.get("dilation", 1)]
    if not all(isinstance(v, int) or isinstance(v, (tuple, list)) and len(v) == n and
               all(isinstance(e, int) for e in v) for v in geometry):
        return None
    k, st, p, d = ((v,) * n if isinstance(v, int) else tuple(v) for v in geometry)
    ceil = bool(bound.get("ceil_mode", False))
    out = []
    for size, ki, si, pi, di in zip(x.shape[-n:], k, st, p, d):
        if ki < 1 or si < 1 or di < 1 or pi < 0 or pi > ki // 2:
            return None  # the kernel raises its own error
        span = size + 2 * pi - di * (ki - 1) - 1 + (si - 1 if ceil else 0)
        if span < 0:
            return None
        o = span // si + 1
        if ceil and (o - 1) * si >= size + pi:
            o -= 1
        if o < 1:
            return None
        out.append(o)
    return _empty((*x.shape[:-n], *out), x)


def _mean(x: Tensor, args: tuple, kwargs: dict) -> Tensor | None:
    bound = dict(zip(("input", "dim", "keepdim"), args)) | kwargs
    dim, keep = bound.get("dim"), bool(bound.get("keepdim", False))
    if bound.keys() - {"input", "dim", "keepdim"} or x.dim() == 0:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim) if isinstance(dim, (tuple, list)) else None
    if not dims or not all(isinstance(d, int) and -x.dim() <= d < x.dim() for d in dims):
        return None
    dims = {d % x.dim() for d in dims}
    shape = [1 if i in dims else s for i, s in enumerate(x.shape) if keep or i not in dims]
    return _empty(shape, x)


def _conv(x: Tensor, args: tuple, kwargs: dict) -> Tensor | None:
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    if kwargs.keys() - set(names):
        return None
    bound = dict(zip(names, args)) | kwargs
    w, bias = bound.get("weight"), bound.get("bias")
    n = x.dim() - 2
    if not isinstance(w, Tensor) or not w.is_meta or w.dim() != n + 2 or n < 1 or w.dtype != x.dtype:
        return None
    groups = bound.get("groups", 1)
    geometry = [bound.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))]
    if any(isinstance(v, str) for v in geometry) or not isinstance(groups, int):
        return None
    stride, padding, dilation = ((v,) * n if isinstance(v, int) else tuple(v) for v in geometry)
    if not (len(stride) == len(padding) == len(dilation) == n) or x.shape[1] != w.shape[1] * groups:
        return None
    if w.shape[0] % groups or bias is not None and (not isinstance(bias, Tensor) or bias.shape != (w.shape[0],)):
        return None
    out = []
    for size, k, s, p, d in zip(x.shape[2:], w.shape[2:], stride, padding, dilation):
        span = size + 2 * p - d * (k - 1) - 1
        if span < 0 or s < 1:
            return None  # the kernel raises its own error
        out.append(span // s + 1)
    return _empty((x.shape[0], w.shape[0], *out), x)


def _adaptive(x: Tensor, output_size: Any, n: int) -> Tensor | None:
    if x.dim() not in (n + 1, n + 2) or min(x.shape[-n:]) < 1:
        return None
    sizes = (output_size,) * n if isinstance(output_size, int) else tuple(output_size or ())
    if len(sizes) != n:
        return None
    sizes = tuple(x.shape[-n + i] if s is None else s for i, s in enumerate(sizes))
    if not all(isinstance(s, int) and s >= 1 for s in sizes):
        return None
    return _empty((*x.shape[:-n], *sizes), x)


_REDUCTIONS = frozenset("sum mean amax amin max min std var prod logsumexp argmax argmin".split())


def _batch_axis(op: str, args: tuple, kwargs: dict, x: Tensor, axis: int | None, out: Tensor) -> int | None:
    """Where the batch axis of ``x`` (at ``axis``) lies in ``out``: operations that insert, remove or move
    axes move it (``torch.stack(ys)`` puts it second, FractalNet's join); None once reduced away."""
    if axis is None:
        return None

    def arg(index: int, name: str) -> Any:
        return kwargs[name] if name in kwargs else args[index] if len(args) > index else None

    if op in ("stack", "unsqueeze"):
        dim = arg(1, "dim")
        dim = 0 if dim is None and op == "stack" else dim
        return axis + (dim % out.dim() <= axis) if isinstance(dim, int) and out.dim() == x.dim() + 1 else 0
    if op in _REDUCTIONS or op == "squeeze":
        if out.dim() == x.dim():
            return axis
        dim = arg(1, "dim")
        dims = (dim,) if isinstance(dim, int) else tuple(dim) if isinstance(dim, (tuple, list)) else ()
        dims = {d % x.dim() for d in dims if isinstance(d, int)}
        if not dims or axis in dims or x.dim() - len(dims) != out.dim():
            return None  # reduced over every axis, or over the batch's
        return axis - sum(d < axis for d in dims)
    if op in ("transpose", "swapaxes", "swapdims") and x.dim() == out.dim():
        a, b = arg(1, "dim0"), arg(2, "dim1")
        if isinstance(a, int) and isinstance(b, int):
            a, b = a % x.dim(), b % x.dim()
            return b if axis == a else a if axis == b else axis
    if op == "permute" and x.dim() == out.dim():
        dims = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:] or kwargs.get("dims")
        if dims and all(isinstance(d, int) for d in dims):
            return [d % x.dim() for d in dims].index(axis)
    return axis if axis < out.dim() else 0


def _per_sample(shape: Sequence[int], axis: int | None) -> tuple[int, ...]:
    """A traced shape without its batch axis (all of it once the batch was reduced away)."""
    return tuple(s for i, s in enumerate(shape) if i != axis)


class _Tracer(TorchFunctionMode):
    """Records every operation that consumes the input's descendants or a parameter into a row."""

    def __init__(self, model: nn.Module, label: str, input_size: tuple[int, ...], bytes_per_element: int,
                 training: bool) -> None:
        super().__init__()
        self.model, self.label, self.input_size = model, label, input_size
        self.bpe, self.training = bytes_per_element, training
        self.modules = list(model.named_modules())
        self.names = {id(m): name for name, m in self.modules}
        self.leaves = {id(m) for _, m in self.modules if not m._modules}
        self.named_weights = [*model.named_parameters(), *model.named_buffers()]
        self.weights: dict[int, tuple[str, bool]] = {}  # id -> ("param" | "buffer", trainable)
        for _, t in self.named_weights:
            self.weights[id(t)] = ("param", t.requires_grad) if isinstance(t, nn.Parameter) else ("buffer", False)
        self.claimed: set[int] = set()
        # id -> (tensor, field); holding the tensor keeps its id from being reused during the trace
        self.fields: dict[int, tuple[Tensor, ReceptiveField | None]] = {}
        # id -> the row that produced the tensor (absent: the input); `fields` keeps those ids valid
        self.producers: dict[int, LayerRow] = {}
        self.batch_axes: dict[int, int | None] = {}  # id -> where the tensor's batch axis is (absent: 0)
        self.sources: dict[int, list[LayerRow | None]] = {}  # id(row) -> producers of its inputs (None: the input)
        self.stack: list[tuple[str, nn.Module, int]] = []
        self.rows: list[LayerRow] = []
        self.called: set[str] = set()

    # module hooks (global ones: two registrations instead of two per module) ------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is not None:  # modules built inside forward (a sliced Sequential) are not ours
            self.stack.append((name, module, len(self.rows)))
            self.called.add(name)

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if id(module) not in self.names or not self.stack or self.stack[-1][1] is not module:
            return
        _, mod, start = self.stack.pop()
        if id(mod) in self.leaves and len(self.rows) - start == 1:
            self.rows[start].leaf = True

    def _where(self) -> tuple[str, nn.Module]:
        if self.stack:
            name, module, _ = self.stack[-1]
            return name, module
        return "", self.model

    # the mode --------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            out = _shortcut(func, args, kwargs)
            if out is None:
                out = func(*args, **kwargs)
        except (RuntimeError, ValueError, IndexError) as exc:
            error = exc if isinstance(exc, CnnzooError) else self._failure(func, args, kwargs, exc)
            if error is exc:
                raise
            raise error from exc
        self._record(func, args, kwargs, out)
        return out

    def _record(self, func, args: tuple, kwargs: dict, out: Any) -> None:
        outs = _tensors(out)
        if not outs:
            return
        inputs = _tensors((args, kwargs))
        acts = [t for t in inputs if id(t) in self.fields]
        weights = [t for t in inputs if id(t) in self.weights]
        if not acts and not weights:
            return
        op = op_name(func)
        fields = [self.fields[id(t)][1] for t in acts]
        if op in ("__get__", "detach", "requires_grad_"):  # aliases such as x.data: follow silently
            for o in outs:
                self.fields[id(o)] = (o, fields[0] if fields else None)
                self.batch_axes[id(o)] = self.batch_axes.get(id(acts[0]), 0) if acts else 0
                if acts and id(acts[0]) in self.producers:
                    self.producers[id(o)] = self.producers[id(acts[0])]
            return
        c = cost(Call(op, args, kwargs, outs, acts, fields))
        fresh = [o for o in outs if not any(o is t for t in inputs)]
        if not fresh and not c.macs and not c.flops and not weights:
            return  # an identity such as dropout in eval or contiguous() of a contiguous tensor
        name, module = self._where()
        if acts and any(o.numel() == 0 for o in outs) and all(t.numel() for t in acts):
            raise self._vanished(name, module, op, c, acts[0], outs[0])
        allocated = [o for o in fresh if not o._is_view()]
        axis = _batch_axis(op, args, kwargs, acts[0], self.batch_axes.get(id(acts[0]), 0), outs[0]) if acts else None
        row = LayerRow(
            index=len(self.rows) + 1, name=name, module_type=type(module).__name__, op=op, kind=c.kind,
            output=_per_sample(outs[0].shape, axis),
            window=c.window, detail=c.detail, macs=c.macs, flops=2 * c.macs + c.flops, counted=c.counted,
            out_elements=sum(o.numel() for o in outs), mem_elements=sum(o.numel() for o in allocated),
            mem_bytes=sum(o.numel() * self._itemsize(o) for o in allocated),
            field=c.field, note="in-place" if is_inplace(op, kwargs) else ("view" if fresh and not allocated else ""),
        )
        self.sources[id(row)] = [self.producers.get(id(t)) for t in acts]
        for t in weights:
            if id(t) not in self.claimed:
                self.claimed.add(id(t))
                self._add_weight(row, t)
        self.rows.append(row)
        for o in outs:
            self.fields[id(o)] = (o, c.field)
            self.producers[id(o)] = row
            self.batch_axes[id(o)] = axis if o is outs[0] or o.dim() == outs[0].dim() else 0

    def _itemsize(self, t: Tensor) -> int:
        return self.bpe if t.is_floating_point() else t.element_size()

    def _add_weight(self, row: LayerRow, t: Tensor) -> None:
        kind, trainable = self.weights[id(t)]
        if kind == "buffer":
            row.buffers += t.numel()
        elif trainable:
            row.params_trainable += t.numel()
        else:
            row.params_frozen += t.numel()

    # errors ----------------------------------------------------------------------------------------
    def _layer(self, name: str, module: nn.Module, op: str, window_text: str = "") -> str:
        what = type(module).__name__ if id(module) in self.leaves else op
        return f"layer {name or '(model)'} ({what}{' ' + window_text if window_text else ''})"

    def _vanished(self, name: str, module: nn.Module, op: str, c, x: Tensor, out: Tensor) -> _LayerError:
        where = f"the volume vanishes at {self._layer(name, module, op, c.window.describe() if c.window else '')}: " \
                f"{fmt_shape(x.shape[1:])} in, {fmt_shape(out.shape[1:])} out"
        return _LayerError(f"{self.label}: input {fmt_shape(self.input_size)} is too small; {where}", where)

    def _failure(self, func, args: tuple, kwargs: dict, exc: Exception) -> Exception:
        inputs = _tensors((args, kwargs))
        acts = [t for t in inputs if id(t) in self.fields]
        if not acts:
            return exc
        name, module = self._where()
        op = op_name(func)
        x = acts[0]
        vol = fmt_shape(x.shape[1:])
        layer = self._layer(name, module, op)
        weight = args[1] if len(args) > 1 and isinstance(args[1], Tensor) else kwargs.get("weight")
        if op.startswith("conv") and isinstance(weight, Tensor) and x.dim() == weight.dim():
            groups = int(args[6] if len(args) > 6 else kwargs.get("groups", 1))
            expected = weight.shape[1] * groups if "transpose" not in op else weight.shape[0]
            if x.shape[1] != expected:
                where = f"{layer} expects {expected} channels but receives a {vol} volume"
                return _LayerError(f"{self.label}: input {fmt_shape(self.input_size)} does not fit; {where}", where)
        if op == "linear" and isinstance(weight, Tensor) and x.shape[-1] != weight.shape[-1]:
            where = f"{layer} expects {weight.shape[-1]} features but receives {x.shape[-1]} (a {vol} volume)"
            return _LayerError(f"{self.label}: input {fmt_shape(self.input_size)} does not fit; {where}", where)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shapeish = any(w in text.lower() for w in ("size", "shape", "channel", "dimension", "kernel", "multiplied"))
        if not shapeish:
            exc.add_note(f"while analysing {self.label}: {op} at {layer} on a {vol} volume")
            return exc
        if "too small" in text or "can't be greater" in text:
            where = f"the volume vanishes at {layer}: {vol} in ({text})"
        else:
            where = f"{layer} cannot take a {vol} volume ({text})"
        return _LayerError(f"{self.label}: input {fmt_shape(self.input_size)} does not fit; {where}", where)

    # results ---------------------------------------------------------------------------------------
    def finish(self, x: Tensor, output: Any) -> tuple[list[LayerRow], Totals]:
        rows = self.rows
        first = LayerRow(index=0, name="input", module_type="Input", op="", kind="input",
                         output=tuple(x.shape[1:]), out_elements=x.numel(), mem_elements=x.numel(),
                         mem_bytes=x.numel() * self._itemsize(x), field=ReceptiveField.pixel(x.dim() - 2))
        rows.insert(0, first)
        self._place_unclaimed(rows, {name: type(m).__name__ for name, m in self.modules})
        for i, r in enumerate(rows):
            r.index = i
        for r in rows:
            r.inputs = tuple(dict.fromkeys(0 if s is None else s.index for s in self.sources.get(id(r), ())))
        spatial = [r for r in rows if r.field is not None and not r.field.whole and r.field.spans]
        field = max(reversed(spatial), key=lambda r: math.prod(r.field.size)).field if spatial else None
        macs = sum(r.macs for r in rows if r.kind in MAC_KINDS)
        flops = sum(r.flops for r in rows)
        outs = _tensors(output)
        totals = Totals(
            params=sum(r.params for r in rows), trainable=sum(r.params_trainable for r in rows),
            frozen=sum(r.params_frozen for r in rows), buffers=sum(r.buffers for r in rows),
            macs=macs, flops=flops, other_flops=flops - 2 * macs,
            activation_elements=sum(r.mem_elements for r in rows), activation_bytes=sum(r.mem_bytes for r in rows),
            field=field, output=_per_sample(outs[0].shape, self.batch_axes.get(id(outs[0]), 0)) if outs else None,
            uncounted_ops=tuple(sorted({r.op for r in rows if not r.counted})),
        )
        return rows, totals

    def _place_unclaimed(self, rows: list[LayerRow], module_names: dict[str, str]) -> None:
        """Parameters no operation consumed go to their module's first row, or to a row of their own
        for a module the forward pass never called (GoogLeNet's auxiliary heads in eval mode)."""
        first_row = {}
        for r in rows:
            first_row.setdefault(r.name, r)
        extra: dict[str, LayerRow] = {}
        for qual, t in self.named_weights:
            if id(t) in self.claimed:
                continue
            self.claimed.add(id(t))
            owner = qual.rpartition(".")[0]
            row = first_row.get(owner) if owner else None
            if row is None:
                row = extra.get(owner)
            if row is None:
                row = extra[owner] = LayerRow(
                    index=0, name=owner, module_type=module_names.get(owner, ""), op="", kind="unused",
                    leaf=True, note="not called" if owner not in self.called else "unused in forward")
            self._add_weight(row, t)
        rows.extend(extra.values())


def parse_input_size(text: str) -> tuple[int, ...]:
    """``"3x224x224"`` -> ``(3, 224, 224)``."""
    try:
        size = tuple(int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise CnnzooError(f"input size {text!r} is not of the form CxHxW, e.g. 3x224x224") from None
    if len(size) < 2 or min(size) < 1:
        raise CnnzooError(f"input size {text!r} is not of the form CxHxW, e.g. 3x224x224")
    return size


def _to_meta(module: nn.Module) -> nn.Module:
    """A copy of ``module`` on the meta device; parameters are replaced before copying, never copied."""
    memo: dict[int, Any] = {}
    for p in module.parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):  # lazy modules materialise it on meta
            memo[id(p)] = nn.parameter.UninitializedParameter(p.requires_grad, device="meta", dtype=p.dtype)
        else:
            memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in module.buffers():
        if isinstance(b, nn.parameter.UninitializedBuffer):
            memo[id(b)] = nn.parameter.UninitializedBuffer(b.requires_grad, device="meta", dtype=b.dtype)
        else:
            memo[id(b)] = torch.empty_like(b, device="meta")
    meta = copy.deepcopy(module, memo)
    for m in meta.modules():  # tensors kept as plain attributes
        for key, value in list(vars(m).items()):
            if isinstance(value, Tensor) and value.device.type != "meta":
                setattr(m, key, torch.empty_like(value, device="meta"))
    return meta


class _SkipInit(TorchFunctionMode):
    """Skips value-filling in-place operations on meta tensors while a model is built.

    A meta tensor has no values, so weight initialisation only costs time: on meta, ``normal_`` and
    ``uniform_`` run as Python decompositions and made up most of building a model. Every in-place
    function (``nn.init.*_``, ``Tensor.normal_``, ``fill_``, ...) of a meta tensor returns it unchanged,
    except those that change its shape or flags.
    """

    KEEP = frozenset("requires_grad_ resize_ resize_as_ set_ squeeze_ unsqueeze_ t_ transpose_ swapdims_ "
                     "swapaxes_ as_strided_ share_memory_".split())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and name not in self.KEEP:
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, Tensor) and target.device.type == "meta":
                return target
        return func(*args, **kwargs)


def _on_meta(module: nn.Module) -> bool:
    return all(t.device.type == "meta" for t in [*module.parameters(), *module.buffers()])


def _resolve(model: nn.Module | str, input_size: Sequence[int] | None) -> tuple[nn.Module, str, tuple[int, ...], bool]:
    from ..registry import create_model, model_info

    if isinstance(model, str):
        info = model_info(model)
        with torch.device("meta"), _SkipInit():
            module = create_model(model)
        return module, model, tuple(input_size or info.input_size), True
    if not isinstance(model, nn.Module):
        raise TypeError(f"analyze takes an nn.Module or a registered model name, got {type(model).__name__}")
    label = getattr(model, "model_name", None) or type(model).__name__
    if input_size is None:
        if getattr(model, "trained_input_shape", None):  # a model loaded from a training checkpoint
            input_size = model.trained_input_shape
        elif getattr(model, "model_name", None):  # the registry's input, with the channels the model was built for
            input_size = model_info(model.model_name).input_size
            input_size = (getattr(model, "in_chans", input_size[0]), *input_size[1:])
        else:
            raise CnnzooError(f"{label} is not a registered model: give input_size=(C, H, W)")
    if _on_meta(model):
        return model, label, tuple(input_size), False
    return _to_meta(model), label, tuple(input_size), True


def analyze(model: nn.Module | str, input_size: Sequence[int] | None = None, *, dtype: str = "fp32",
            training: bool = False) -> Analysis:
    """The cs231n per-layer table of ``model`` for one sample of ``input_size`` (C, H, W).

    ``model`` is any ``nn.Module`` (copied to the meta device; its weights are not copied) or a
    registered name (built on the meta device, at its default input size unless one is given). Every
    operation of one forward pass in eval mode (``training=True`` for the training graph) becomes a
    row: output volume, kernel, parameters (trainable/frozen) and buffers, MACs and FLOPs, newly
    allocated activation memory at ``dtype``, and receptive field. Rows add up to
    :attr:`Analysis.totals`; the counting rules are :data:`cnnzoo.analysis.CONVENTIONS`.

    An input that does not fit raises :class:`~cnnzoo.errors.InputSizeError`, one line naming the layer
    where the volume vanished or the channels mismatched.
    """
    if dtype not in DTYPE_BYTES:
        raise CnnzooError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    module, label, size, owned = _resolve(model, input_size)
    try:
        return _trace(module, label, size, dtype, training)
    except _LayerError:
        raise
    except InputSizeError as exc:
        # The model refused the input up front (its check_input); run again without the check to name the layer.
        if not hasattr(module, "check_input"):
            raise
        module.check_input = lambda x: None
        try:
            _trace(module, label, size, dtype, training)
        except _LayerError as located:
            raise InputSizeError(f"{exc}; {located.where}") from None
        finally:
            del module.check_input
        raise


def _trace(module: nn.Module, label: str, size: tuple[int, ...], dtype: str, training: bool) -> Analysis:
    param = next((p for p in module.parameters() if p.is_floating_point()), None)
    x = torch.empty((1, *size), device="meta", dtype=param.dtype if param is not None else torch.float32)
    tracer = _Tracer(module, label, size, DTYPE_BYTES[dtype], training)
    tracer.fields[id(x)] = (x, ReceptiveField.pixel(len(size) - 1))
    modes = [(m, m.training) for _, m in tracer.modules]
    handles = [register_module_forward_pre_hook(tracer.pre_hook), register_module_forward_hook(tracer.post_hook)]
    try:
        for m, _ in modes:
            m.training = training
        with torch.no_grad(), tracer:
            output = module(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    rows, totals = tracer.finish(x, output)
    info = getattr(module, "feature_info", None) or ()
    stages = tuple(getattr(f, "module", "") for f in info)
    return Analysis(model=label, input_size=size, dtype=dtype, rows=rows, totals=totals, training=training,
                    module_types={name: type(m).__name__ for name, m in tracer.modules}, stages=stages,
                    stage_names=tuple(getattr(f, "name", "") for f in info),
                    figure_names={name: m.figure_name for name, m in tracer.modules
                                  if isinstance(getattr(m, "figure_name", None), str)})
