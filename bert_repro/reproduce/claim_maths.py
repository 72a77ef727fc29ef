"""The maths behind the claim checks (:mod:`.claims`): pure functions of similarity curves
and scores, testable with NumPy arrays.

A similarity curve has ``L + 1`` values, one per hidden state (0 = the embedding output,
``1..L`` the transformer layers), each the similarity of a fine-tuned model to the base
(linear CKA, cosine, ...; 1 = unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError


def top_third(num_layers: int) -> np.ndarray:
    """Indices of the top third of the ``L = num_layers`` transformer layers among the
    ``L + 1`` hidden states: the last ``max(1, L // 3)`` (9..12 of 12, 5..6 of 6).

    Raises:
        ConfigError: fewer than 3 layers (no top third to speak of).
    """
    if num_layers < 3:
        raise ConfigError(f"a top third needs at least 3 layers, got {num_layers}")
    k = max(1, num_layers // 3)
    return np.arange(num_layers - k + 1, num_layers + 1)


def change(similarity: np.ndarray) -> np.ndarray:
    """Per-layer change ``1 - s`` of a similarity curve, clipped at 0 (a CKA a rounding
    error above 1 is no change)."""
    return np.clip(1.0 - np.asarray(similarity, dtype=float), 0.0, None)


def top_third_share(similarity: np.ndarray) -> float:
    """Share of the total change ``sum_l (1 - s_l)`` over the ``L + 1`` hidden states that
    falls in the :func:`top_third` layers. NaN when nothing changed."""
    c = change(similarity)
    total = c.sum()
    return float(c[top_third(len(c) - 1)].sum() / total) if total > 0 else float("nan")


def first_layer_below(similarity: np.ndarray, threshold: float) -> int | None:
    """The lowest hidden-state index whose similarity is below ``threshold``, or ``None``."""
    below = np.flatnonzero(np.asarray(similarity, dtype=float) < threshold)
    return int(below[0]) if below.size else None


def best_layer(scores: Mapping[int | str, float]) -> tuple[int | str, float]:
    """``(layer, score)`` of the highest score (ties: the lowest integer layer first, a
    scalar mix such as ``"mix"`` after the layers)."""
    order = sorted(scores, key=lambda k: (isinstance(k, str), k if isinstance(k, int) else 0))
    layer = max(order, key=lambda k: scores[k])  # max keeps the first of equal scores
    return layer, float(scores[layer])


def relative_drop(reference: float, value: float) -> float:
    """``(reference - value) / reference``: the share of the metric lost (negative: gained)."""
    return (reference - value) / reference
