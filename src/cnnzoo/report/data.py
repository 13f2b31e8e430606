"""An :class:`~cnnzoo.analysis.Analysis` as the plain data the report page draws.

Everything comes from the analyzer's trace: the rows and their figures, the data flow (``LayerRow.inputs``),
the module paths and the stage ends (``Analysis.stages``). Nothing here touches a model.

The page shows a tree of *items*: the rows (one traced operation each) and the containers above them.
Containers are the stages (split at the model's stage ends, the rest is the head) and, inside a stage,
the modules of the rows' qualified names. A container with a single child is dropped for its child, so
VGG's ``features`` Sequential does not add a level of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..analysis import OPTIMIZER_STATES, Analysis, LayerRow
from ..analysis.ops import fmt_shape
from ..analysis.render import rf_text
from ..analysis.result import DTYPE_BYTES

#: row kinds that act on each channel alone: a tensor split into towers stays split through them
_PER_CHANNEL = frozenset({"act", "pool", "norm", "dropout", "elementwise"})
#: groups of a convolution drawn as side-by-side towers (AlexNet's two GPUs); more are ordinary grouped convs
_MAX_TOWERS = 4
#: containers that only sequence their children: a stage shows what they hold
_SEQUENCES = frozenset({"Sequential", "ModuleList", "ModuleDict"})


@dataclass
class _Node:
    """A container of the item tree: a stage or a module inside one."""

    key: str
    label: str
    kind: str  # "stage" | "module"
    module_type: str = ""
    children: list[Any] = field(default_factory=list)  # _Node or row index
    name: str = ""  # the paper's name, where the model definition gives one


def stage_spans(a: Analysis) -> list[tuple[str, list[LayerRow]]]:
    """The traced rows (without the never-called ones) cut into stages at :attr:`Analysis.stages`.

    A stage ends at the last row of its end module; the rows after the last end form the head. Without
    stage ends (a plain ``nn.Module``), each top-level module is a stage.
    """
    rows = [r for r in a.rows if r.kind != "unused"]
    ends = [s for s in a.stages if s]
    if not ends:
        return _top_level_spans(rows)

    def within(r: LayerRow, module: str) -> bool:
        return r.name == module or r.name.startswith(module + ".")

    spans: list[tuple[str, list[LayerRow]]] = []
    start = 0
    for k, end in enumerate(ends, 1):
        last = max((i for i, r in enumerate(rows) if within(r, end) and i >= start), default=None)
        if last is None:
            continue
        spans.append((f"stage {k}", rows[start:last + 1]))
        start = last + 1
    if start < len(rows):
        spans.append(("head", rows[start:]))
    return spans


def _top_level_spans(rows: list[LayerRow]) -> list[tuple[str, list[LayerRow]]]:
    spans: list[tuple[str, list[LayerRow]]] = []
    for r in rows:
        top = r.name.split(".")[0] if r.name else "(model)"
        if r.kind == "input":
            top = "input"
        if not spans or spans[-1][0] != top:
            spans.append((top, []))
        spans[-1][1].append(r)
    return spans


def _containers(r: LayerRow) -> list[str]:
    """The module paths above row ``r``: its module too unless ``r`` is that leaf module's sole operation."""
    parts = r.name.split(".") if r.name else []
    depth = len(parts) - 1 if r.leaf else len(parts)
    return [".".join(parts[:j]) for j in range(1, depth + 1)]


def _stage_tree(key: str, label: str, rows: list[LayerRow], module_types: dict[str, str],
                figure_names: dict[str, str], name: str = "") -> _Node:
    """The containers of one stage's rows. A module whose operations are interleaved with others' (the
    columns of a FractalNet block) gets one container per contiguous run, so that every container is
    a contiguous span of rows and the diagram stays acyclic."""
    stage = _Node(key, label, "stage", name=name)
    chain: list[_Node] = []  # the containers of the previous row, outermost first
    runs: dict[str, int] = {}
    for r in rows:
        parent = stage
        for depth, path in enumerate(_containers(r)):
            if depth < len(chain) and chain[depth].label == path:
                parent = chain[depth]
                continue
            runs[path] = runs.get(path, 0) + 1
            suffix = f"#{runs[path]}" if runs[path] > 1 else ""
            node = _Node(f"{key}/{path}{suffix}", path, "module", module_types.get(path, ""),
                         name=figure_names.get(path, ""))
            parent.children.append(node)
            del chain[depth:]
            chain.append(node)
            parent = node
        del chain[len(_containers(r)):]
        parent.children.append(r.index)
    _hoist(stage)
    return stage


def _hoist(node: _Node) -> None:
    """Replace every container that holds a single child by that child, and open the plain sequences
    (``Sequential``, ``ModuleList``) right under a stage, so that a stage lists its blocks, recursively; a
    sequence the paper names (NiN's ``mlpconv``) is a block."""
    changed = node.kind == "stage"
    while changed:
        changed, kids = False, []
        for child in node.children:
            if isinstance(child, _Node) and child.module_type in _SEQUENCES and not child.name:
                kids += child.children
                changed = True
            else:
                kids.append(child)
        node.children = kids
    for i, child in enumerate(node.children):
        while isinstance(child, _Node) and len(child.children) == 1:
            child = child.children[0]
        node.children[i] = child
        if isinstance(child, _Node):
            _hoist(child)
    if node.kind == "stage" and len(node.children) == 1 and isinstance(node.children[0], _Node):
        node.name = node.name or node.children[0].name  # a stage that is one block shows that block's parts
        node.children = node.children[0].children


def _stage_name(a: Analysis, label: str) -> str:
    """The paper's name of the stage :func:`stage_spans` labels ``label`` ("stage 2": ResNet's ``conv2_x``)."""
    k = int(label.split()[1]) - 1 if label.startswith("stage ") else -1
    return a.stage_names[k] if 0 <= k < len(a.stage_names) else ""


