"""Maximum spanning arborescence (Chu-Liu/Edmonds) for decoding dependency trees from arc scores.

A parser scores every arc ``head -> dependent``; the best *tree* is the maximum spanning
arborescence rooted at the artificial node 0 (ROOT) (Chu & Liu, 1965; Edmonds, 1967; applied
to dependency parsing by McDonald et al., 2005). The greedy algorithm: every word takes its
best head; if that makes a cycle ``C``, contract ``C`` into one node whose incoming arc from
``h`` scores ``max_{d in C} s(d, h) - s(d, head(d))`` (breaking the cycle at ``d``) and whose
outgoing arc to ``d'`` scores ``max_{h in C} s(d', h)``; solve the smaller graph and expand.

**One child of ROOT.** Universal Dependencies trees have exactly one word attached to ROOT;
the unconstrained optimum may attach several. Lowering every ROOT arc by a constant ``M``
larger than any difference between two trees' scores makes the optimum the best tree *with
the fewest ROOT arcs*, i.e. one (every tree has at least one): the best single-root tree,
in one run (Gabow & Tarjan, 1984; discussed for parsing by Zmigrod, Vieira & Cotterell,
"Please Mind the Root", EMNLP 2020).
"""

from __future__ import annotations

import numpy as np


def _find_cycle(heads: np.ndarray) -> list[int] | None:
    """A cycle of ``heads`` (nodes ``1..m-1``, ``heads[0]`` ignored), or ``None``."""
    m = heads.shape[0]
    state = np.zeros(m, dtype=np.int8)  # 0 unseen, 1 on the current path, 2 done
    state[0] = 2
    for start in range(1, m):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = int(heads[node])
        if state[node] == 1:
            return path[path.index(node) :]
        state[path] = 2
    return None


def _mst(scores: np.ndarray) -> np.ndarray:
    """Chu-Liu/Edmonds on ``scores[d, h]`` (``(m, m)``, ``-inf`` = no arc, node 0 the root).

    Returns ``(m,)`` heads, ``heads[0] = -1``. Recursion depth is the number of nested cycles.
    """
    m = scores.shape[0]
    heads = np.argmax(scores, axis=1)
    heads[0] = -1
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    in_cycle = np.zeros(m, dtype=bool)
    in_cycle[cycle] = True
    rest = np.flatnonzero(~in_cycle)  # root first (node 0 is never in a cycle)
    c = len(rest)  # index of the contracted node in the smaller graph
    cyc = np.asarray(cycle)
    sub = np.full((c + 1, c + 1), -np.inf)
    sub[:c, :c] = scores[np.ix_(rest, rest)]
    # arcs into the cycle: h outside -> d in C, gain s(d, h) - s(d, head(d))
    into = scores[np.ix_(cyc, rest)] - scores[cyc, heads[cyc]][:, None]  # (|C|, c)
    enter = np.argmax(into, axis=0)  # for each outside head, which cycle word it takes
    sub[c, :c] = into[enter, np.arange(c)]
    # arcs out of the cycle: h in C -> d outside
    out = scores[np.ix_(rest, cyc)]  # (c, |C|)
    leave = np.argmax(out, axis=1)
    sub[:c, c] = out[np.arange(c), leave]
    sub[0, :] = -np.inf
    sub_heads = _mst(sub)
    result = heads.copy()
    for k, node in enumerate(rest[1:], start=1):
        h = sub_heads[k]
        result[node] = cyc[leave[k]] if h == c else rest[h]
    h = sub_heads[c]  # the cycle's head (outside it); it takes the cycle word enter[h]
    result[cyc[enter[h]]] = rest[h]
    return result


def max_spanning_tree(scores: np.ndarray, *, single_root: bool = True) -> np.ndarray:
    """The highest-scoring dependency tree under arc scores.

    Args:
        scores: ``(n, n + 1)`` float, ``scores[i, j]`` the score of word ``i + 1`` taking head
            ``j`` (column 0 is ROOT, column ``j`` word ``j``); ``-inf`` forbids an arc. Self
            arcs (column ``i + 1`` of row ``i``) are ignored.
        single_root: exactly one word attached to ROOT (Universal Dependencies); else any
            number.

    Returns:
        ``(n,)`` int64 heads, 1-based, 0 for ROOT, forming a tree (every word reaches ROOT,
        no cycle) that maximises ``sum_i scores[i, heads[i]]`` under the constraint.

    Raises:
        ValueError: ``scores`` is not ``(n, n + 1)`` with ``n >= 1``, holds NaN, or forbids
            every tree.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] != s.shape[0] + 1:
        raise ValueError(f"scores must have shape (n, n + 1) with n >= 1, got {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores hold NaN")
    n = s.shape[0]
    full = np.full((n + 1, n + 1), -np.inf)  # full[d, h] over nodes 0..n
    full[1:, :] = s
    full[np.arange(n + 1), np.arange(n + 1)] = -np.inf
    finite = np.isfinite(full)
    if not finite[1:].any(axis=1).all():
        raise ValueError("a word has no allowed head: no tree exists")
    if not finite[1:, 0].any():
        raise ValueError("no word may attach to ROOT: no tree exists")
    if single_root and n > 1:
        spread = full[finite].max() - full[finite].min()
        full[1:, 0] -= (n + 1) * (spread + 1.0)  # larger than any two trees' difference
    heads = _mst(full)
    if not np.isfinite(full[np.arange(1, n + 1), heads[1:]]).all():
        raise ValueError("the allowed arcs do not connect every word to ROOT: no tree exists")
    return heads[1:].astype(np.int64)


def tree_score(scores: np.ndarray, heads: np.ndarray) -> float:
    """``sum_i scores[i, heads[i]]``: the score of a tree under ``(n, n + 1)`` arc scores."""
    s = np.asarray(scores, dtype=np.float64)
    h = np.asarray(heads, dtype=np.int64)
    return float(s[np.arange(h.shape[0]), h].sum())


def is_tree(heads: np.ndarray) -> bool:
    """Whether 1-based ``heads`` (0 = ROOT) reach ROOT from every word without a cycle."""
    h = np.asarray(heads, dtype=np.int64)
    n = h.shape[0]
    if n == 0 or h.min() < 0 or h.max() > n:
        return False
    return _find_cycle(np.concatenate([[0], h])) is None
