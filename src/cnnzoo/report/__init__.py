"""``cnnzoo report``: one self-contained HTML page per model, drawn from the analyzer's trace.

:func:`report_html` turns :class:`~cnnzoo.analysis.Analysis` results into a page with the architecture
diagram (stages that open into blocks and layers, branches side by side, shortcuts and concatenations
as edges, AlexNet's towers side by side), the sortable, filterable per-layer table and the lecture's
charts; with ``compare``, the top-1 against GMACs bubble chart and the models' tables side by side.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..analysis import Analysis
from .data import model_data, stage_spans, towers
from .geometry import diagram_svg, measure_layout
from .page import page

__all__ = ["diagram_svg", "measure_layout", "model_data", "page", "report_html", "stage_spans", "towers"]


def report_html(analyses: Sequence[Analysis], infos: Sequence[dict[str, Any] | None] | None = None, *,
                compare: bool = False, optimizer: str = "momentum", appendix: str = "") -> str:
    """The HTML page of ``analyses`` (one, or several with ``compare``); ``infos`` adds per model what the
    trace does not know: ``paper``, ``year``, ``top1``, ``source``, ``notes``, ``weights``; ``appendix`` is
    HTML placed after the report."""
    infos = list(infos) if infos is not None else [None] * len(analyses)
    if len(infos) != len(analyses):
        raise ValueError("give one info (or None) per analysis")
    models = [model_data(a, info, optimizer) for a, info in zip(analyses, infos)]
    return page(models, compare=compare, appendix=appendix)
