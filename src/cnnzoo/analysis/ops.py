"""What each traced operation costs and how it moves the receptive field.

Every rule below is stated in :data:`CONVENTIONS` (shown by ``cnnzoo summary --help``, written into the
JSON output and the docs). Counts are per sample. "MACs" are multiply-accumulates of convolutions,
linear layers and matrix products only (the figure torchvision's metadata and the papers report);
every other operation is counted in FLOPs, and a row's FLOPs are ``2·MACs`` plus those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence

from torch import Tensor

from .receptive_field import ReceptiveField, Span, union

CONVENTIONS: dict[str, str] = {
    "conv": "Cout·Hout·Wout·(Cin/groups)·kh·kw MACs (transposed: Cin·Hin·Win·(Cout/groups)·kh·kw); "
            "bias additions are not counted, as in torchvision's metadata, fvcore and the papers",
    "linear": "in_features·out_features MACs per output vector; bias not counted",
    "matmul": "(elements of the product)·(contracted length) MACs (matmul, mm, bmm, addmm, baddbmm; "
              "einsum of two operands: the product of all index sizes); attention: its projections, "
              "scores and weighted values",
    "flops": "FLOPs = 2·MACs for conv/linear/matmul, plus the rules below for every other operation",
    "batch_norm": "2 FLOPs per element in eval (a folded scale and shift); 5 in training (4 without affine)",
    "layer/group/instance_norm": "5 FLOPs per element (4 without affine), statistics computed on the fly",
    "local_response_norm": "size + 4 FLOPs per element (square, window sum, scale, power, divide)",
    "pooling": "kh·kw FLOPs per output element (a comparison or an addition per window element); "
               "adaptive pooling: the sum of its bins' sizes, i.e. one per input element when they tile",
    "activations": "1 FLOP per output element (ReLU, sigmoid, tanh, GELU, ... each count as one); "
                   "softmax and log_softmax 3",
    "elementwise": "1 FLOP per output element (add of a residual, mul, div, comparisons, masked_fill, ...)",
    "reductions": "1 FLOP per input element (mean, sum, amax, ...)",
    "concatenation, views, padding, copies, new tensors, dropout in eval":
        "0 FLOPs; a concatenation, copy or new tensor allocates its output",
    "resampling": "nearest 0; (bi/tri)linear 2·2^d and bicubic 2·4^d FLOPs per output element",
    "other": "operations without a rule count 0 and are flagged uncounted",
    "memory": "activation memory = the input plus every newly allocated output (views and in-place "
              "results allocate nothing), in elements and in bytes at the chosen dtype",
    "receptive field": "size, jump (effective stride) and start (centre of the first output's field) per "
                       "spatial axis; padding included; branches take the union (the largest); global "
                       "pooling, flatten and linear layers see the whole input ('all'); a map gated by a "
                       "globally pooled branch (squeeze-and-excitation) keeps its local field, marked '*'",
}

MAC_KINDS = frozenset({"conv", "linear", "matmul"})


@dataclass(frozen=True)
class Window:
    """The geometry of a sliding-window operation, per spatial axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1

    def describe(self) -> str:
        def fmt(t: tuple[int, ...]) -> str:
            return str(t[0]) if len(set(t)) == 1 else "x".join(map(str, t))

        text = "x".join(map(str, self.kernel)) + f" s{fmt(self.stride)}"
        if any(self.padding):
            text += f" p{fmt(self.padding)}"
        if any(d != 1 for d in self.dilation):
            text += f" d{fmt(self.dilation)}"
        if self.groups != 1:
            text += f" g{self.groups}"
        return text


@dataclass
class Call:
    """One traced call: its arguments, its result and the receptive fields of its activation inputs."""

    op: str
    args: tuple
    kwargs: dict
    outs: list[Tensor]
    acts: list[Tensor]
    fields: list[ReceptiveField | None]

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if len(self.args) > index else default

    @property
    def x(self) -> Any:
        """The first argument: the input of most operations."""
        return self.args[0] if self.args else self.kwargs.get("input")

    @property
    def out(self) -> Tensor:
        return self.outs[0]

    def x_field(self) -> ReceptiveField | None:
        for t, f in zip(self.acts, self.fields):
            if t is self.x:
                return f
        return None


