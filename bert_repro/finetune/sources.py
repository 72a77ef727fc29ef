"""Seeded splits and subsets of fine-tuning examples (the records themselves come from local
files or :func:`bert_repro.data.tfds_records`)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


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
