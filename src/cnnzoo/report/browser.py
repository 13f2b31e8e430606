"""Open a report page in headless Chromium: the DOM after its script ran, or a screenshot.

Used by the tests and to make the screenshots in ``docs/``; needs only a ``chromium`` binary (Debian's
``chromium`` package, which ``make setup`` installs where it can), no Python package. The page's own
script records JavaScript errors into ``#cnnzoo-errors``, so the dumped DOM tells whether it ran cleanly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

_BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run",
          "--hide-scrollbars", "--mute-audio", "--disable-dev-shm-usage")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary, ``$CNNZOO_CHROMIUM`` first; ``None`` if there is none."""
    explicit = os.environ.get("CNNZOO_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((path for name in _BINARIES if (path := shutil.which(name))), None)


def _url(page: str | os.PathLike, fragment: str) -> str:
    url = Path(page).resolve().as_uri()
    return url + ("#" + fragment if fragment else "")


def _run(extra: list[str], page: str | os.PathLike, fragment: str, budget_ms: int, timeout: float) -> str:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary: install Debian's chromium package (make setup tries)")
    with tempfile.TemporaryDirectory(prefix="cnnzoo-chromium-") as profile:
        cmd = [binary, *_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra,
               _url(page, fragment)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def dump_dom(page: str | os.PathLike, fragment: str = "", budget_ms: int = 5000, timeout: float = 90) -> str:
    """The page's DOM, serialised after its scripts ran (``fragment``: the part after ``#``)."""
    return _run(["--dump-dom"], page, fragment, budget_ms, timeout)


def screenshot(page: str | os.PathLike, out: str | os.PathLike, fragment: str = "",
               size: tuple[int, int] = (1400, 1000), budget_ms: int = 5000, timeout: float = 90) -> Path:
    """A PNG of the page's first ``size`` pixels (width, height)."""
    out = Path(out).resolve()
    _run([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}"], page, fragment, budget_ms, timeout)
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


class Element:
    """One element of a parsed DOM: its tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text = ""

    def iter(self) -> Iterator[Element]:
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants (and self) with ``tag`` whose attributes equal ``attrs`` (``class_`` matches a class)."""
        want = {k.rstrip("_"): v for k, v in attrs.items()}
        found = []
        for e in self.iter():
            if tag and e.tag != tag:
                continue
            if all((v in e.attrs.get(k, "").split()) if k == "class" else e.attrs.get(k) == v
                   for k, v in want.items()):
                found.append(e)
        return found

    def by_id(self, ident: str) -> Element | None:
        return next((e for e in self.iter() if e.attrs.get("id") == ident), None)

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class _Parser(HTMLParser):
    VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.at = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e = Element(tag, {k: v or "" for k, v in attrs}, self.at)
        self.at.children.append(e)
        if tag not in self.VOID:
            self.at = e

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.at.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.at))

    def handle_endtag(self, tag: str) -> None:
        e = self.at
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.at = e.parent

    def handle_data(self, data: str) -> None:
        self.at.text += data


def parse_dom(text: str) -> Element:
    """A small DOM of ``text`` (what :func:`dump_dom` returns), enough to count and read elements."""
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.root
