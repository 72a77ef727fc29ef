"""Renamed keywords that public functions still accept for a while, with a DeprecationWarning."""

from __future__ import annotations

import warnings
from typing import Any

from .errors import ConfigError


def renamed_keyword(old: str, new: str, old_value: Any, new_value: Any, *, stacklevel: int = 3):
    """The value of a keyword renamed from ``old`` to ``new``.

    ``old_value`` is ``None`` when the caller did not use the old name; otherwise a
    ``DeprecationWarning`` names the new one (``stacklevel`` 3 points at the public function's
    caller when this is called from the public function itself).

    Raises:
        ConfigError: both names were given.
    """
    if old_value is None:
        return new_value
    warnings.warn(f"{old}= is now {new}=", DeprecationWarning, stacklevel=stacklevel)
    if new_value is not None:
        raise ConfigError(f"give {new}= only ({old}= is its old name)")
    return old_value
