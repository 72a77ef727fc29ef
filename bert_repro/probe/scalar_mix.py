"""The scalar mix of hidden states and the two "expected layer" summaries of Tenney et al.

Tenney, Das & Pavlick, "BERT Rediscovers the Classical NLP Pipeline" (ACL 2019), after
Peters et al.'s ELMo scalar mix (NAACL 2018):

* **Scalar mix** of the hidden states ``h_0 .. h_L`` (0 = embedding output):
  ``h = gamma * sum_l s_l h_l`` with ``s = softmax(a)``; ``a`` (one logit per layer) and
  ``gamma`` are learned with the probe, so the weights ``s_l`` sum to 1.
* **Expected layer of the mix weights**: ``E_s[l] = sum_l l * s_l``, the centre of gravity of
  the layers a probe on the mix of all layers draws on.
* **Cumulative scoring**: probes ``P(l)`` on the mixes of layers ``0..l`` score
  ``score(l)``; the differential score ``Delta(l) = score(l) - score(l-1)`` (``l = 1..L``) is
  what observing layer ``l`` adds, and the **expected layer**
  ``E_Delta[l] = sum_{l=1..L} l * Delta(l) / sum_{l=1..L} Delta(l)`` says where in the network
  a task is resolved.

Pure NumPy functions; nothing changes its inputs. The Keras probes
(:class:`~bert_repro.probe.edge_model.StackedEdgeProbes`) compute the same mix in TensorFlow
(:func:`masked_mix_weights_tf`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "cumulative_expected_layer",
    "expected_layer",
    "masked_mix_weights_tf",
    "mix_weights",
    "scalar_mix",
    "score_deltas",
]


def mix_weights(logits: Sequence[float] | np.ndarray) -> np.ndarray:
    """``s = softmax(a)`` over the last axis: the scalar mix's layer weights (they sum to 1).

    Args:
        logits: ``(..., S)`` the learned ``a`` (one per hidden state mixed).

    Returns:
        ``(..., S)`` float64 weights, each row summing to 1 (computed as
        ``exp(a - max a) / sum exp(a - max a)``, so large logits do not overflow).
    """
    a = np.asarray(logits, dtype=np.float64)
    z = np.exp(a - a.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def scalar_mix(
    states: Sequence[np.ndarray] | np.ndarray, logits: Sequence[float], gamma: float = 1.0
) -> np.ndarray:
    """``h = gamma * sum_l softmax(a)_l h_l``.

    Args:
        states: ``(S, ...)`` the hidden states to mix (e.g. ``(S, n_words, H)``).
        logits: ``(S,)`` the mix logits ``a``.
        gamma: the learned scale.

    Returns:
        ``(...)`` the mixed vectors (float64). The mix of ``S`` copies of one state with
        ``gamma = 1`` is that state, whatever the logits.
    """
    h = np.asarray(states, dtype=np.float64)
    s = mix_weights(logits)
    if s.shape != h.shape[:1]:
        raise ValueError(f"{s.shape[0]} mix logits for {h.shape[0]} states")
    return float(gamma) * np.tensordot(s, h, axes=1)


def expected_layer(weights: Sequence[float], layers: Sequence[int] | None = None) -> float:
    """``E_s[l] = sum_l l * s_l`` (Tenney et al. 2019, eq. 2) of mix weights summing to 1.

    Args:
        weights: ``(S,)`` the mix weights ``s`` (:func:`mix_weights`).
        layers: ``(S,)`` the layer index of each weight (default ``0 .. S-1``, embedding
            output first).

    Returns:
        The weighted mean layer index.
    """
    s = np.asarray(weights, dtype=np.float64)
    index = np.arange(s.shape[0]) if layers is None else np.asarray(layers, dtype=np.float64)
    if index.shape != s.shape:
        raise ValueError(f"{s.shape[0]} weights for {index.shape[0]} layers")
    return float(np.sum(index * s) / np.sum(s))


def score_deltas(scores: Sequence[float]) -> np.ndarray:
    """``Delta(l) = score(l) - score(l-1)`` for ``l = 1..L``: what layer ``l`` adds.

    Args:
        scores: ``(L+1,)`` the scores of the probes on the mixes of layers ``0..l``,
            ``l = 0..L`` (``scores[0]`` is the probe on layer 0 alone).

    Returns:
        ``(L,)`` the differential scores, ``Delta(1) .. Delta(L)``.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.shape[0] < 2:
        raise ValueError(f"need the scores of at least two cumulative mixes, got {s.shape}")
    return np.diff(s)


def cumulative_expected_layer(scores: Sequence[float]) -> float:
    """``E_Delta[l] = sum_{l=1..L} l * Delta(l) / sum_{l=1..L} Delta(l)`` (Tenney et al. 2019,
    eq. 1) from the scores of the cumulative mixes.

    Args:
        scores: ``(L+1,)`` ``score(0..l)`` for ``l = 0..L`` (see :func:`score_deltas`).

    Returns:
        The expected layer; NaN when the deltas sum to 0 (no layer above 0 adds anything, so
        the quantity is undefined). Negative deltas (a mix that scores lower than the one
        below it) are kept, as in the definition.
    """
    delta = score_deltas(scores)
    total = float(np.sum(delta))
    if total == 0.0:
        return float("nan")
    return float(np.sum(np.arange(1, delta.shape[0] + 1) * delta) / total)


def masked_mix_weights_tf(logits, allowed):
    """TensorFlow :func:`mix_weights` over the allowed states only (the others get weight 0).

    Args:
        logits: ``(P, S)`` float32 mix logits of ``P`` probes.
        allowed: ``(P, S)`` bool, the states each probe mixes (at least one per row).

    Returns:
        ``(P, S)`` weights: softmax of the allowed logits, exactly 0 elsewhere; a row with one
        allowed state has weight exactly 1 there (and a zero gradient).
    """
    import tensorflow as tf

    masked = tf.where(allowed, logits, tf.fill(tf.shape(logits), -1e30))
    z = tf.exp(masked - tf.reduce_max(masked, axis=-1, keepdims=True))
    z = tf.where(allowed, z, 0.0)
    return z / tf.reduce_sum(z, axis=-1, keepdims=True)
