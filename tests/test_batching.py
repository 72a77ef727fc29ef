"""Batch planners against brute force: cover every item once, keep the budget, cost least."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bert_repro.batching import (
    Batch,
    bucket_widths,
    bucketed_plan,
    plan_stats,
    round_up,
    token_budget_plan,
)
from bert_repro.errors import ConfigError

AW = 50.0  # attention width: small, so the T^2 term matters in these tests
OVERHEAD = 7.0


def cost(plan, overhead=OVERHEAD, aw=AW) -> float:
    return sum(overhead + len(b.index) * b.length * (1 + b.length / aw) for b in plan)


def assert_valid(plan, lengths, max_tokens, max_batch=None):
    flat = np.concatenate([b.index for b in plan])
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # every item exactly once
    for b in plan:
        assert b.length >= max(lengths[i] for i in b.index)
        assert len(b.index) == 1 or len(b.index) * b.length <= max_tokens
        assert max_batch is None or len(b.index) <= max_batch


def brute_force_cost(lengths, max_tokens, pad_multiple=1, max_batch=None) -> float:
    """Least cost over every split of the length-sorted items into consecutive batches."""
    s = sorted(lengths, reverse=True)
    n = len(s)
    best = np.inf
    for k in range(n):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = [0, *cuts, n]
            plan = []
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                w = int(round_up(s[a], pad_multiple))
                if b - a > 1 and (b - a) * w > max_tokens:
                    break
                if max_batch is not None and b - a > max_batch:
                    break
                plan.append(Batch(np.arange(a, b), w))
            else:
                best = min(best, cost(plan))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_token_budget_plan_is_optimal_and_valid(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    lengths = rng.integers(1, 40, n).tolist()
    max_tokens = int(rng.integers(20, 120))
    pad = int(rng.choice([1, 4]))
    max_batch = None if seed % 3 else 3
    plan = token_budget_plan(
        lengths,
        max_tokens=max_tokens,
        max_batch=max_batch,
        pad_multiple=pad,
        overhead_tokens=OVERHEAD,
        attention_width=AW,
    )
    assert_valid(plan, lengths, max_tokens, max_batch)
    assert all(b.length % pad == 0 for b in plan)
    assert cost(plan) == pytest.approx(brute_force_cost(lengths, max_tokens, pad, max_batch))


def test_long_tail_does_not_drag_short_items_up():
    # One very long item among many short ones: fixed batches pad all of them to 100.
    lengths = [100] + [10] * 40
    plan = token_budget_plan(lengths, max_tokens=1000, overhead_tokens=5)
    assert plan[0].index.tolist() == [0] and plan[0].length == 100
    assert plan_stats(lengths, plan)["padding_share"] == 0.0


def test_an_item_longer_than_the_budget_runs_alone():
    plan = token_budget_plan([300, 5, 5], max_tokens=64)
    assert plan[0] == Batch(plan[0].index, 300) and plan[0].index.tolist() == [0]
    assert_valid(plan, [300, 5, 5], 64)


def test_rounding_never_passes_the_model_maximum():
    plan = token_budget_plan([510, 509], max_tokens=4096, pad_multiple=8, max_length=512)
    assert {b.length for b in plan} == {512}
    plan = token_budget_plan([511], pad_multiple=64, max_length=512)
    assert plan[0].length == 512


def test_plans_are_deterministic_and_keep_input_order_within_a_length():
    lengths = [5, 7, 5, 7, 5]
    a = token_budget_plan(lengths, max_tokens=14, overhead_tokens=1)
    b = token_budget_plan(lengths, max_tokens=14, overhead_tokens=1)
    assert [x.index.tolist() for x in a] == [x.index.tolist() for x in b]
    flat = np.concatenate([x.index for x in a]).tolist()
    assert flat == [1, 3, 0, 2, 4]


@pytest.mark.parametrize("seed", range(8))
def test_bucket_widths_are_optimal(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, int(rng.integers(1, 30)))
    k = int(rng.integers(1, 5))
    widths = bucket_widths(lengths, max_buckets=k, pad_multiple=4, attention_width=AW)
    values = np.unique(round_up(lengths, 4))
    assert len(widths) <= k and widths[-1] == values[-1] and set(widths) <= set(values)

    def padding_cost(ws):
        ws = np.sort(ws)
        w = ws[np.searchsorted(ws, lengths)]
        return float(np.sum(w * (1 + w / AW)))

    best = min(
        padding_cost([*c, values[-1]])
        for r in range(min(k, len(values)))
        for c in itertools.combinations(values[:-1], r)
    )
    assert padding_cost(widths) == pytest.approx(best)


def test_bucketed_plan_has_few_shapes_and_puts_items_in_the_smallest_bucket():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, 3000)
    widths = bucket_widths(lengths, max_buckets=6)
    plan = bucketed_plan(lengths, widths, max_tokens=2048)
    assert_valid(plan, lengths, 2048)
    assert plan_stats(lengths, plan)["shapes"] <= 2 * len(widths)
    for b in plan:
        smallest = widths[np.searchsorted(widths, lengths[b.index])]
        assert (smallest == b.length).all()
    with pytest.raises(ConfigError, match="fits no bucket"):
        bucketed_plan([300], [8, 16])


@pytest.mark.integration
def test_token_budget_pads_less_than_fixed_batches_on_real_lengths(shared_data):
    """On EWT dev wordpiece counts, the plan computes far less padding than batches of 64."""
    import conllu

    from bert_repro.models import load_bert
    from bert_repro.pipeline import encode_words

    with open(shared_data / "ud-english-ewt" / "en_ewt-ud-dev.conllu", encoding="utf-8") as f:
        sents = [[t["form"] for t in s if isinstance(t["id"], int)] for s in conllu.parse_incr(f)]
    _, tok = load_bert()
    lengths = np.array([len(e) for e in encode_words(tok, sents)])
    order = np.argsort(-lengths, kind="stable")
    fixed = [Batch(order[i : i + 64], int(lengths[order[i]])) for i in range(0, len(order), 64)]
    ours = token_budget_plan(lengths, max_tokens=2048)
    assert_valid(ours, lengths, 2048)
    assert plan_stats(lengths, ours)["padding_share"] < 0.04  # 2.0% on EWT dev
    assert plan_stats(lengths, fixed)["padding_share"] > 0.08  # 9.6% on EWT dev


def test_bad_settings_name_the_setting():
    with pytest.raises(ConfigError, match="max_tokens"):
        token_budget_plan([3], max_tokens=0)
    with pytest.raises(ConfigError, match="max_batch"):
        token_budget_plan([3], max_batch=0)
    with pytest.raises(ConfigError, match="max_buckets"):
        bucket_widths([3], max_buckets=0)
    assert token_budget_plan([]) == [] and bucketed_plan([], [8]) == []
