"""The report's diagram in headless Chromium: drawn as an SVG file, and measured against what the layout promises.

:func:`measure_layout` adds ``resources/report_geometry.js`` after a page's own script, presses the diagram's
view buttons one after the other and reads back, per view, the counts the layout is held to: overlapping
sibling frames and boxes, frame titles outside their frame, edges that cross a box they do not connect,
concatenations whose side-by-side inputs are out of the model's order, and how far the last box drifted
from the first. Used by the tests and by ``benchmarks/report_layout.py`` (every registered model).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .browser import dump_dom, parse_dom
from .page import _resource

#: the diagram's views, by the buttons that draw them
VIEWS = ("Collapse all", "Blocks", "Open stages", "Open all")


def diagram_svg(html: str, expand: str = "", timeout: float = 300) -> str:
    """The diagram of ``html`` (a one-model report page) as a standalone SVG file's text, drawn in headless
    Chromium with the containers ``expand`` open ("stages", "blocks", "all" or keys; "" for the page's first view)."""
    with tempfile.TemporaryDirectory(prefix="cnnzoo-svg-") as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(html, encoding="utf-8")
        fragment = "svg" + (f"&expand={quote(expand, safe=',')}" if expand else "")
        dom = parse_dom(dump_dom(path, fragment, budget_ms=2000, timeout=timeout))
    found = dom.by_id("cnnzoo-svg")
    if found is None:
        raise RuntimeError("the page drew no diagram")
    return found.all_text()


def measure_layout(html: str, views: tuple[str, ...] = VIEWS, timeout: float = 300) -> dict[str, dict[str, Any]]:
    """Per view of ``html``'s diagram (a one-model report page), the counts of :mod:`report_geometry.js`."""
    script = "<script>\n" + _resource("report_geometry.js") + "\n</script>\n</body>"
    with tempfile.TemporaryDirectory(prefix="cnnzoo-geometry-") as tmp:
        path = Path(tmp) / "page.html"
        path.write_text(html.replace("</body>", script, 1), encoding="utf-8")
        dom = parse_dom(dump_dom(path, "views=" + ",".join(views), budget_ms=2000, timeout=timeout))
    errors = dom.by_id("cnnzoo-errors")
    if errors is not None and errors.all_text().strip():
        raise RuntimeError("the page reported errors: " + errors.all_text().strip()[:500])
    found = dom.by_id("cnnzoo-geometry")
    if found is None:
        raise RuntimeError("the geometry script did not run")
    return json.loads(found.all_text())
