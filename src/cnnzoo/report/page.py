"""One self-contained HTML page: the template, its stylesheet and script, and the models' data, inlined.

The page needs no network: no CDN, no fonts, no images; the diagram and charts are SVG that the
page's own script (``resources/report.js``, vanilla JavaScript) draws from the embedded JSON.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from .data import ROW_FIELDS


@lru_cache(maxsize=None)
def _resource(name: str) -> str:
    return resources.files("cnnzoo").joinpath("resources", name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>`` or ``<!--`` can end it early."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(models: list[dict[str, Any]], *, compare: bool = False, title: str | None = None, appendix: str = "") -> str:
    """The HTML page of ``models`` (from :func:`~cnnzoo.report.data.model_data`): one model's report,
    or with ``compare`` the complexity chart and the models' tables side by side. ``appendix``: HTML
    placed after the report, as it is (the "what it learned" section of :mod:`cnnzoo.explain.learned`)."""
    from .. import __version__
    from ..analysis import CONVENTIONS

    title = title or ("cnnzoo: " + (", ".join(m["model"] for m in models) if compare else models[0]["model"]))
    data = {"fields": list(ROW_FIELDS), "compare": compare, "models": models}
    conventions = "MACs count conv, linear and matmul; " + CONVENTIONS.get("memory", "")
    fill = {
        "__TITLE__": html.escape(title), "__VERSION__": html.escape(__version__),
        "__CONVENTIONS__": html.escape(conventions), "__CSS__": _resource("report.css"),
        "__JS__": _resource("report.js"), "__DATA__": _script_json(data), "__APPENDIX__": appendix,
    }
    text = _resource("report.html")
    for key in ("__TITLE__", "__VERSION__", "__CONVENTIONS__", "__CSS__", "__APPENDIX__", "__DATA__", "__JS__"):
        text = text.replace(key, fill[key])  # the script last: its text is never searched for placeholders
    return text
