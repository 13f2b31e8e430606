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