def towers(a: Analysis) -> list[int]:
    """Per row, how many side-by-side towers its output is split into (1: none).

    A convolution with 2-4 groups (not depthwise) splits its output into that many towers; operations
    that act on each channel alone keep their input's towers; a ``chunk``/``split`` into as many pieces as
    its input has towers gives one tower per piece (the row's output is one piece: AlexNet-2012's per-tower
    LRN chunks its two towers and normalises each alone); a concatenation of the pieces of one
    ``chunk``/``split`` has one tower per piece; anything else merges.
    """
    by_index = {r.index: r for r in a.rows}
    out: dict[int, int] = {}
    for r in a.rows:
        t = 1
        w = r.window
        ins = [out.get(i, 1) for i in r.inputs]
        if r.kind == "conv" and w is not None and 1 < w.groups <= _MAX_TOWERS:
            t = w.groups
        elif r.kind in _PER_CHANNEL and len(set(ins)) == 1:
            t = ins[0]
        elif r.kind == "reshape" and r.op in ("chunk", "split") and ins and r.output:
            pieces = r.out_elements // math.prod(r.output)
            t = ins[0] // pieces if pieces and ins[0] % pieces == 0 else 1
        elif r.kind == "concat" and 1 < len(r.inputs) <= _MAX_TOWERS:
            pieces = [by_index[i] for i in r.inputs]
            origins = {p.inputs[0] if len(p.inputs) == 1 else None for p in pieces}
            if len(origins) == 1 and (o := origins.pop()) is not None and by_index[o].op in ("chunk", "split"):
                t = len(pieces)
        out[r.index] = t
    return [out[r.index] for r in a.rows]


def _row_data(r: LayerRow, stage: int, tower: int) -> list[Any]:
    size, jump = rf_text(r.field)
    f = r.field
    rf_num = f.size[0] if f is not None and f.spans and not f.whole else None
    return [r.index, r.label, r.type, r.kind, fmt_shape(r.output) if r.output is not None else "", r.kernel_text,
            r.params, r.params_frozen, r.buffers, r.mem_elements, r.mem_bytes, r.macs, r.flops, size, jump, rf_num,
            r.note, list(r.inputs), stage, tower, r.window.groups if r.window is not None else 1]


#: the names of the fields of each row list, in order (the page reads rows by these)
ROW_FIELDS = ("index", "name", "type", "kind", "output", "kernel", "params", "frozen", "buffers", "mem",
              "mem_bytes", "macs", "flops", "rf", "jump", "rf_num", "note", "inputs", "stage", "towers", "groups")


def _node_data(node: _Node, nodes: list[dict], rows: dict[int, LayerRow]) -> int:
    """Append ``node`` and its containers to ``nodes`` (children before parents); its position there."""
    kids = []
    for child in node.children:
        kids.append({"n": _node_data(child, nodes, rows)} if isinstance(child, _Node) else {"r": child})
    nodes.append({"key": node.key, "label": node.label, "kind": node.kind, "type": node.module_type, "children": kids,
                  **({"name": node.name} if node.name else {})})
    return len(nodes) - 1


def uncalled_modules(a: Analysis) -> list[str]:
    """The outermost modules whose parameters the traced pass never used (GoogLeNet's ``aux1`` and ``aux2`` in
    the eval graph): for each unused row, its shortest module path that holds no row of the graph."""
    graph = [r.name for r in a.rows if r.kind not in ("unused", "input")]
    found: list[str] = []
    for r in a.rows:
        if r.kind != "unused":
            continue
        parts = r.name.split(".")
        for j in range(1, len(parts) + 1):
            path = ".".join(parts[:j])
            if not any(n == path or n.startswith(path + ".") for n in graph):
                break
        if path not in found:
            found.append(path)
    return found


def model_data(a: Analysis, info: dict[str, Any] | None = None, optimizer: str = "momentum") -> dict[str, Any]:
    """The JSON-ready description of one model's report: rows, item tree, totals, training-memory inputs."""
    spans = stage_spans(a)
    stage_of = {r.index: k for k, (_, rows) in enumerate(spans) for r in rows}
    tower = towers(a)
    rows = [_row_data(r, stage_of.get(r.index, -1), t) for r, t in zip(a.rows, tower)]
    nodes: list[dict] = []
    by_index = {r.index: r for r in a.rows}
    stage_ids = [_node_data(_stage_tree(f"s{k}", label, srows, a.module_types, a.figure_names,
                                        _stage_name(a, label)), nodes, by_index)
                 for k, (label, srows) in enumerate(spans)]
    t = a.totals
    unused = sum(r.params for r in a.rows if r.kind == "unused")
    size, jump = rf_text(t.field)
    return {
        "model": a.model, "input": a.describe_input(), "input_size": list(a.input_size), "dtype": a.dtype,
        "training": a.training, "info": info or {}, "rows": rows, "nodes": nodes, "stages": stage_ids,
        "totals": {"params": t.params, "graph_params": t.params - unused, "unused_params": unused,
                   "unused_modules": uncalled_modules(a), "trainable": t.trainable, "frozen": t.frozen, "buffers": t.buffers,
                   "macs": t.macs, "flops": t.flops, "activation_elements": t.activation_elements,
                   "activation_bytes": t.activation_bytes, "rf": size, "rf_jump": jump,
                   "output": fmt_shape(t.output) if t.output is not None else ""},
        "memory": {"bytes_per_value": DTYPE_BYTES[a.dtype], "optimizer": optimizer,
                   "optimizer_states": dict(OPTIMIZER_STATES)},
    }