@dataclass
class Cost:
    """What a rule found: the row's kind, its MACs and other FLOPs, window and output field."""

    kind: str
    macs: int = 0
    flops: int = 0  # FLOPs other than 2·MACs
    counted: bool = True
    window: Window | None = None
    field: ReceptiveField | None = None
    detail: str = ""


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, (int, float)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _spatial(t: Tensor, n: int) -> tuple[int, ...]:
    return tuple(t.shape[-n:]) if n else ()


def generic_field(call: Call) -> ReceptiveField | None:
    """Shape-driven rule: a tensor that keeps its inputs' trailing spatial sizes keeps their fields
    (union over inputs); one that loses them has seen the whole map."""
    fields = []
    out = call.outs[0] if call.outs else None
    for t, f in zip(call.acts, call.fields):
        if f is None:
            continue
        n = len(f.spans)
        keeps = out is not None and out.dim() >= n and t.dim() >= n and _spatial(out, n) == _spatial(t, n)
        fields.append(f if f.whole or keeps else f.collapse(_spatial(t, n)))
    return union(fields)


def _whole(call: Call) -> ReceptiveField | None:
    fields = [f.collapse(_spatial(t, len(f.spans))) for t, f in zip(call.acts, call.fields) if f is not None]
    return union(fields)


def _windowed(call: Call, window: Window) -> ReceptiveField | None:
    f = call.x_field()
    if f is None or f.whole:
        return f
    n = len(window.kernel)
    if len(f.spans) != n:
        return generic_field(call)
    return f.window(window.kernel, window.stride, window.padding, window.dilation)


def conv(call: Call) -> Cost:
    w = call.arg(1, "weight")
    n = w.dim() - 2
    kernel = tuple(w.shape[2:])
    dilation = _tuple(call.arg(5, "dilation", 1), n)
    padding = call.arg(4, "padding", 0)
    if isinstance(padding, str):
        padding = (0,) * n if padding == "valid" else tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))
    win = Window(kernel, _tuple(call.arg(3, "stride", 1), n), _tuple(padding, n), dilation,
                 int(call.arg(6, "groups", 1)))
    return Cost("conv", macs=call.out.numel() * math.prod(w.shape[1:]), window=win, field=_windowed(call, win))


