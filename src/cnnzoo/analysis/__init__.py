"""The architecture analyzer: cs231n's per-layer table for any ``nn.Module``, exact and instant.

``analyze(module_or_name, input_size=(C, H, W))`` traces one forward pass on the meta device and
returns an :class:`Analysis`: a row per operation (module leaves and functional operations alike)
with output volume, kernel, parameters, buffers, MACs, FLOPs, activation memory and receptive field,
and totals that the rows add up to. The counting rules are :data:`CONVENTIONS`.
"""

from .core import analyze, parse_input_size
from .ops import CONVENTIONS
from .receptive_field import ReceptiveField, Span
from .render import FORMATS, render
from .result import DTYPE_BYTES, OPTIMIZER_STATES, Analysis, LayerRow, Totals, TrainingMemory

__all__ = [
    "CONVENTIONS", "DTYPE_BYTES", "FORMATS", "OPTIMIZER_STATES", "Analysis", "LayerRow", "ReceptiveField",
    "Span", "Totals", "TrainingMemory", "analyze", "parse_input_size", "render",
]
