"""A Ctrl-C that a finaliser swallowed, kept for the training loop.

Python drops an exception raised inside a finaliser (a ``__del__``, a weakref callback) with "Exception ignored
in ...". A Ctrl-C whose KeyboardInterrupt landed there was lost, and the run went on to its end. While a run
trains, such a KeyboardInterrupt is remembered instead of printed, and the loop raises it again after the epoch,
where the run stops as after any Ctrl-C (its last.pt and the command that continues it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class KeptCtrlC:
    """Whether a swallowed Ctrl-C is waiting; :meth:`check` raises it."""

    def __init__(self) -> None:
        self.pressed = False

    def check(self) -> None:
        if self.pressed:
            self.pressed = False
            raise KeyboardInterrupt


@contextmanager
def keep_ctrl_c() -> Iterator[KeptCtrlC]:
    """Within the block, a KeyboardInterrupt raised in a finaliser is kept rather than printed and lost."""
    kept = KeptCtrlC()
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            kept.pressed = True
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield kept
    finally:
        sys.unraisablehook = previous
