"""Pure NumPy maths of layer-wise model comparison: token cosine averages, linear CKA, RSA.

Every function takes arrays and returns arrays or floats; none changes its inputs. The
comparator (:mod:`bert_repro.plot.comparator`) streams batches through these.

Undefined values are NaN, never a number made of rounding noise: a side that does not vary
(all rows equal, all zero) counts as constant when its spread is at most
:data:`CONSTANT_RTOL` times its largest magnitude. NaN or inf in the inputs is an error
(:class:`~bert_repro.errors.DataError`), not a NaN result.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import DataError, check_choice
from ..ops import cosine_similarity, pairwise_cosine

RsaMethod = Literal["pearson", "spearman"]
RSA_METHODS: tuple[str, ...] = ("pearson", "spearman")
CONSTANT_RTOL = 1e-12
"""Values whose spread (max - min) is at most this times their largest magnitude are constant."""


def _constant(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """True where ``values`` do not vary beyond rounding (along ``axis``; all of it if None)."""
    values = np.asarray(values)
    return np.ptp(values, axis=axis) <= CONSTANT_RTOL * np.max(np.abs(values), axis=axis)


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what}: the inputs hold NaN or inf (check the hidden states)")


def _centre(x: np.ndarray) -> np.ndarray:
    """Column-centred copy; columns that do not vary become exactly 0 (not rounding noise)."""
    out = x - x.mean(axis=0, keepdims=True)
    out[:, _constant(x, axis=0)] = 0.0
    return out


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

    Raises:
        DataError: shapes that do not match, or NaN/inf at a counted position.
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
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite values: checked below
            cos = cosine_similarity(a[k], b[k])  # (B, T); NaN where an input is NaN or inf
        if not np.all(np.isfinite(cos[m])):
            bad = np.argwhere(m & ~np.isfinite(cos))[0]
            raise DataError(
                f"hidden states hold NaN or inf (layer index {k}, text row {bad[0]}, position "
                f"{bad[1]}): a model's output is not finite, so no similarity is computed"
            )
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
    _check_finite(x, what)
    _check_finite(y, what)
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
        The similarity; NaN when a side has no variance (all rows equal, e.g. all zero).

    Raises:
        DataError: shapes that do not match, fewer than 2 items, NaN or inf in the inputs.
    """
    x, y = _check_pair(x, y, "linear CKA")
    x, y = _centre(x), _centre(y)
    if not x.any() or not y.any():
        return float("nan")
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
    """Pearson or Spearman correlation of two equal-length vectors (NaN if one is constant).

    Raises:
        DataError: the lengths differ, or NaN or inf in the inputs.
    """
    check_choice("method", method, RSA_METHODS)
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.shape != v.shape or u.ndim != 1:
        raise DataError(f"correlation needs two vectors of one length; got {u.shape}, {v.shape}")
    _check_finite(u, "correlation")
    _check_finite(v, "correlation")
    if method == "spearman":
        from scipy.stats import rankdata

        u, v = rankdata(u), rankdata(v)
    if u.size < 2 or _constant(u) or _constant(v):
        return float("nan")
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
