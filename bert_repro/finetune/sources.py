"""Where fine-tuning examples come from: tensorflow-datasets records and seeded splits."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import DataError


def tfds_records(name: str, split: str, *, data_dir: str | os.PathLike | None = None) -> Iterator:
    """Iterate a tensorflow-datasets split as NumPy dicts (strings as ``bytes``).

    The dataset is downloaded and prepared into ``data_dir`` (tfds' default folder when
    ``None``) the first time, which needs the network; afterwards it is read from disk.

    Raises:
        DataError: the dataset or split cannot be loaded (offline and not prepared, or an
            unknown split); the message says which and why.
    """
    import tensorflow_datasets as tfds

    try:
        ds = tfds.load(
            name,
            split=split,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            shuffle_files=False,
        )
    except Exception as err:  # tfds raises many types (network, missing split, ...)
        raise DataError(
            f"could not load tensorflow-datasets {name!r} split {split!r}: "
            f"{type(err).__name__}: {err}. Prepare it on a machine with internet "
            "(`tfds.load(name, data_dir=...)`) and pass that data_dir, or give a local file."
        ) from err
    yield from tfds.as_numpy(ds)


def text(value) -> str:
    """A tfds string field (``bytes``) as ``str``."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def holdout_split(n: int, eval_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into train and evaluation indices by a seeded permutation.

    ``round(eval_fraction * n)`` items (at least one of each side when ``n >= 2``) go to the
    evaluation part; both index arrays are sorted, disjoint and together cover ``range(n)``.
    The same ``(n, eval_fraction, seed)`` always gives the same split.
    """
    if not 0 < eval_fraction < 1:
        raise DataError(f"eval_fraction={eval_fraction} must be strictly between 0 and 1")
    if n < 2:
        raise DataError(f"cannot split {n} example(s) into a training and an evaluation part")
    n_eval = min(n - 1, max(1, round(eval_fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_eval:]), np.sort(order[:n_eval])


def subsample(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``limit`` of ``range(n)`` (all if fewer)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise DataError(f"an example limit must be positive, got {limit}")
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])
