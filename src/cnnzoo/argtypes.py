"""Argument types shared by the commands: each checks a value when the command line is parsed, before any
work, and its error is argparse's one line (exit code 2). Kept free of torch so that parsing stays cheap."""

from __future__ import annotations

import argparse
from pathlib import Path

from .training.config import valid_device

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    return _whole(text, 1, "at least 1")


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more."""
    return _whole(text, 0, "0 or more")


def _whole(text: str, least: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return value


def device(text: str) -> str:
    """A device string, checked by the rule every command shares (availability is checked when used)."""
    if not valid_device(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return text


def plot_file(text: str) -> str:
    """A chart to write, in a format matplotlib writes. Missing folders are created, as for every output
    (see :func:`cnnzoo.weights.make_parents`); a file in the way is refused now, before any work."""
    path = Path(text)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text!r}: a chart is written as {', '.join(PLOT_SUFFIXES)}")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {blocker} is a file, not a folder")
    return text


def csv(kind: type):
    """Comma-separated values of ``kind`` (``int``, ``float`` or ``str``), as a tuple."""
    what = {int: "whole numbers", float: "numbers", str: "names"}.get(kind, kind.__name__)

    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None

    parse.__name__ = f"comma-separated {what}"
    return parse
