"""Pure NumPy maths of layer-wise model comparison: token cosine averages, linear CKA, RSA.

Every function takes arrays and returns arrays or floats; none changes its inputs. The
comparator (:mod:`bert_repro.plot.comparator`) streams batches through these.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import DataError, check_choice
from ..ops import cosine_similarity, pairwise_cosine

RsaMethod = Literal["pearson", "spearman"]
RSA_METHODS: tuple[str, ...] = ("pearson", "spearman")


def mean_token_cosine(
    a: np.ndarray, b: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per text and layer, the mean cosine similarity of two models' vectors for each token.

    For layer ``k`` and text ``i`` with counted positions ``S_i = {t : mask[i, t]}``::

        mean_cos[k, i] = (1 / |S_i|) * sum_{t in S_i} cos(a[k, i, t], b[k, i, t])

    Args:
        a: ``(K, B, T, H)`` the first model's hidden states (K layers, B texts, T positions).
        b: ``(K, B, T, H)`` the second model's, for the same inputs.
        mask: ``(B, T)`` 1/True on the positions to count (never padding).

    Returns:
        ``(mean_cos, counts)``: ``(K, B)`` float64 means and ``(B,)`` int64 counted positions.
        A text with no counted position gets mean 0 and count 0 (the caller leaves it out).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 4:
        raise DataError(f"hidden states must both be (K, B, T, H); got {a.shape} and {b.shape}")
    m = np.asarray(mask).astype(bool)
    if m.shape != a.shape[1:3]:
        raise DataError(f"mask {m.shape} does not match hidden states {a.shape} (K, B, T, H)")
    counts = m.sum(axis=1).astype(np.int64)  # (B,)
    out = np.empty(a.shape[:2], dtype=np.float64)
    for k in range(a.shape[0]):  # one layer at a time keeps the float64 copy small
        cos = cosine_similarity(a[k], b[k])  # (B, T)
        out[k] = np.where(m, cos, 0.0).sum(axis=1) / np.maximum(counts, 1)
    return out, counts


def _check_pair(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise DataError(f"{what} needs (n, d) matrices; got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{what} compares the same n items: got {x.shape[0]} and {y.shape[0]} rows")
    if x.shape[0] < 2:
        raise DataError(f"{what} needs at least 2 items, got {x.shape[0]}")
    return x, y


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith, Norouzi, Lee & Hinton, ICML 2019).

    With ``X`` and ``Y`` column-centred (each feature's mean over the n items subtracted)::

        CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F * ||Y^T Y||_F)

    which equals ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` for the linear kernels
    ``K = X X^T``, ``L = Y Y^T``. It lies in [0, 1], is 1 for ``Y = X``, and is invariant to
    orthogonal transforms and isotropic scaling of either side (not to arbitrary invertible
    linear maps).

    Args:
        x: ``(n, d1)`` representations of n items (e.g. tokens) by one model/layer.
        y: ``(n, d2)`` representations of the same items by another.

    Returns:
        The similarity; NaN when a side has no variance (all rows equal).
    """
    x, y = _check_pair(x, y, "linear CKA")
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    # Feature-space form costs O(n d^2); the Gram form O(n^2 d). Use the cheaper one.
    if x.shape[0] < max(x.shape[1], y.shape[1]):
        k, l_ = x @ x.T, y @ y.T  # (n, n)
        cross, nx, ny = np.sum(k * l_), np.linalg.norm(k), np.linalg.norm(l_)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        nx, ny = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    denom = nx * ny
    if denom <= 0.0:
        return float("nan")
    return float(cross / denom)


def upper_triangle(m: np.ndarray) -> np.ndarray:
    """The strictly-upper-triangular entries of a square ``(n, n)`` matrix, row by row."""
    m = np.asarray(m)
    i, j = np.triu_indices(m.shape[0], k=1)
    return m[i, j]


def correlation(u: np.ndarray, v: np.ndarray, method: RsaMethod = "pearson") -> float:
    """Pearson or Spearman correlation of two equal-length vectors (NaN if one is constant)."""
    check_choice("method", method, RSA_METHODS)
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if method == "spearman":
        from scipy.stats import rankdata

        u, v = rankdata(u), rankdata(v)
    u = u - u.mean()
    v = v - v.mean()
    denom = np.sqrt(np.dot(u, u) * np.dot(v, v))
    if denom <= 0.0:
        return float("nan")
    return float(np.clip(np.dot(u, v) / denom, -1.0, 1.0))


def rsa(x: np.ndarray, y: np.ndarray, method: RsaMethod = "pearson") -> float:
    """Representational similarity analysis of two models on the same n items.

    Each side's representational similarity matrix is the item-by-item cosine similarity
    ``S_X[i, j] = cos(x_i, x_j)``; RSA is the correlation between the strictly-upper
    triangles of ``S_X`` and ``S_Y`` (``n (n - 1) / 2`` pairs), Pearson by default as in
    Merchant et al. (2020) (Kriegeskorte et al. 2008 for the method), Spearman on request.

    Args:
        x: ``(n, d1)`` representations; y: ``(n, d2)`` of the same items.
        method: ``"pearson"`` or ``"spearman"``.

    Returns:
        The correlation in [-1, 1]; NaN when a similarity matrix is constant.
    """
    check_choice("method", method, RSA_METHODS)
    x, y = _check_pair(x, y, "RSA")
    return correlation(
        upper_triangle(pairwise_cosine(x)), upper_triangle(pairwise_cosine(y)), method
    )