def conv_transpose(call: Call) -> Cost:
    w = call.arg(1, "weight")
    n = w.dim() - 2
    kernel = tuple(w.shape[2:])
    stride = _tuple(call.arg(3, "stride", 1), n)
    padding = _tuple(call.arg(4, "padding", 0), n)
    dilation = _tuple(call.arg(7, "dilation", 1), n)
    win = Window(kernel, stride, padding, dilation, int(call.arg(6, "groups", 1)))
    f = call.x_field()
    if f is not None and not f.whole and len(f.spans) == n:
        spans = []
        for s, k, st, p, d in zip(f.spans, kernel, stride, padding, dilation):
            first, last = -((-(p - (k - 1) * d)) // st), p // st  # inputs that reach output position 0
            spans.append(Span(s.lo + first * s.jump, s.hi + last * s.jump, Fraction(s.jump) / st))
        f = ReceptiveField(tuple(spans))
    return Cost("conv", macs=call.x.numel() * math.prod(w.shape[1:]), window=win, field=f)


def linear(call: Call) -> Cost:
    w = call.arg(1, "weight")
    return Cost("linear", macs=call.out.numel() * w.shape[-1], field=_whole(call))


def matmul(call: Call) -> Cost:
    first = call.args[1] if call.op in ("addmm", "baddbmm", "addmm_", "baddbmm_") else call.args[0]
    k = first.shape[-1] if first.dim() else 1
    return Cost("matmul", macs=call.out.numel() * k, field=generic_field(call))


def einsum(call: Call) -> Cost:
    """Two operands: the product of the sizes of all their index letters; one: a permutation or a sum."""
    equation = call.args[0] if call.args and isinstance(call.args[0], str) else None
    operands = [t for t in call.args[1:] if isinstance(t, Tensor)] or [
        t for a in call.args[1:2] if isinstance(a, (list, tuple)) for t in a]
    if equation is None or "..." in equation or "->" not in equation or len(operands) not in (1, 2):
        return Cost("other", counted=False, field=generic_field(call))
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    sizes = {}
    for letters, t in zip(inputs, operands):
        sizes.update(zip(letters, t.shape))
    if len(operands) == 1:
        return Cost("reduce", flops=operands[0].numel() if call.out.numel() < operands[0].numel() else 0,
                    field=generic_field(call))
    return Cost("matmul", macs=math.prod(sizes.values()), field=generic_field(call))


def attention(call: Call) -> Cost:
    """``F.multi_head_attention_forward`` (queries L x N x E, keys S x N x E): the q, k, v and output
    projections, ``(2L + 2S)·E²``, plus scores and their weighted sum, ``2·L·S·E``."""
    q, k = call.arg(0, "query"), call.arg(1, "key")
    n = q.shape[1] if q.dim() == 3 else 1
    length, source, width = q.shape[0], k.shape[0], q.shape[-1]
    macs = n * ((2 * length + 2 * source) * width * width + 2 * length * source * width)
    return Cost("matmul", macs=macs, field=generic_field(call))


def sdpa(call: Call) -> Cost:
    """``F.scaled_dot_product_attention``: scores ``L·S·E`` and weighted values ``L·S·Ev`` per batch and head."""
    q, k, v = call.arg(0, "query"), call.arg(1, "key"), call.arg(2, "value")
    return Cost("matmul", macs=math.prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1]),
                field=generic_field(call))


def batch_norm(call: Call) -> Cost:
    training = bool(call.arg(5, "training", False))
    affine = call.arg(3, "weight") is not None
    per = (5 if affine else 4) if training else 2
    return Cost("norm", flops=per * call.out.numel(), field=generic_field(call))


def stat_norm(call: Call) -> Cost:
    affine = call.arg(3 if call.op == "instance_norm" else 2, "weight") is not None
    return Cost("norm", flops=(5 if affine else 4) * call.out.numel(), field=generic_field(call))


def lrn(call: Call) -> Cost:
    size = int(call.arg(1, "size", 5))
    return Cost("norm", flops=(size + 4) * call.out.numel(), field=generic_field(call))


def _pool_window(call: Call, n: int, dilation_index: int | None) -> Window:
    kernel = _tuple(call.arg(1, "kernel_size"), n)
    stride = call.arg(2, "stride")
    stride = _tuple(stride, n) if stride is not None and stride != [] and stride != () else kernel
    dilation = _tuple(call.arg(dilation_index, "dilation", 1), n) if dilation_index else (1,) * n
    return Window(kernel, stride, _tuple(call.arg(3, "padding", 0), n), dilation)


def _ndim(op: str) -> int:
    for n in (1, 2, 3):
        if f"{n}d" in op:
            return n
    return 2


def max_pool(call: Call) -> Cost:
    win = _pool_window(call, _ndim(call.op), 4)
    return Cost("pool", flops=call.out.numel() * math.prod(win.kernel), window=win, field=_windowed(call, win))


def avg_pool(call: Call) -> Cost:
    win = _pool_window(call, _ndim(call.op), None)
    return Cost("pool", flops=call.out.numel() * math.prod(win.kernel), window=win, field=_windowed(call, win))


def lp_pool(call: Call) -> Cost:
    n = _ndim(call.op)
    kernel = _tuple(call.arg(2, "kernel_size"), n)
    stride = call.arg(3, "stride")
    win = Window(kernel, kernel if stride is None else _tuple(stride, n), (0,) * n, (1,) * n)
    return Cost("pool", flops=2 * call.out.numel() * math.prod(kernel), window=win, field=_windowed(call, win))


