"""The package's own errors: each names the problem and, where there is one, the fix.

The command line prints ``str(error)`` on one line and exits non-zero; a stack trace is shown
only with ``--debug``.
"""

from __future__ import annotations

import numbers
import os


class BertReproError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(BertReproError, ValueError):
    """Bad input data: names the file, the line (1-based) and the reason when they are known."""

    def __init__(
        self, reason: str, *, path: str | os.PathLike | None = None, line: int | None = None
    ):
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
        elif line is not None:
            where = f"line {line}"
        super().__init__(f"{where}: {reason}" if where else reason)


class InputTooLongError(DataError):
    """A text or sentence has more wordpieces than the model accepts."""


class ModelError(BertReproError):
    """A model cannot be loaded, or models that must match do not."""


class ConfigError(BertReproError, ValueError):
    """An option has a value outside the valid ones (the message lists them)."""


def check_choice(name: str, value: object, valid: tuple | list) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``valid``, listing the valid ones."""
    if value not in valid:
        options = ", ".join(repr(v) for v in valid)
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {options}")


def check_positive(name: str, value: object, *, minimum: int = 1, optional: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an int ``>= minimum`` (or None when
    ``optional``): counts such as epochs, batch sizes and limits are checked before any work."""
    if optional and value is None:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


def check_not_string(value: object, what: str = "texts", *, words: bool = False) -> None:
    """Raise :class:`DataError` if ``value`` is one ``str`` (or ``bytes``) where a list of them
    is expected: iterating it would silently make every character an item.

    The message shows the fix with the caller's own text: ``[text]``, or ``[text.split()]``
    when ``words`` (a list of pre-split sentences was expected).
    """
    if not isinstance(value, (str, bytes)):
        return
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = " ".join(text.split())
    text = text if len(text) <= 40 else text[:37] + "..."
    example = [text.split()] if words else [text]
    raise DataError(
        f"{what} is a single string, not a list (iterating it would give its characters): "
        f"pass a list, e.g. {example!r}"
    )
