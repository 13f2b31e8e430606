"""The structured result of :func:`cnnzoo.analyze`: per-layer rows, totals and the training-memory estimate."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .ops import CONVENTIONS, Window, fmt_shape
from .receptive_field import ReceptiveField

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp64": 8}
#: optimiser state kept per trainable parameter
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adagrad": 1, "adam": 2, "adamw": 2}


@dataclass
class LayerRow:
    """One traced operation (or, after :meth:`Analysis.collapse`, one block of them).

    ``name`` is the qualified name of the module that ran it (``""`` for the model's own forward);
    ``output`` the per-sample shape (C x H x W for images). ``mem_elements``/``mem_bytes`` count only
    newly allocated outputs: a view or an in-place result allocates nothing. ``inputs`` are the indices
    of the rows whose outputs this operation consumed (0: the input), the data flow the report draws.
    """

    index: int
    name: str
    module_type: str
    op: str
    kind: str
    output: tuple[int, ...] | None = None
    window: Window | None = None
    detail: str = ""
    params_trainable: int = 0
    params_frozen: int = 0
    buffers: int = 0
    macs: int = 0
    flops: int = 0
    counted: bool = True
    out_elements: int = 0
    mem_elements: int = 0
    mem_bytes: int = 0
    field: ReceptiveField | None = None
    leaf: bool = False
    note: str = ""
    inputs: tuple[int, ...] = ()

    @property
    def params(self) -> int:
        return self.params_trainable + self.params_frozen

    @property
    def type(self) -> str:
        """The module's class for the sole operation of a leaf module, else the operation's name."""
        return self.module_type if self.leaf or not self.op else self.op

    @property
    def label(self) -> str:
        return self.name or "(model)"

    @property
    def kernel_text(self) -> str:
        return self.window.describe() if self.window is not None else self.detail

    def to_dict(self) -> dict[str, Any]:
        f = self.field
        w = self.window
        return {
            "index": self.index, "name": self.name, "type": self.type, "module_type": self.module_type,
            "op": self.op, "kind": self.kind, "output": list(self.output) if self.output is not None else None,
            "kernel": list(w.kernel) if w else None, "stride": list(w.stride) if w else None,
            "padding": list(w.padding) if w else None, "dilation": list(w.dilation) if w else None,
            "groups": w.groups if w else None, "detail": self.detail,
            "params": self.params, "params_trainable": self.params_trainable,
            "params_frozen": self.params_frozen, "buffers": self.buffers,
            "macs": self.macs, "flops": self.flops, "counted": self.counted,
            "out_elements": self.out_elements, "mem_elements": self.mem_elements, "mem_bytes": self.mem_bytes,
            "rf_size": list(f.size) if f else None, "rf_jump": list(f.jump) if f and not f.whole else None,
            "rf_start": list(f.start) if f and not f.whole else None, "rf_whole": f.whole if f else None,
            "rf_context": f.context if f else None,
            "note": self.note, "inputs": list(self.inputs),
        }


@dataclass(frozen=True)
class TrainingMemory:
    """An estimate, not a measurement: weights + gradients + optimiser state + saved activations.

    ``weights = (P + buffers)·b``, ``gradients = P_t·b``, ``optimizer_state = k·P_t·b`` (k states per
    trainable parameter: 0 for plain SGD, 1 for momentum, 2 for Adam) and ``activations = B·A·b`` with
    ``A`` the forward activation elements per sample, taken as what backward keeps. It leaves out
    framework workspace (cuDNN), allocator fragmentation and mixed-precision master copies.
    """

    batch_size: int
    optimizer: str
    dtype: str
    weights: int
    gradients: int
    optimizer_state: int
    activations: int

    formula = ("(P + buffers)·b + P_trainable·b + k·P_trainable·b + B·A·b  "
               "[weights + gradients + optimiser state (k per parameter) + activations]")

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "optimizer": self.optimizer, "dtype": self.dtype,
                "weights_bytes": self.weights, "gradients_bytes": self.gradients,
                "optimizer_state_bytes": self.optimizer_state, "activations_bytes": self.activations,
                "total_bytes": self.total, "formula": self.formula, "estimate": True}


@dataclass(frozen=True)
class Totals:
    """Per-model totals; ``macs`` counts conv/linear/matmul only, ``flops`` everything (2·MACs + other)."""

    params: int
    trainable: int
    frozen: int
    buffers: int
    macs: int
    flops: int
    other_flops: int
    activation_elements: int
    activation_bytes: int
    field: ReceptiveField | None
    output: tuple[int, ...] | None
    uncounted_ops: tuple[str, ...] = ()

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def to_dict(self) -> dict[str, Any]:
        f = self.field
        return {
            "params": self.params, "params_trainable": self.trainable, "params_frozen": self.frozen,
            "buffers": self.buffers, "macs": self.macs, "flops": self.flops, "other_flops": self.other_flops,
            "activation_elements": self.activation_elements, "activation_bytes": self.activation_bytes,
            "rf_size": list(f.size) if f else None, "rf_jump": list(f.jump) if f else None,
            "rf_start": list(f.start) if f else None,
            "output": list(self.output) if self.output is not None else None,
            "uncounted_ops": list(self.uncounted_ops),
        }


@dataclass
class Analysis:
    """Everything :func:`cnnzoo.analyze` found: per-layer ``rows`` (they add up to ``totals``)."""

    model: str
    input_size: tuple[int, ...]
    dtype: str
    rows: list[LayerRow]
    totals: Totals
    training: bool = False
    module_types: dict[str, str] = field(default_factory=dict, repr=False)
    #: the modules that end each stage (the model's ``feature_info``), shallow to deep
    stages: tuple[str, ...] = ()
    #: the papers' names of the stages (``FeatureInfo.name``; "" where the model gives none)
    stage_names: tuple[str, ...] = ()
    #: module path -> the paper's name of that block (a module's ``figure_name``: "Inception (3a)", "Fire2")
    figure_names: dict[str, str] = field(default_factory=dict, repr=False)
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS), repr=False)

    def row(self, name: str, op: str | None = None) -> LayerRow:
        """The first row of module ``name`` (and operation ``op``, if given)."""
        for r in self.rows:
            if r.name == name and (op is None or r.op == op):
                return r
        raise KeyError(f"no row for {name!r}" + (f" with op {op!r}" if op else ""))

    def collapse(self, depth: int | None) -> list[LayerRow]:
        """Rows with every module deeper than ``depth`` name components merged into its ancestor at
        ``depth``: figures summed, output and receptive field those of the block's last operation;
        ``inputs`` renumbered to the merged rows."""
        if depth is None:
            return list(self.rows)
        if depth < 1:
            raise ValueError("depth must be at least 1")
        groups: dict[str, list[LayerRow]] = {}
        order: list[tuple[str, LayerRow | None]] = []
        for r in self.rows:
            parts = r.name.split(".") if r.name else []
            if len(parts) <= depth and (len(parts) < depth or r.leaf or r.kind in ("input", "unused")):
                order.append(("", r))
                continue
            key = ".".join(parts[:depth])
            if key not in groups:
                groups[key] = []
                order.append((key, None))
            groups[key].append(r)
        out: list[LayerRow] = []
        merged: dict[int, int] = {}  # old index -> new index
        for key, r in order:
            members = [r] if r is not None else groups[key]
            for m in members:
                merged[m.index] = len(out)
            if r is not None or len(members) == 1 and members[0].name == key and members[0].leaf:
                out.append(replace(members[0], index=len(out)))
                continue
            last = members[-1]
            unused = all(m.kind == "unused" for m in members)
            out.append(LayerRow(
                index=len(out), name=key, module_type=self.module_types.get(key, ""), op="",
                kind="unused" if unused else "block",
                output=last.output, params_trainable=sum(m.params_trainable for m in members),
                params_frozen=sum(m.params_frozen for m in members), buffers=sum(m.buffers for m in members),
                macs=sum(m.macs for m in members), flops=sum(m.flops for m in members),
                counted=all(m.counted for m in members), out_elements=last.out_elements,
                mem_elements=sum(m.mem_elements for m in members), mem_bytes=sum(m.mem_bytes for m in members),
                field=last.field, leaf=False, note=last.note if unused else f"{len(members)} ops",
                inputs=tuple(i for m in members for i in m.inputs),
            ))
        for r in out:
            r.inputs = tuple(dict.fromkeys(merged[i] for i in r.inputs if merged[i] != r.index))
        return out

    def training_memory(self, batch_size: int = 1, optimizer: str = "momentum") -> TrainingMemory:
        """Estimated training memory at this analysis' dtype; see :class:`TrainingMemory` for the formula."""
        if optimizer not in OPTIMIZER_STATES:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r}")
        b = DTYPE_BYTES[self.dtype]
        t = self.totals
        return TrainingMemory(batch_size, optimizer, self.dtype, weights=(t.params + t.buffers) * b,
                              gradients=t.trainable * b, optimizer_state=OPTIMIZER_STATES[optimizer] * t.trainable * b,
                              activations=batch_size * t.activation_bytes)

    def to_dict(self, depth: int | None = None, batch_size: int = 1, optimizer: str = "momentum") -> dict[str, Any]:
        return {
            "model": self.model, "input_size": list(self.input_size), "dtype": self.dtype, "training": self.training,
            "rows": [r.to_dict() for r in self.collapse(depth)], "totals": self.totals.to_dict(),
            "training_memory": self.training_memory(batch_size, optimizer).to_dict(),
            "conventions": self.conventions,
        }

    def __str__(self) -> str:
        from .render import render_text

        return render_text(self)

    def describe_input(self) -> str:
        return fmt_shape(self.input_size)
