"""Structural-probe metrics, computed as Hewitt & Manning's reporting code does (NAACL 2019).

Every function takes per-sentence NumPy arrays (already cut to the sentence's length, no
padding) and returns plain floats; nothing changes its inputs.

* **UUAS**: the minimum spanning tree over the predicted distances of the non-punctuation
  words, compared with the spanning tree over the gold distances of the same words; the share
  of gold (undirected) edges found, summed over the corpus (total correct / total gold).
* **DSpr**: Spearman correlation between each word's row of predicted and gold distances
  (punctuation included), averaged over all words of all sentences of the same length, then
  averaged over the lengths 5..50 present.
* **Root accuracy**: share of sentences whose shallowest predicted non-punctuation word is the
  gold root.
* **NSpr**: Spearman correlation of predicted vs gold depths per sentence, averaged within each
  length, then over lengths 5..50.

And the edge probes' score (Tenney et al., ICLR 2019), :func:`micro_f1`: true positives, false
positives and false negatives summed over all labels, then F1 of those sums.

As in the reference, a per-length mean over correlations that include an undefined value (a
constant row of predictions) is NaN: a collapsed probe is reported, not hidden. (Written to
``results.json`` as ``null`` and to the CSV as an empty cell.) A NaN or inf in the *predictions*
(from NaN/inf features or a diverged probe) is an error, :class:`~bert_repro.errors.DataError`
naming the sentence: sorting and ``argmin`` would otherwise turn it into a plausible number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.stats import rankdata

from ..errors import DataError

MIN_LENGTH = 5
MAX_LENGTH = 50


def _finite(predicted, i: int) -> np.ndarray:
    """``predicted`` as an array, refusing NaN/inf (they would sort as plausible values)."""
    p = np.asarray(predicted)
    if not np.all(np.isfinite(p)):
        raise DataError(
            f"the predictions for sentence {i} hold NaN or inf: the word features or the probe "
            "are not finite (check the features with np.isfinite); no metric is computed"
        )
    return p


def mst_edges(distances: np.ndarray, keep: np.ndarray | None = None) -> set[tuple[int, int]]:
    """Edges of the minimum spanning tree over a distance matrix (Kruskal's algorithm).

    Candidate pairs ``i < j`` are taken in increasing distance with ties in row-major order
    (a stable sort), which is the order the reference's Kruskal loop uses, so ties (frequent in
    gold distance matrices) resolve the same way. Zero distances are ordinary edges.

    Args:
        distances: ``(n, n)`` symmetric distances (only the upper triangle is read).
        keep: ``(n,)`` bool, the words that may be in the tree (default all); the others
            (punctuation) are left out entirely.

    Returns:
        Undirected edges as ``(i, j)`` with ``i < j``, indices into the full ``n`` words;
        ``k - 1`` edges for ``k`` kept words.
    """
    d = np.asarray(distances)
    n = d.shape[0]
    nodes = np.arange(n) if keep is None else np.flatnonzero(np.asarray(keep, dtype=bool))
    if nodes.size < 2:
        return set()
    iu, ju = np.triu_indices(nodes.size, k=1)  # row-major order of pairs i < j
    weights = d[nodes[iu], nodes[ju]]
    order = np.argsort(weights, kind="stable")
    parent = list(range(nodes.size))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    edges: set[tuple[int, int]] = set()
    for k in order:
        a, b = find(int(iu[k])), find(int(ju[k]))
        if a != b:
            parent[a] = b
            edges.add((int(nodes[iu[k]]), int(nodes[ju[k]])))
            if len(edges) == nodes.size - 1:
                break
    return edges


def uuas_counts(
    predicted: np.ndarray, gold: np.ndarray, punctuation: np.ndarray | None = None
) -> tuple[int, int]:
    """``(correct, total)`` gold edges of one sentence recovered by the predicted MST.

    Args:
        predicted: ``(n, n)`` predicted (squared) distances.
        gold: ``(n, n)`` gold tree distances.
        punctuation: ``(n,)`` bool, words left out of both trees (default none).

    Returns:
        Gold-tree edges among the non-punctuation words found in the predicted tree, and the
        number of gold edges.
    """
    keep = None if punctuation is None else ~np.asarray(punctuation, dtype=bool)
    gold_edges = mst_edges(gold, keep)
    pred_edges = mst_edges(predicted, keep)
    return len(gold_edges & pred_edges), len(gold_edges)


def uuas(
    predicted: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray] | None = None,
) -> float:
    """Undirected unlabelled attachment score over a corpus, punctuation removed.

    Args:
        predicted: per sentence ``(n_i, n_i)`` predicted distances.
        gold: per sentence ``(n_i, n_i)`` gold tree distances.
        punctuation: per sentence ``(n_i,)`` bool punctuation marks (default none).

    Returns:
        ``sum(correct) / sum(gold edges)`` over all sentences; NaN when there is no gold edge.
    """
    puncts = [None] * len(gold) if punctuation is None else punctuation
    correct = total = 0
    for i, (p, g, m) in enumerate(zip(predicted, gold, puncts, strict=True)):
        c, t = uuas_counts(_finite(p, i), g, m)
        correct += c
        total += t
    return correct / total if total else float("nan")


def row_spearman(predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``predicted`` with the same row of ``gold``.

    Equal to ``scipy.stats.spearmanr(predicted[i], gold[i]).correlation`` for every row ``i``
    (Pearson correlation of average ranks), vectorised.

    Args:
        predicted, gold: ``(m, n)`` (or ``(n,)``, a single row).

    Returns:
        ``(m,)`` (or a 0-d array); NaN for a row where either side is constant.
    """
    a = rankdata(np.asarray(predicted, dtype=np.float64), axis=-1)
    b = rankdata(np.asarray(gold, dtype=np.float64), axis=-1)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    num = np.sum(a * b, axis=-1)
    den = np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def mean_over_lengths(
    values_by_length: dict[int, list[float]],
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
) -> float:
    """Average within each sentence length, then over the lengths in ``[min, max]`` present.

    Returns:
        The mean of per-length means (``np.mean``, so a NaN value makes its length NaN); NaN
        when no sentence has a length in range.
    """
    means = [
        float(np.mean(values_by_length[n]))
        for n in range(min_length, max_length + 1)
        if values_by_length.get(n)
    ]
    return float(np.mean(means)) if means else float("nan")


