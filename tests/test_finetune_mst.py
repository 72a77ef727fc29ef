"""Chu-Liu/Edmonds decoding against a brute force over every dependency tree of small graphs."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from bert_repro.finetune.mst import is_tree, max_spanning_tree, tree_score
from bert_repro.treebank import tree_depths


@functools.cache
def all_trees(n: int) -> np.ndarray:
    """``(K, n)`` every head assignment of ``n`` words that is a tree (by the treebank's own
    cycle check, not the decoder's)."""
    trees = []
    for heads in itertools.product(range(n + 1), repeat=n):
        if any(h == i + 1 for i, h in enumerate(heads)):
            continue
        try:
            tree_depths(np.asarray(heads))
        except ValueError:  # a cycle
            continue
        trees.append(heads)
    return np.asarray(trees, dtype=np.int64)


def brute_force(scores: np.ndarray, single_root: bool) -> np.ndarray:
    n = scores.shape[0]
    trees = all_trees(n)
    if single_root:
        trees = trees[(trees == 0).sum(axis=1) == 1]
    totals = scores[np.arange(n), trees].sum(axis=1)
    return trees[np.argmax(totals)]


def test_all_trees_are_counted_by_cayley():
    # (n + 1)^(n - 1) rooted trees on n words plus ROOT; n^(n - 1) with one child of ROOT.
    for n in range(1, 6):
        trees = all_trees(n)
        assert len(trees) == (n + 1) ** (n - 1)
        assert ((trees == 0).sum(axis=1) == 1).sum() == n ** (n - 1)


@pytest.mark.parametrize("single_root", [True, False])
def test_mst_equals_brute_force_on_random_graphs(single_root):
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 6))
        scale = rng.choice([0.1, 1.0, 10.0])
        scores = rng.normal(0, scale, size=(n, n + 1))
        if trial % 3 == 0:  # root arcs that are attractive: unconstrained optima with many roots
            scores[:, 0] += 2 * scale
        heads = max_spanning_tree(scores, single_root=single_root)
        assert is_tree(heads), heads
        if single_root:
            assert (heads == 0).sum() == 1
        best = brute_force(scores, single_root)
        np.testing.assert_array_equal(heads, best, err_msg=f"trial {trial}, n {n}")
        assert tree_score(scores, heads) == pytest.approx(tree_score(scores, best))


def test_the_root_constraint_changes_the_answer_when_several_words_prefer_root():
    scores = np.array([[5.0, -np.inf, 0.0], [5.0, 1.0, -np.inf]])  # both words love ROOT
    np.testing.assert_array_equal(max_spanning_tree(scores, single_root=False), [0, 0])
    np.testing.assert_array_equal(max_spanning_tree(scores), [0, 1])  # 5 + 1 > 0 + 5


def test_forbidden_arcs_are_never_used_and_long_sentences_are_trees():
    rng = np.random.default_rng(1)
    for n in (8, 30, 80):
        scores = rng.normal(size=(n, n + 1))
        forbid = rng.random((n, n + 1)) < 0.3
        forbid[:, 0] = False  # every word may attach to ROOT
        scores[forbid] = -np.inf
        heads = max_spanning_tree(scores)
        assert is_tree(heads) and (heads == 0).sum() == 1
        assert np.isfinite(scores[np.arange(n), heads]).all()
        # a greedy tree is an upper bound the MST can only reach when greedy is a tree
        assert tree_score(scores, heads) <= np.max(scores, axis=1).sum() + 1e-9


def test_a_greedy_tree_is_returned_as_is():
    scores = np.full((3, 4), -1.0)
    scores[0, 0], scores[1, 1], scores[2, 2] = 3.0, 2.0, 2.0  # chain 1 <- 2 <- 3
    np.testing.assert_array_equal(max_spanning_tree(scores), [0, 1, 2])


def test_bad_scores_raise():
    with pytest.raises(ValueError, match=r"shape \(n, n \+ 1\)"):
        max_spanning_tree(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        max_spanning_tree(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="ROOT"):
        max_spanning_tree(np.array([[-np.inf, 0.0, 1.0], [-np.inf, 1.0, 0.0]]))
