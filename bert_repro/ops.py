"""Pure NumPy maths shared by every part of the package: masked means, cosine similarity,
wordpiece pooling. Each function takes and returns arrays; none changes its inputs.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from .errors import check_choice

SubwordPooling = Literal["mean", "first", "last"]
SUBWORD_POOLINGS: tuple[str, ...] = get_args(SubwordPooling)


def masked_mean(x: np.ndarray, mask: np.ndarray, axis: int = -2) -> np.ndarray:
    """Mean of ``x`` over ``axis`` counting only positions where ``mask`` is true.

    Args:
        x: values, e.g. hidden states ``(..., T, H)``.
        mask: ``(..., T)`` booleans or 0/1, broadcast against ``x`` with the reduced axis kept;
            ``x.ndim - 1`` dims when ``axis`` indexes the second-to-last dimension of ``x``.
        axis: the axis of ``x`` to reduce (default: the token axis of ``(..., T, H)``).

    Returns:
        ``x`` reduced over ``axis``; rows whose mask is all false give 0 (the count is clamped
        to 1), never NaN.
    """
    x = np.asarray(x)
    m = np.asarray(mask).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
    if m.ndim == x.ndim - 1:
        m = np.expand_dims(m, -1)
    total = np.sum(x * m, axis=axis)
    count = np.maximum(np.sum(np.broadcast_to(m, x.shape), axis=axis), 1)
    return total / count


def cosine_similarity(x: np.ndarray, y: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Cosine similarity along the last axis, ``x.y / max(|x| |y|, eps)``.

    The denominator is clamped (as ``torch.nn.functional.cosine_similarity`` does), so a zero
    vector has similarity 0 with anything, not NaN.

    Args:
        x, y: arrays broadcastable to each other, vectors in the last axis ``(..., H)``.
        eps: the smallest denominator.

    Returns:
        ``(...)`` similarities in [-1, 1] (a scalar array for two vectors).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dot = np.sum(x * y, axis=-1)
    norms = np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1)
    return dot / np.maximum(norms, eps)


def pairwise_cosine(a: np.ndarray, b: np.ndarray | None = None, eps: float = 1e-8) -> np.ndarray:
    """Matrix of cosine similarities between the rows of ``a`` ``(N, H)`` and ``b`` ``(M, H)``.

    Returns:
        ``(N, M)``; with ``b=None``, ``(N, N)`` between the rows of ``a``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = a if b is None else np.asarray(b, dtype=np.float64)
    an = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), eps)
    bn = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), eps)
    return an @ bn.T


def pool_wordpieces(
    hidden: np.ndarray,
    word_index: np.ndarray,
    n_words: int | None = None,
    how: SubwordPooling = "mean",
) -> np.ndarray:
    """Pool wordpiece vectors into word vectors.

    Args:
        hidden: ``(..., T, H)`` wordpiece vectors (e.g. ``(L+1, T, H)`` for all layers).
        word_index: ``(T,)`` the word each wordpiece belongs to, ``-1`` for special tokens and
            padding (which are never pooled).
        n_words: number of words (default ``max(word_index) + 1``).
        how: ``"mean"`` of the word's pieces, its ``"first"`` or its ``"last"`` piece.

    Returns:
        ``(..., n_words, H)``; a word with no piece gets zeros.
    """
    check_choice("how", how, SUBWORD_POOLINGS)
    hidden = np.asarray(hidden)
    word_index = np.asarray(word_index)
    if n_words is None:
        n_words = int(word_index.max()) + 1 if word_index.size else 0
    out = np.zeros((*hidden.shape[:-2], n_words, hidden.shape[-1]), dtype=hidden.dtype)
    for w in range(n_words):
        pieces = np.flatnonzero(word_index == w)
        if pieces.size == 0:
            continue
        if how == "mean":
            out[..., w, :] = hidden[..., pieces, :].mean(axis=-2)
        elif how == "first":
            out[..., w, :] = hidden[..., pieces[0], :]
        else:
            out[..., w, :] = hidden[..., pieces[-1], :]
    return out
