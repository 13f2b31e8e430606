"""Figures cnnzoo computes where no paper or torchvision gives one: the MACs of the ``*_cifar`` variants and
of the models without a reference, at each model's own input.

They are kept as data (``resources/computed_macs.json``) so that ``cnnzoo list`` shows them without building
a model; a test recomputes every one with :func:`cnnzoo.analyze` and compares exactly, and
``python -m cnnzoo.computed`` rewrites the file. A model missing from the file (one registered since) is
computed when asked, on the meta device (milliseconds).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import sys
from pathlib import Path

from .registry import list_models, model_info

RESOURCE = "computed_macs.json"


@functools.cache
def _table() -> dict[str, int]:
    try:
        return json.loads((importlib.resources.files("cnnzoo") / "resources" / RESOURCE).read_text("utf-8"))
    except FileNotFoundError:
        return {}


def needs_computing(name: str) -> bool:
    """Whether ``name`` has no reference GMACs (and so shows cnnzoo's own figure)."""
    return not model_info(name).gmacs


def computed_macs(name: str) -> int:
    """Conv/linear MACs of one sample at ``name``'s own input, as ``cnnzoo summary`` counts them."""
    if name in _table():
        return _table()[name]
    from .analysis import analyze

    return analyze(name).totals.macs


def current_table() -> dict[str, int]:
    """The file's contents as they should be: every model without a reference figure, computed now."""
    from .analysis import analyze

    return {name: analyze(name).totals.macs for name in list_models() if needs_computing(name)}


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(__file__).parent / "resources" / RESOURCE
    path.write_text(json.dumps(current_table(), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
