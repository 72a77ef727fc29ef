"""Keep TensorFlow's start-up chatter off the command line's stderr (used by ``bert-repro`` only).

Importing TensorFlow prints about ten lines of C++ logging before any output of ours ("Could not
find cuda drivers", "failed call to cuInit: ... CUDA error", CPU-feature and oneDNN notes).
``TF_CPP_MIN_LOG_LEVEL=3`` silences TensorFlow's own logging (errors included; fatal messages
still show), but two of the lines come from absl while the shared libraries load, before its
logging is initialised, and no environment variable reaches them (checked on TF 2.21): for those,
file descriptor 2 points at ``/dev/null`` while ``tensorflow`` itself is being imported. Python
warnings and logs of TensorFlow, Keras and transformers are errors-only for the same run.

:func:`quiet_tensorflow` sets all of this for the duration of a ``with`` block and restores it
afterwards. Library code never calls it: importing ``bert_repro`` changes no environment variable,
logger or warning filter.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import warnings
from collections.abc import Iterator

ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "TRANSFORMERS_VERBOSITY": "error"}
LOGGERS = ("tensorflow", "absl")
NOISY_PACKAGES = r"(tensorflow|tf_keras|keras|transformers|tensorflow_datasets|absl)(\.|$)"


def wants_quiet(debug: bool, environ: dict | os._Environ = os.environ) -> bool:
    """Quiet unless ``--debug`` was given or the user chose a TensorFlow log level themselves."""
    return not debug and "TF_CPP_MIN_LOG_LEVEL" not in environ


@contextlib.contextmanager
def quiet_tensorflow(enabled: bool = True) -> Iterator[None]:
    """Within the block: TensorFlow and friends print errors only; everything is put back after.

    Args:
        enabled: ``False`` makes this a no-op (``--debug``, or a user-set log level).
    """
    if not enabled:
        yield
        return
    with (
        _environment(ENVIRONMENT),
        _muted_first_import("tensorflow"),
        _loggers_at_error(LOGGERS),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", module=NOISY_PACKAGES)
        yield


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the variables the user has not set; restore the environment afterwards."""
    added = [k for k in values if k not in os.environ]
    for key in added:
        os.environ[key] = values[key]
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _loggers_at_error(names: tuple[str, ...]) -> Iterator[None]:
    with contextlib.suppress(ImportError):
        import absl.logging  # noqa: F401  (absl must create its own logger class first)
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _stderr_fd_muted() -> Iterator[None]:
    """Point file descriptor 2 (what C++ writes to) at /dev/null; Python's ``sys.stderr``
    objects are flushed first so nothing of ours is lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _MutedLoader(importlib.abc.Loader):
    """Run another loader with file descriptor 2 muted."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _stderr_fd_muted():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _MutedFirstImport(importlib.abc.MetaPathFinder):
    """Find the top-level package ``name`` as usual, but import it with stderr muted."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _MutedLoader(spec.loader)
        return spec


@contextlib.contextmanager
def _muted_first_import(name: str) -> Iterator[None]:
    if name in sys.modules:  # imported already (e.g. by the caller of main()): nothing to mute
        yield
        return
    finder = _MutedFirstImport(name)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
