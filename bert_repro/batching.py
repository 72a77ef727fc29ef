"""Batch planning: which texts share a forward pass, and the length they are padded to.

A forward pass over ``B`` sequences padded to ``T`` wordpieces costs about

    cost(B, T) = overhead + B * T * (1 + T / attention_width)

token-equivalents: per token and layer a BERT encoder does ``8H^2 + 4HI`` FLOPs of dense
projections and ``4TH`` of attention, so ``attention_width = (8H^2 + 4HI) / 4H = 2H + I``
(:func:`attention_width`); ``overhead`` is the fixed cost of one call. Everything computed on
padding is wasted, and every call pays the overhead, so the planners here choose the batches
that minimise the total cost under a memory budget of ``max_tokens`` padded wordpieces per batch:

* :func:`token_budget_plan` (graph mode, any shape is free): an exact dynamic programme over
  the texts sorted by length. Short texts go in wide batches, long ones in narrow batches,
  and a few very long texts are not allowed to drag many short ones up to their length.
* :func:`bucket_widths` + :func:`bucketed_plan` (XLA, where every new shape compiles): at most
  ``max_buckets`` padded lengths, chosen from the data to minimise the padding cost, and one
  row count per length, so the compiled shapes stay few (at most ``2 * max_buckets``).
* :func:`plan_batches`: fixed-size batches of length-sorted items (fine-tuning predictions,
  where the batch size is a training hyper-parameter).
* :func:`length_grouped_batches`: the endless stream of fine-tuning batches, each of exactly the
  training batch size, shuffled pass after pass but grouped by length within windows of a few
  dozen batches, so a batch of short items is not padded to a long one;
  :func:`length_grouped_order` is one such pass (every item once) for the probes' epochs.

All are pure NumPy: deterministic (ties keep the input order) and testable without TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from .errors import ConfigError

#: Padded wordpieces per batch. On this project's 2-core CPU the forward rate is flat from
#: ~1.5k to ~4k tokens a batch (benchmarks/bench_extraction.py --budgets); GPUs like more.
DEFAULT_MAX_TOKENS = 2048
#: Fixed cost of one forward call, in token-equivalents (measured: ~10 ms a call for MiniLM).
DEFAULT_OVERHEAD_TOKENS = 64.0
DEFAULT_MAX_BUCKETS = 8
#: Batches per length-sorted window of :func:`length_grouped_batches` (transformers'
#: ``LengthGroupedSampler`` sorts "mega-batches" of 50 batches).
DEFAULT_WINDOW_BATCHES = 50


class Batch(NamedTuple):
    """One planned batch: ``index`` ``(B,)`` item positions, padded to ``length`` wordpieces."""

    index: np.ndarray
    length: int


def attention_width(config) -> float:
    """``2H + I``: the sequence length at which attention costs as much as the dense layers."""
    return 2.0 * int(config.hidden_size) + int(config.intermediate_size)


def round_up(n, multiple: int):
    """``n`` rounded up to a multiple of ``multiple`` (ints or integer arrays)."""
    return ((n + multiple - 1) // multiple) * multiple


def _check(lengths, max_tokens: int, max_batch: int | None, pad_multiple: int) -> np.ndarray:
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if lengths.size and lengths.min() < 1:
        raise ConfigError("every item needs at least one wordpiece")
    for name, v in (("max_tokens", max_tokens), ("pad_multiple", pad_multiple)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{name} must be a positive int, got {v!r}")
    if max_batch is not None and (
        not isinstance(max_batch, (int, np.integer)) or isinstance(max_batch, bool) or max_batch < 1
    ):
        raise ConfigError(f"max_batch must be a positive int or None, got {max_batch!r}")
    return lengths


def _padded(lengths: np.ndarray, pad_multiple: int, max_length: int | None) -> np.ndarray:
    """Padded widths; rounding never goes beyond ``max_length`` (an item's own length may)."""
    widths = round_up(lengths, pad_multiple)
    if max_length is not None:
        widths = np.minimum(widths, np.maximum(lengths, int(max_length)))
    return widths


def _rows(widths: np.ndarray, max_tokens: int, max_batch: int | None) -> np.ndarray:
    """Rows a batch of this width may hold (at least one: a text longer than the budget runs
    alone)."""
    rows = np.maximum(1, max_tokens // widths)
    return rows if max_batch is None else np.minimum(rows, max_batch)


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Fixed-size batches of item indices over the items sorted by length (longest first).

    The order inside equal lengths is the input order, so the plan is deterministic.

    Returns:
        A list of index arrays, each at most ``batch_size`` long, covering every item once.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _sorted_windows(perm: np.ndarray, lengths: np.ndarray, window: int) -> np.ndarray:
    """``perm`` cut into windows of ``window`` items, each sorted by length, longest first
    (ties keep their order in ``perm``)."""
    return np.concatenate(
        [
            w[np.argsort(-lengths[w], kind="stable")]
            for w in np.split(perm, range(window, perm.size, window))
        ]
    )


def length_grouped_order(
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    *,
    window_batches: int = DEFAULT_WINDOW_BATCHES,
) -> np.ndarray:
    """One shuffled epoch over ``N`` items whose consecutive ``batch_size`` chunks have similar
    lengths: every item exactly once.

    A permutation from ``rng``, cut into windows of ``window_batches * B`` items, each sorted
    by length (:func:`length_grouped_batches`' grouping); the ``N // B`` full batches follow in
    a random order from ``rng`` and the ``N mod B`` left over come last (the epoch's one smaller
    batch), so cutting the result into chunks of ``B`` gives the batches. With
    ``window_batches=1`` the batches are plain random batches. For the structural probes,
    whose padded work grows with the longest sentence of a batch: on EWT train, random
    batches of 20 compute 2.8x the real words and 5.6x the real word pairs.

    Args:
        lengths: ``(N,)`` size of each item (words, wordpieces).
        batch_size: ``B``.
        rng: the generator to draw from (a seeded run draws the same orders).
        window_batches: batches per length-sorted window.

    Returns:
        ``(N,)`` int64 item indices, a permutation of ``range(N)``.
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    for name, v in (("batch_size", batch_size), ("window_batches", window_batches)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{name} must be a positive int, got {v!r}")
    b = int(batch_size)
    order = _sorted_windows(
        rng.permutation(lengths.size).astype(np.int64), lengths, int(window_batches) * b
    )
    full = order.size // b
    batches = [order[k * b : (k + 1) * b] for k in rng.permutation(full)]
    return np.concatenate([*batches, order[full * b :]]).astype(np.int64)


def length_grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    window_batches: int = DEFAULT_WINDOW_BATCHES,
) -> Iterator[np.ndarray]:
    """Endless training batches of exactly ``batch_size`` items, grouped by length.

    Pass ``p`` over the ``N`` items draws a permutation from ``default_rng([seed, p])``; cuts
    it into windows of ``window_batches * B`` items; sorts each window by length (longest
    first, ties in permutation order); cuts the sorted windows into batches of ``B`` and yields
    the pass's full batches in a random order. Its last ``r < B`` items wait and are completed
    by the first ``B - r`` items of the next pass's permutation (one mixed batch per pass), so

    * every batch holds exactly ``B`` items (a fixed global batch: a distribution strategy
      splits it over its replicas, and the optimizer's hyper-parameters keep their meaning);
    * read in order, the stream's items ``[pN, (p+1)N)`` are every item exactly once (pass
      ``p``), as a shuffled, repeated, batched ``tf.data`` stream gives them;
    * a batch's items have similar lengths, so little padding is computed; with
      ``window_batches=1`` the batches are plain random batches.

    The grouping is transformers' ``LengthGroupedSampler`` (``get_length_grouped_indices``) plus
    the fixed batch size across passes. Pure NumPy and deterministic given ``seed``.

    Args:
        lengths: ``(N,)`` wordpieces per item.
        batch_size: ``B``.
        seed: seeds every pass's permutation and batch order.
        window_batches: batches per length-sorted window.

    Yields:
        ``(B,)`` int64 item indices (an item may appear twice in a batch only when ``N < B``
        or in the mixed batch joining two passes).
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    n = lengths.size
    for name, v in (("batch_size", batch_size), ("window_batches", window_batches)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{name} must be a positive int, got {v!r}")
    if n == 0:
        raise ConfigError("no items to batch")
    b = int(batch_size)
    window = int(window_batches) * b
    pending = np.zeros(0, dtype=np.int64)  # the previous passes' last items, waiting
    p = 0
    while True:
        rng = np.random.default_rng([int(seed), p])
        perm = rng.permutation(n).astype(np.int64)
        p += 1
        if pending.size:
            need = b - pending.size
            if need > n:  # fewer items than a batch: the whole pass waits too
                pending = np.concatenate([pending, perm])
                continue
            yield np.concatenate([pending, perm[:need]])
            perm = perm[need:]
        order = _sorted_windows(perm, lengths, window)
        full = order.size // b
        for k in rng.permutation(full):
            yield order[k * b : (k + 1) * b]
        pending = order[full * b :]


def token_budget_plan(
    lengths: Sequence[int],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_batch: int | None = None,
    pad_multiple: int = 1,
    max_length: int | None = None,
    overhead_tokens: float = DEFAULT_OVERHEAD_TOKENS,
    attention_width: float = math.inf,
) -> list[Batch]:
    """The cheapest split of the length-sorted items into batches of at most ``max_tokens``
    padded wordpieces (and at most ``max_batch`` items).

    Dynamic programme over the items sorted longest first: ``best[j]`` is the least cost of
    the first ``j`` items, ``best[j] = min_i best[i] + cost(j - i, width[i])`` where a batch of
    items ``i..j-1`` is padded to the width of its longest, item ``i``. ``O(n * rows)`` time.

    Args:
        lengths: ``(n,)`` wordpieces per item (specials included).
        max_tokens: padded wordpieces a batch may hold (its memory); an item longer than this
            runs alone.
        max_batch: at most this many items a batch (``None``: only the token budget limits).
        pad_multiple: pad each batch's length up to a multiple of this (1 in graph mode).
        max_length: rounding up never passes this (the model's maximum).
        overhead_tokens, attention_width: the cost model (module docstring).

    Returns:
        Batches, longest first, covering every item exactly once.
    """
    lengths = _check(lengths, max_tokens, max_batch, pad_multiple)
    n = lengths.size
    if n == 0:
        return []
    order = np.argsort(-lengths, kind="stable")
    widths = _padded(lengths[order], pad_multiple, max_length)  # non-increasing
    row_cost = widths * (1.0 + widths / float(attention_width))
    rows = np.minimum(_rows(widths, max_tokens, max_batch), n - np.arange(n))
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    start = np.zeros(n + 1, dtype=np.int64)
    counts = np.arange(1, int(rows.max()) + 1, dtype=np.float64)
    for i in range(n):
        m = int(rows[i])
        cand = best[i] + overhead_tokens + row_cost[i] * counts[:m]
        seg = best[i + 1 : i + 1 + m]  # views: updated in place
        better = cand < seg
        seg[better] = cand[better]
        start[i + 1 : i + 1 + m][better] = i
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(int(start[cuts[-1]]))
    cuts.reverse()
    return [Batch(order[a:b], int(widths[a])) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def bucket_widths(
    lengths: Sequence[int],
    *,
    max_buckets: int = DEFAULT_MAX_BUCKETS,
    pad_multiple: int = 8,
    max_length: int | None = None,
    attention_width: float = math.inf,
) -> np.ndarray:
    """At most ``max_buckets`` padded lengths for these items, chosen to minimise the cost of
    the padding: every item is padded to the smallest chosen width that holds it.

    Optimal 1-D segmentation of the sorted distinct widths by dynamic programme
    (``O(max_buckets * U^2)`` for ``U`` distinct padded lengths).

    Returns:
        ``(k,)`` ascending widths, ``k <= max_buckets``; the last holds the longest item.
    """
    lengths = _check(lengths, 1, None, pad_multiple)
    if not isinstance(max_buckets, (int, np.integer)) or max_buckets < 1:
        raise ConfigError(f"max_buckets must be a positive int, got {max_buckets!r}")
    if lengths.size == 0:
        return np.zeros(0, dtype=np.int64)
    values, counts = np.unique(_padded(lengths, pad_multiple, max_length), return_counts=True)
    u = values.size
    k = min(int(max_buckets), u)
    unit = values * (1.0 + values / float(attention_width))  # cost of one row at this width
    cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.float64)
    # best[s, j]: least cost of the first j widths in s buckets, the last ending at width j-1
    best = np.full((k + 1, u + 1), np.inf)
    best[0, 0] = 0.0
    arg = np.zeros((k + 1, u + 1), dtype=np.int64)
    for s in range(1, k + 1):
        for j in range(1, u + 1):
            i = np.arange(j)  # this bucket covers widths i..j-1
            cand = best[s - 1, i] + (cum[j] - cum[i]) * unit[j - 1]
            a = int(np.argmin(cand))
            best[s, j], arg[s, j] = cand[a], a
    s = int(np.argmin(best[1:, u])) + 1
    chosen, j = [], u
    while j > 0:
        chosen.append(values[j - 1])
        j, s = int(arg[s, j]), s - 1
    return np.array(sorted(chosen), dtype=np.int64)


def bucketed_plan(
    lengths: Sequence[int],
    widths: Sequence[int],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_batch: int | None = None,
) -> list[Batch]:
    """Batches with few distinct shapes: each item goes to the smallest width that holds it;
    each width has one row count (``max_tokens // width``, at most ``max_batch``), and only
    its last batch may be smaller. So at most ``2 * len(widths)`` shapes are compiled.

    Returns:
        Batches, widest first (items longest first inside a width), covering every item once.

    Raises:
        ConfigError: an item is longer than the widest width.
    """
    lengths = _check(lengths, max_tokens, max_batch, 1)
    widths = np.sort(np.asarray(widths, dtype=np.int64))
    if lengths.size == 0:
        return []
    if widths.size == 0 or lengths.max() > widths[-1]:
        raise ConfigError(f"an item of {int(lengths.max())} wordpieces fits no bucket {widths}")
    slot = np.searchsorted(widths, lengths, side="left")  # smallest width >= length
    order = np.argsort(-lengths, kind="stable")
    plan: list[Batch] = []
    for b in range(widths.size - 1, -1, -1):
        members = order[slot[order] == b]
        if members.size == 0:
            continue
        w = int(widths[b])
        rows = int(_rows(np.array([w]), max_tokens, max_batch)[0])
        plan += [Batch(members[i : i + rows], w) for i in range(0, members.size, rows)]
    return plan


def plan_stats(lengths: Sequence[int], plan: Sequence[Batch]) -> dict:
    """Real and padded wordpieces of a plan, its padding share and its distinct shapes."""
    lengths = np.asarray(lengths, dtype=np.int64)
    real = int(lengths.sum())
    padded = int(sum(len(b.index) * b.length for b in plan))
    return {
        "batches": len(plan),
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_share": 0.0 if padded == 0 else 1.0 - real / padded,
        "shapes": len({(len(b.index), b.length) for b in plan}),
    }
