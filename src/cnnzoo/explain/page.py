"""Pictures of attribution maps: a heat-map overlay per image and method, and one offline HTML page of them all
(every picture inlined as a data URI, no script, no network)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


def heat(attribution: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] for display: its positive part over its 99.5th percentile (so a few extreme
    gradients do not wash the rest out)."""
    a = np.maximum(attribution, 0)
    top = np.percentile(a, 99.5) if a.max() > 0 else 1.0
    return np.clip(a / (top if top > 0 else a.max() or 1.0), 0, 1)


def overlay(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """``image`` (``H x W x 3`` in [0, 1]) under ``attribution`` (``H x W``) in matplotlib's jet colours."""
    from matplotlib import colormaps

    colour = colormaps["jet"](heat(attribution))[..., :3]
    blend = (1 - alpha) * image + alpha * colour
    return Image.fromarray((blend * 255).round().astype(np.uint8))


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass
class Card:
    """One image on the page: its picture, its top classes and one overlay per method."""

    title: str
    image: bytes
    topk: list[tuple[str, float]]
    target: str
    overlays: dict[str, bytes] = field(default_factory=dict)


_STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}
.card{border-top:1px solid #ccc;padding:.8em 0}.row{display:flex;flex-wrap:wrap;gap:.8em}
figure{margin:0;text-align:center}figure img{width:192px;image-rendering:pixelated}
figcaption{font-size:12px;color:#555}table{border-collapse:collapse;font-size:13px}
td{padding:0 .6em 0 0}.num{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f6f6f6;padding:.6em}"""


def write_page(path: Path, title: str, subtitle: str, cards: list[Card], notes: str = "") -> None:
    """The page: one card per image (the input, its top-k classes, each method's overlay)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"]
    if notes:
        parts.append(f"<pre>{html.escape(notes)}</pre>")
    for c in cards:
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td class='num'>{100 * p:.2f}%</td></tr>" for n, p in c.topk)
        figs = [f"<figure><img src='{data_uri(c.image)}' alt='input'><figcaption>input</figcaption></figure>"]
        figs += [f"<figure><img src='{data_uri(png)}' alt='{html.escape(m)}'><figcaption>{html.escape(m)}"
                 f"</figcaption></figure>" for m, png in c.overlays.items()]
        parts.append(f"<div class='card'><h2>{html.escape(c.title)}</h2><p>explained: <b>{html.escape(c.target)}</b>"
                     f"</p><div class='row'>{''.join(figs)}<table>{rows}</table></div></div>")
    parts.append("</body></html>")
    from ..weights import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(parts), encoding="utf-8"))
