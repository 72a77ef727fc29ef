"""Shim for tools that still look for ``setup.py``; all metadata lives in ``pyproject.toml``.

``pip install .`` and ``pip install -e .`` read ``pyproject.toml`` either way.
"""

from setuptools import setup

setup()
