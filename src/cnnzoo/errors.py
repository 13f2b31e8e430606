"""User-facing errors.

Every mistake a user can make (an unknown model, an input that is too small, a weights file that does
not fit) raises a subclass of :class:`CnnzooError`. Its message is one line that says what is wrong and
what to do; the CLI prints it and exits with code 2. Anything else is a bug of ours.
"""

from __future__ import annotations


class CnnzooError(Exception):
    """A mistake on the user's side, reported as one line."""


class UnknownModelError(CnnzooError, KeyError):
    """No model is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelArgumentError(CnnzooError, ValueError):
    """A constructor argument the model does not take, or a value it refuses."""


class InputSizeError(CnnzooError, ValueError):
    """An input that a model cannot take: too small, or the wrong number of channels."""


class WeightsError(CnnzooError, ValueError):
    """A weights file that is missing, corrupt, foreign, or does not fit the model."""


class DiskFullError(CnnzooError, OSError):
    """A file that could not be written because its filesystem is full."""

    @classmethod
    def about(cls, path: object, needed: int | None, written: int = 0) -> "DiskFullError":
        """The one line: which file, how much it needed, how much was free where."""
        import shutil
        from pathlib import Path

        folder = Path(path).parent
        try:
            free = f"{human_bytes(shutil.disk_usage(folder).free)} free"
        except OSError:
            free = "free space unknown"
        need = (f"it needs {human_bytes(needed)}" if needed else
                f"it needs more than the {human_bytes(written)} written" if written else "it needs more")
        return cls(f"the disk is full: cannot write {path} ({need}; {free} in {folder.resolve()}); "
                   "free some space there or write elsewhere")

    def __str__(self) -> str:  # OSError would prefix an errno
        return str(self.args[0]) if self.args else ""


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 kB``: decimal units, as ``df -H`` and file managers show them."""
    value, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value /= 1000
    return f"{n:,} B" if unit == "B" else f"{value:.1f} {unit}"
