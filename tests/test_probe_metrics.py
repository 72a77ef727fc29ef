"""UUAS, DSpr, root accuracy and NSpr on hand-worked trees and against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.stats import spearmanr

from bert_repro.probe.metrics import (
    depth_metrics,
    distance_metrics,
    dspr,
    mst_edges,
    nspr,
    predicted_root,
    root_accuracy,
    row_spearman,
    spearman_by_length,
    uuas,
    uuas_counts,
)
from bert_repro.treebank import tree_depths, tree_distances

# "The dog barked ." : The -> dog -> barked (root) <- "."
HEADS = [2, 3, 0, 3]
PUNCT = np.array([False, False, False, True])


def test_mst_by_hand():
    # Path 0-1-2 is cheapest; 0-2 is a long way round.
    d = np.array([[0, 1, 5], [1, 0, 2], [5, 2, 0]], dtype=float)
    assert mst_edges(d) == {(0, 1), (1, 2)}
    # keep only words 0 and 2: the only possible edge
    assert mst_edges(d, keep=np.array([True, False, True])) == {(0, 2)}
    assert mst_edges(d, keep=np.array([True, False, False])) == set()


def test_mst_zero_distances_are_edges_and_ties_resolve_in_row_major_order():
    # All distances equal (0): the reference's Kruskal takes pairs in row-major order, so the
    # tree is the star around word 0.
    d = np.zeros((4, 4))
    assert mst_edges(d) == {(0, 1), (0, 2), (0, 3)}
    d = np.ones((4, 4)) - np.eye(4)
    assert mst_edges(d) == {(0, 1), (0, 2), (0, 3)}


def test_mst_weight_matches_scipy():
    rng = np.random.default_rng(1)
    for n in [2, 5, 12, 30]:
        x = rng.normal(size=(n, 3))
        d = ((x[:, None] - x[None]) ** 2).sum(-1)
        edges = mst_edges(d)
        assert len(edges) == n - 1
        ours = sum(d[i, j] for i, j in edges)
        ref = minimum_spanning_tree(np.triu(d) + np.triu(np.full_like(d, 1e-12), 1)).sum()
        assert ours == pytest.approx(ref - (n - 1) * 1e-12, rel=1e-9)


def test_gold_mst_is_the_tree_without_punctuation():
    rng = np.random.default_rng(2)
    for n in [3, 8, 25]:
        order = rng.permutation(n)
        heads = [0] * n
        for k in range(1, n):
            heads[order[k]] = int(order[rng.integers(0, k)]) + 1
        edges = {tuple(sorted((i, h - 1))) for i, h in enumerate(heads) if h}
        assert mst_edges(tree_distances(heads)) == edges


def test_uuas_by_hand():
    gold = tree_distances(HEADS)
    # Prediction: The-barked and dog-barked are close; The-dog far. The punctuation mark is
    # predicted right next to everything, which must not matter since it is removed.
    pred = np.array(
        [
            [0.0, 9.0, 1.0, 0.1],
            [9.0, 0.0, 1.0, 0.1],
            [1.0, 1.0, 0.0, 0.1],
            [0.1, 0.1, 0.1, 0.0],
        ]
    )
    # gold edges without punctuation: (0,1), (1,2); predicted: (0,2), (1,2) -> 1 of 2
    assert uuas_counts(pred, gold, PUNCT) == (1, 2)
    assert uuas([pred], [gold], [PUNCT]) == 0.5
    # with the mark kept, the predicted tree is the star around it: only (2, 3) is a gold edge
    assert uuas_counts(pred, gold, None) == (1, 3)
    assert uuas([gold.astype(float)], [gold], [PUNCT]) == 1.0


def test_uuas_sums_over_the_corpus_not_over_sentences():
    gold_a = tree_distances(HEADS)  # 2 gold edges, 1 found below
    pred_a = np.array(
        [[0, 9, 1, 0], [9, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=float
    )  # punctuation row is all zeros: ignored
    heads_b = [0, 1, 2, 3]  # chain of 4: 3 gold edges, all found
    gold_b = tree_distances(heads_b)
    score = uuas([pred_a, gold_b.astype(float)], [gold_a, gold_b], [PUNCT, np.zeros(4, bool)])
    assert score == pytest.approx(4 / 5)  # not (1/2 + 3/3) / 2


def test_row_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, size=(6, 9)).astype(float)
    b = rng.normal(size=(6, 9))
    b[0] = a[0] * 2  # perfect
    ours = row_spearman(a, b)
    for i in range(6):
        assert ours[i] == pytest.approx(spearmanr(a[i], b[i]).correlation)
    assert np.isnan(row_spearman(np.ones(5), np.arange(5.0)))


def _chain(n):
    return [0] + list(range(1, n))  # word 1 root, word k+1 depends on word k


def test_dspr_by_hand():
    gold5 = tree_distances(_chain(5))
    # Any increasing function of the gold distance is a perfect ranking.
    assert dspr([gold5**2 + 1.0], [gold5]) == pytest.approx(1.0)
    # Reversed ranking within each row (the word itself then gets the largest value).
    assert dspr([-gold5.astype(float)], [gold5]) == pytest.approx(-1.0)


def test_dspr_averages_within_length_then_over_lengths_5_to_50():
    g5, g6 = tree_distances(_chain(5)), tree_distances(_chain(6))
    g4, g51 = tree_distances(_chain(4)), tree_distances(_chain(51))
    perfect5, reversed5 = g5.astype(float), -g5.astype(float)
    perfect6 = g6.astype(float)
    # length 5: one perfect and one reversed sentence -> mean 0; length 6: perfect -> 1;
    # lengths 4 and 51 are outside 5..50 and must not count.
    preds = [perfect5, reversed5, perfect6, -g4.astype(float), -g51.astype(float)]
    golds = [g5, g5, g6, g4, g51]
    assert dspr(preds, golds) == pytest.approx(0.5)  # (0 + 1) / 2; pooling all rows: 6/16
    assert np.isnan(dspr([g4.astype(float)], [g4]))  # no length in range


def test_dspr_by_hand_single_row_values():
    # Star with centre 0: gold row 0 = [0,1,1,1,1], others [1,0,2,2,2] (permuted).
    gold = tree_distances([0, 1, 1, 1, 1])
    pred = gold.astype(float).copy()
    pred[1, 2], pred[2, 1] = 5.0, 5.0  # row 1 gets a wrong largest value among ties
    expected = np.mean([spearmanr(pred[i], gold[i]).correlation for i in range(5)])
    assert dspr([pred], [gold]) == pytest.approx(expected)
    assert expected < 1.0


def test_spearman_by_length_one_value_per_distance_row_and_per_depth_vector():
    rng = np.random.default_rng(7)
    g3, g4 = tree_distances([0, 1, 1]), tree_distances(_chain(4))
    p3, p4 = rng.normal(size=(3, 3)), rng.normal(size=(4, 4))
    rows = spearman_by_length([p3, p4, p4 * 2], [g3, g4, g4])
    assert sorted(rows) == [3, 4]
    assert rows[3] == pytest.approx([spearmanr(p3[i], g3[i]).correlation for i in range(3)])
    expected4 = [spearmanr(p4[i], g4[i]).correlation for i in range(4)]
    assert rows[4] == pytest.approx(expected4 * 2)  # both length-4 sentences, in corpus order
    d4, d5 = tree_depths(_chain(4)), tree_depths(_chain(5))
    q4, q5 = rng.normal(size=4), rng.normal(size=5)
    depths = spearman_by_length([q4, q5, -q5], [d4, d5, d5])
    assert depths == {
        4: [pytest.approx(spearmanr(q4, d4).correlation)],
        5: [
            pytest.approx(spearmanr(q5, d5).correlation),
            pytest.approx(-spearmanr(q5, d5).correlation),
        ],
    }
    assert all(type(v) is float for v in depths[5])


def test_root_accuracy_skips_punctuation():
    gold = tree_depths(HEADS)  # [2, 1, 0, 1]: "barked" is the root
    # the full stop is predicted shallowest, then "barked": correct once punctuation is skipped
    pred = np.array([3.0, 2.0, 0.5, 0.1])
    assert predicted_root(pred, PUNCT) == 2
    assert predicted_root(pred, None) == 3
    assert root_accuracy([pred], [gold], [PUNCT]) == 1.0
    wrong = np.array([0.2, 2.0, 0.5, 0.1])
    assert root_accuracy([pred, wrong], [gold, gold], [PUNCT, PUNCT]) == 0.5
    # all punctuation: the shallowest word overall, as the reference does
    assert predicted_root(np.array([2.0, 1.0]), np.array([True, True])) == 1
    # ties: the first shallowest non-punctuation word
    assert predicted_root(np.array([0.5, 0.5, 0.1]), np.array([False, False, True])) == 0
    assert pred.tolist() == [3.0, 2.0, 0.5, 0.1]  # inputs untouched


def test_nspr_by_hand():
    g5 = tree_depths(_chain(5))  # [0, 1, 2, 3, 4]
    g6 = tree_depths([0, 1, 1, 2, 2, 3])  # [0, 1, 1, 2, 2, 3]
    p6 = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])  # ties of gold broken: rho < 1
    rho6 = spearmanr(p6, g6).correlation
    preds = [g5 + 0.5, -g5.astype(float), p6]
    # length 5: mean(1, -1) = 0; length 6: rho6
    assert nspr(preds, [g5, g5, g6]) == pytest.approx((0.0 + rho6) / 2)
    assert 0.9 < rho6 < 1.0


def test_metric_bundles():
    gold = tree_distances(HEADS)
    depths = tree_depths(HEADS)
    m = distance_metrics([gold.astype(float)], [gold], [PUNCT])
    assert m["uuas"] == 1.0 and np.isnan(m["dspr"])  # length 4 < 5
    m = depth_metrics([depths.astype(float)], [depths], [PUNCT])
    assert m["root_acc"] == 1.0


def test_metrics_are_permutation_consistent():
    """Relabelling the words of a sentence (the same permutation applied to prediction, gold
    and punctuation) does not change any metric, ties aside."""
    rng = np.random.default_rng(4)
    n = 9
    heads = [0] + [int(rng.integers(1, k + 1)) for k in range(1, n)]
    gold = tree_distances(heads)
    x = rng.normal(size=(n, 4))
    pred = ((x[:, None] - x[None]) ** 2).sum(-1)
    leaves = sorted(set(range(n)) - {h - 1 for h in heads if h})
    punct = np.zeros(n, bool)
    punct[leaves[:2]] = True  # punctuation as leaves: the gold tree without it has no ties
    perm = rng.permutation(n)
    a = distance_metrics([pred], [gold], [punct])
    b = distance_metrics([pred[np.ix_(perm, perm)]], [gold[np.ix_(perm, perm)]], [punct[perm]])
    for k in a:
        assert a[k] == pytest.approx(b[k])
