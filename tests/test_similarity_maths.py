"""Pure maths of the comparison: linear CKA, RSA, masked token cosine, the token sample."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group, spearmanr

from bert_repro.errors import ConfigError, DataError
from bert_repro.plot.sampling import TokenSample, token_priorities
from bert_repro.plot.similarity import correlation, linear_cka, mean_token_cosine, rsa


def naive_cka(x, y):
    """HSIC form with an explicit centring matrix: tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def naive_rsa(x, y):
    n = x.shape[0]

    def cos(a, b):
        return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))

    sx = [cos(x[i], x[j]) for i in range(n) for j in range(i + 1, n)]
    sy = [cos(y[i], y[j]) for i in range(n) for j in range(i + 1, n)]
    return np.corrcoef(sx, sy)[0, 1]


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12))
    y = x @ rng.normal(size=(12, 7)) + 0.5 * rng.normal(size=(40, 7))
    return x, y


@pytest.mark.parametrize("n", [5, 40])  # Gram form (n < d) and feature form (n >= d)
def test_linear_cka_matches_naive_formula(n, xy):
    x, y = xy[0][:n], xy[1][:n]
    assert linear_cka(x, y) == pytest.approx(naive_cka(x, y), rel=1e-10)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), rel=1e-12)
    assert 0.0 <= linear_cka(x, y) <= 1.0


def test_linear_cka_invariances(xy):
    x, y = xy
    q = ortho_group.rvs(12, random_state=1)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 3.7 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x @ q, 0.2 * y) == pytest.approx(linear_cka(x, y), rel=1e-10)
    # not invariant to an arbitrary invertible map: anisotropic scaling changes it
    d = np.diag(np.linspace(0.1, 10, 12))
    assert abs(linear_cka(x @ d, y) - linear_cka(x, y)) > 1e-3
    # independent noise is far from 1
    rng = np.random.default_rng(5)
    assert linear_cka(rng.normal(size=(400, 8)), rng.normal(size=(400, 8))) < 0.1


def test_linear_cka_degenerate_and_bad_shapes():
    x = np.ones((6, 3))
    assert np.isnan(linear_cka(x, np.random.default_rng(0).normal(size=(6, 3))))
    with pytest.raises(DataError, match="same n items"):
        linear_cka(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(DataError, match="at least 2"):
        linear_cka(np.zeros((1, 2)), np.zeros((1, 2)))


def test_rsa_matches_naive_and_is_one_for_identical(xy):
    x, y = xy
    assert rsa(x, y) == pytest.approx(naive_rsa(x, y), rel=1e-10)
    assert rsa(x, x) == pytest.approx(1.0, abs=1e-12)
    q = ortho_group.rvs(12, random_state=2)
    assert rsa(x, 2.5 * x @ q) == pytest.approx(1.0, abs=1e-10)  # cosine survives rotation
    # Spearman: the rank correlation of the same upper triangles
    iu = np.triu_indices(len(x), k=1)
    nx = x / np.linalg.norm(x, axis=1, keepdims=True)
    ny = y / np.linalg.norm(y, axis=1, keepdims=True)
    ref = spearmanr((nx @ nx.T)[iu], (ny @ ny.T)[iu]).statistic
    assert rsa(x, y, method="spearman") == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ConfigError, match="'pearson', 'spearman'"):
        rsa(x, y, method="kendall")


def test_spearman_correlation_matches_scipy():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=50), rng.normal(size=50)
    assert correlation(u, v, "spearman") == pytest.approx(spearmanr(u, v).statistic, rel=1e-12)
    assert correlation(u, u * 3 + 1) == pytest.approx(1.0)
    assert np.isnan(correlation(u, np.ones(50)))


def test_mean_token_cosine_matches_loop():
    rng = np.random.default_rng(4)
    k, b, t, h = 3, 4, 6, 5
    a = rng.normal(size=(k, b, t, h)).astype(np.float32)
    c = rng.normal(size=(k, b, t, h)).astype(np.float32)
    mask = rng.random((b, t)) < 0.6
    mask[2] = False  # a text with nothing to count
    means, counts = mean_token_cosine(a, c, mask)
    for kk in range(k):
        for i in range(b):
            cs = [
                np.dot(a[kk, i, j], c[kk, i, j])
                / (np.linalg.norm(a[kk, i, j]) * np.linalg.norm(c[kk, i, j]))
                for j in range(t)
                if mask[i, j]
            ]
            assert means[kk, i] == pytest.approx(np.mean(cs) if cs else 0.0, rel=1e-6)
    np.testing.assert_array_equal(counts, mask.sum(axis=1))
    # values at unmasked positions (e.g. padding) do not matter
    a2 = a.copy()
    a2[:, ~mask] = 1e6
    np.testing.assert_allclose(mean_token_cosine(a2, c, mask)[0], means)


def test_token_priorities_are_a_pure_function():
    p = token_priorities(0, np.array([0, 0, 1, 7]), np.array([1, 2, 1, 1]))
    assert p.dtype == np.uint64 and len(set(p.tolist())) == 4
    np.testing.assert_array_equal(
        p, token_priorities(0, np.array([0, 0, 1, 7]), np.array([1, 2, 1, 1]))
    )
    assert not np.array_equal(
        p, token_priorities(1, np.array([0, 0, 1, 7]), np.array([1, 2, 1, 1]))
    )


def test_token_sample_is_bottom_k_whatever_the_batching():
    rng = np.random.default_rng(6)
    n_texts, t, h, k = 23, 9, 4, 2
    lengths = rng.integers(1, t + 1, n_texts)
    hidden = rng.normal(size=(k, n_texts, t, h)).astype(np.float32)
    valid = np.arange(t)[None, :] < lengths[:, None]
    # reference: all valid tokens, the `size` of lowest priority, in priority order
    rows, cols = np.nonzero(valid)
    prio = token_priorities(9, rows, cols)
    size = 30
    best = np.argsort(prio)[:size]
    expected = hidden[:, rows[best], cols[best]]
    for batch in (1, 4, 23):
        order = rng.permutation(n_texts)  # any batch order
        sample = TokenSample(size, seed=9)
        for start in range(0, n_texts, batch):
            idx = order[start : start + batch]
            outs = [hidden[:, idx], 2 * hidden[:, idx]]
            sample.update(outs, valid[idx], idx)
        got = sample.vectors()
        assert sample.filled == size and sample.seen == valid.sum()
        np.testing.assert_array_equal(got[0], expected)
        np.testing.assert_array_equal(got[1], 2 * expected)
    small = TokenSample(1000, seed=9)
    small.update([hidden], valid, np.arange(n_texts))
    assert small.filled == valid.sum()
    with pytest.raises(ConfigError):
        TokenSample(-1)