def adaptive_pool(call: Call) -> Cost:
    n = _ndim(call.op)
    ins = _spatial(call.x, n)
    outs = _spatial(call.out, n)
    per_axis = [sum(-(-(i + 1) * a // b) - (i * a // b) for i in range(b)) for a, b in zip(ins, outs)]
    channels = call.out.numel() // max(1, math.prod(outs))
    f = call.x_field()
    if f is not None and not f.whole and len(f.spans) == n:
        f = f.collapse(ins) if all(o == 1 for o in outs) else f.adaptive(ins, outs)
    detail = "global" if all(o == 1 for o in outs) else "->" + "x".join(map(str, outs))
    return Cost("pool", flops=channels * math.prod(per_axis), field=f, detail=detail)


def pad(call: Call) -> Cost:
    widths = list(call.arg(1, "pad", ()))
    f = call.x_field()
    if f is not None and not f.whole:
        n = len(f.spans)
        before = [0] * n
        for j in range(min(n, len(widths) // 2)):  # pad lists the last axis first
            before[n - 1 - j] = int(widths[2 * j])
        f = f.shift(before)
    return Cost("pad", field=f)


def interpolate(call: Call) -> Cost:
    mode = call.arg(3, "mode", "nearest")
    f = call.x_field()
    n = len(f.spans) if f is not None else call.x.dim() - 2
    taps = {"linear": 2, "bilinear": 2, "trilinear": 2, "bicubic": 4}.get(mode, 1)
    if f is not None and not f.whole:
        f = f.rescale(_spatial(call.x, n), _spatial(call.out, n), taps)
    flops = 0 if taps == 1 else 2 * taps ** n * call.out.numel()
    return Cost("resample", flops=flops, field=f, detail=mode)


def _per_output(kind: str, per: int = 1) -> Callable[[Call], Cost]:
    def rule(call: Call) -> Cost:
        return Cost(kind, flops=per * call.out.numel(), field=generic_field(call))

    return rule


def _per_input(kind: str) -> Callable[[Call], Cost]:
    def rule(call: Call) -> Cost:
        return Cost(kind, flops=call.x.numel() if isinstance(call.x, Tensor) else 0, field=generic_field(call))

    return rule


def _free(kind: str) -> Callable[[Call], Cost]:
    def rule(call: Call) -> Cost:
        return Cost(kind, field=generic_field(call))

    return rule


def min_max(call: Call) -> Cost:
    """``max``/``min`` are elementwise between two tensors and reductions otherwise."""
    if len(call.args) > 1 and isinstance(call.args[1], Tensor) or isinstance(call.kwargs.get("other"), Tensor):
        return _per_output("elementwise")(call)
    return _per_input("reduce")(call)


def dropout(call: Call) -> Cost:
    training = bool(call.arg(2, "training", True))
    return Cost("dropout", flops=call.out.numel() if training else 0, field=generic_field(call))


def _names(*groups: str) -> list[str]:
    return [n for g in groups for n in g.split()]


RULES: dict[str, Callable[[Call], Cost]] = {}
for _op in _names("conv1d conv2d conv3d"):
    RULES[_op] = conv
for _op in _names("conv_transpose1d conv_transpose2d conv_transpose3d"):
    RULES[_op] = conv_transpose
RULES["linear"] = linear
for _op in _names("matmul mm bmm addmm baddbmm addmm_ baddbmm_"):
    RULES[_op] = matmul
RULES["einsum"] = einsum
RULES["multi_head_attention_forward"] = attention
RULES["scaled_dot_product_attention"] = sdpa
RULES["batch_norm"] = batch_norm
for _op in _names("layer_norm group_norm instance_norm rms_norm"):
    RULES[_op] = stat_norm
RULES["local_response_norm"] = lrn
for _op in _names("max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices "
                  "max_pool3d_with_indices"):
    RULES[_op] = max_pool
for _op in _names("avg_pool1d avg_pool2d avg_pool3d"):
    RULES[_op] = avg_pool
for _op in _names("lp_pool1d lp_pool2d lp_pool3d"):
    RULES[_op] = lp_pool
for _op in _names("adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d "
                  "adaptive_max_pool2d adaptive_max_pool3d adaptive_max_pool1d_with_indices "
                  "adaptive_max_pool2d_with_indices adaptive_max_pool3d_with_indices"):
    RULES[_op] = adaptive_pool
RULES["pad"] = pad
RULES["constant_pad_nd"] = pad
RULES["interpolate"] = interpolate
for _op in _names("relu relu6 hardtanh leaky_relu elu selu celu gelu silu mish hardswish hardsigmoid sigmoid "
                  "tanh softplus softsign threshold prelu logsigmoid tanhshrink softshrink hardshrink rrelu glu "
                  "exp log sqrt rsqrt abs neg clamp clamp_min clamp_max clip square reciprocal sign sin cos erf "
                  "relu_ hardtanh_ leaky_relu_ elu_ selu_ celu_ sigmoid_ tanh_ threshold_ rrelu_ silu_ "
                  "hardswish_ hardsigmoid_ mish_ exp_ sqrt_ rsqrt_ abs_ neg_ clamp_ clamp_min_ clamp_max_ clip_"):
    RULES[_op] = _per_output("act")
for _op in _names("softmax log_softmax softmin"):
    RULES[_op] = _per_output("act", 3)
for _op in _names("add sub mul div true_divide floor_divide rsub maximum minimum pow fmod remainder where "
                  "add_ sub_ mul_ div_ true_divide_ pow_ lerp addcmul addcdiv eq ne lt le gt ge masked_fill "
                  "masked_fill_ logical_and logical_or logical_not bitwise_and bitwise_or bitwise_xor"):
    RULES[_op] = _per_output("elementwise")
for _op in ("max", "min"):
    RULES[_op] = min_max
for _op in _names("sum mean amax amin std var norm logsumexp prod argmax argmin std_mean var_mean"):
    RULES[_op] = _per_input("reduce")
for _op in _names("cat concat concatenate stack hstack vstack dstack"):
    RULES[_op] = _free("concat")
for _op in _names("view reshape flatten unflatten squeeze unsqueeze permute transpose t contiguous expand "
                  "expand_as narrow select getitem split chunk unbind view_as reshape_as movedim repeat clone "
                  "to type float half double bfloat16 channel_shuffle pixel_shuffle pixel_unshuffle roll flip "
                  "swapaxes swapdims"):
    RULES[_op] = _free("reshape")
for _op in _names("new_zeros new_ones new_full new_empty new_tensor zeros_like ones_like full_like empty_like"):
    RULES[_op] = _free("other")
for _op in _names("dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout dropout_"):
    RULES[_op] = dropout


def cost(call: Call) -> Cost:
    """The cost and output field of a call; operations without a rule count 0 and are flagged."""
    rule = RULES.get(call.op)
    if rule is None:
        return Cost("other", counted=False, field=generic_field(call))
    return rule(call)


_BINARY = frozenset("add sub mul truediv floordiv mod pow matmul and or xor lshift rshift".split())
_ALIASES = {"truediv": "div", "floordiv": "floor_divide", "mod": "remainder", "and": "bitwise_and",
            "or": "bitwise_or", "xor": "bitwise_xor"}


def op_name(func: Any) -> str:
    """A traced function's name, with Python's operator dunders mapped to torch names
    (``__add__`` -> ``add``, ``__iadd__`` -> ``add_``, ``__rmul__`` -> ``mul``)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if not (name.startswith("__") and name.endswith("__")) or name in ("__get__", "__set__"):
        return name
    core = name[2:-2]
    if core[:1] == "i" and core[1:] in _BINARY:
        return _ALIASES.get(core[1:], core[1:]) + "_"
    if core[:1] == "r" and core[1:] in _BINARY:
        return _ALIASES.get(core[1:], core[1:])
    return _ALIASES.get(core, core)


def is_inplace(op: str, kwargs: dict) -> bool:
    return op.endswith("_") and not op.endswith("__") or bool(kwargs.get("inplace"))


def window_text(window: Window | None, detail: str = "") -> str:
    return window.describe() if window is not None else detail


def fmt_shape(shape: Sequence[int] | None) -> str:
    return "x".join(map(str, shape)) if shape else ("scalar" if shape == () else "")
