"""Lazy re-exports for subpackages: ``import bert_repro.probe`` stays light (no TensorFlow)
until a name is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, list[str]]:
    """``(__getattr__, __all__)`` for ``package``: each name of ``exports`` is imported from its
    module (``{name: module relative to package}``) the first time it is asked for."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)