def spearman_by_length(
    predicted: Iterable[np.ndarray], gold: Iterable[np.ndarray]
) -> dict[int, list[float]]:
    """Per sentence length ``n``, the Spearman correlations of the sentences of that length.

    A sentence's ``(n, n)`` distances give ``n`` values (one per word's row, DSpr), its ``(n,)``
    depths one value (NSpr): :func:`row_spearman` correlates along the last axis.
    """
    pairs: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for i, (p, g) in enumerate(zip(predicted, gold, strict=True)):
        mine = pairs[np.shape(g)[0]]
        mine[0].append(_finite(p, i))
        mine[1].append(np.asarray(g))
    out = {}
    for n, (p, g) in pairs.items():  # one call per length: the rows of all its sentences
        p, g = np.stack(p), np.stack(g)  # (k, n, n) or (k, n)
        out[n] = row_spearman(p.reshape(-1, n), g.reshape(-1, n)).tolist()
    return out


def length_spearman(
    predicted: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    min_length: int = MIN_LENGTH,
    max_length: int = MAX_LENGTH,
) -> float:
    """Hewitt & Manning's Spearman metrics of a probe over a corpus: the Spearman correlations
    of the predictions with the gold, averaged within each sentence length ``n``, then over
    the lengths in ``[min_length, max_length]`` (5..50 in the paper).

    - **DSpr.** (distance Spearman, :data:`dspr`): per sentence ``(n_i, n_i)`` predicted
      distances and gold tree distances; a sentence gives one value per word row,
      ``spearman(predicted[i, :], gold[i, :])``.
    - **NSpr.** (norm Spearman, :data:`nspr`): per sentence ``(n_i,)`` predicted depths
      (squared norms) and gold tree depths; a sentence gives one value,
      ``spearman(predicted, gold)``.

    Returns:
        The mean over lengths in range of the mean of that length's values; NaN when no
        sentence has a length in range.
    """
    return mean_over_lengths(spearman_by_length(predicted, gold), min_length, max_length)


#: Distance Spearman (DSpr.) of a distance probe: :func:`length_spearman` of distances.
dspr = length_spearman
#: Norm Spearman (NSpr.) of a depth probe: :func:`length_spearman` of depths.
nspr = length_spearman


def predicted_root(predicted: np.ndarray, punctuation: np.ndarray | None = None) -> int:
    """Index of the shallowest predicted word, skipping punctuation (first one on ties).

    When every word is punctuation, the shallowest word overall (as the reference does).
    """
    p = np.asarray(predicted)
    if punctuation is None:
        return int(np.argmin(p))
    keep = np.flatnonzero(~np.asarray(punctuation, dtype=bool))
    if keep.size == 0:
        return int(np.argmin(p))
    return int(keep[np.argmin(p[keep])])


def root_accuracy(
    predicted: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray] | None = None,
) -> float:
    """Share of sentences whose shallowest predicted non-punctuation word is the gold root.

    Args:
        predicted: per sentence ``(n_i,)`` predicted depths.
        gold: per sentence ``(n_i,)`` gold depths (the root has depth 0).
        punctuation: per sentence ``(n_i,)`` bool punctuation marks (default none).

    Returns:
        Correct sentences / sentences; NaN for an empty corpus.
    """
    puncts = [None] * len(gold) if punctuation is None else punctuation
    correct = total = 0
    for i, (p, g, m) in enumerate(zip(predicted, gold, puncts, strict=True)):
        gold_root = int(np.flatnonzero(np.asarray(g) == 0)[0])
        correct += int(predicted_root(_finite(p, i), m) == gold_root)
        total += 1
    return correct / total if total else float("nan")


def distance_metrics(
    predicted: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """``{"uuas": ..., "dspr": ...}`` for a distance probe's predictions on a corpus."""
    return {"uuas": uuas(predicted, gold, punctuation), "dspr": dspr(predicted, gold)}


def depth_metrics(
    predicted: Sequence[np.ndarray],
    gold: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """``{"root_acc": ..., "nspr": ...}`` for a depth probe's predictions on a corpus."""
    return {
        "root_acc": root_accuracy(predicted, gold, punctuation),
        "nspr": nspr(predicted, gold),
    }


def micro_f1(gold: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> float:
    """Micro-averaged F1 of single-label predictions (the edge probes' score).

    Every example has one gold label and one predicted label. Summed over the labels ``c``:
    ``TP = sum_c |gold = c and pred = c|``, ``FP = sum_c |pred = c and gold != c|``,
    ``FN = sum_c |gold = c and pred != c|``; then ``P = TP / (TP + FP)``, ``R = TP / (TP +
    FN)``, ``F1 = 2PR / (P + R)``. A wrong prediction is one false positive (of the predicted
    label) and one false negative (of the gold label), so ``P = R = F1 = accuracy`` here.

    Args:
        gold, predicted: ``(n,)`` integer labels.

    Returns:
        The micro F1; NaN for no examples.
    """
    g = np.asarray(gold).reshape(-1)
    p = np.asarray(predicted).reshape(-1)
    if g.shape != p.shape:
        raise ValueError(f"{g.shape[0]} gold labels but {p.shape[0]} predictions")
    if g.size == 0:
        return float("nan")
    labels = np.union1d(g, p)
    hit = g == p
    tp = sum(int(np.sum(hit & (g == c))) for c in labels)
    fp = sum(int(np.sum(~hit & (p == c))) for c in labels)
    fn = sum(int(np.sum(~hit & (g == c))) for c in labels)
    if tp == 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)
