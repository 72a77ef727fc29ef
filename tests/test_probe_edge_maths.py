"""The edge probes' maths as pure functions, against NumPy brute force and hand-worked
examples: scalar-mix weights and mixes, the two expected layers, micro F1, the probe plan."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.probe.edge import edge_plan
from bert_repro.probe.metrics import micro_f1
from bert_repro.probe.scalar_mix import (
    cumulative_expected_layer,
    expected_layer,
    mix_weights,
    scalar_mix,
    score_deltas,
)


@pytest.mark.parametrize("scale", [0.1, 1.0, 50.0, 1000.0])
def test_mix_weights_are_a_softmax_summing_to_one(scale):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 13)) * scale
    s = mix_weights(logits)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    # brute force where exp does not overflow; shifting the logits changes nothing
    small = logits / scale
    brute = np.exp(small) / np.exp(small).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(mix_weights(small), brute, rtol=1e-12)
    np.testing.assert_allclose(mix_weights(logits + 7.5), s, rtol=1e-12)
    np.testing.assert_allclose(mix_weights(np.zeros(4)), [0.25] * 4)


def test_scalar_mix_matches_a_loop_and_identical_layers_give_the_layer():
    rng = np.random.default_rng(1)
    states = rng.normal(size=(4, 6, 5))  # (S, words, H)
    a = rng.normal(size=4)
    s = np.exp(a) / np.exp(a).sum()
    brute = 1.7 * sum(s[k] * states[k] for k in range(4))
    np.testing.assert_allclose(scalar_mix(states, a, 1.7), brute, rtol=1e-12)
    same = np.repeat(states[:1], 4, axis=0)
    np.testing.assert_allclose(scalar_mix(same, a), states[0], rtol=1e-12)
    with pytest.raises(ValueError):
        scalar_mix(states, a[:3])


def test_expected_layer_hand_worked():
    assert expected_layer([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0 * 0.1 + 0.2 + 0.6 + 1.2)
    assert expected_layer([1, 0, 0]) == 0.0
    assert expected_layer([0, 0, 1]) == 2.0
    assert expected_layer([0.5, 0.5], layers=[2, 5]) == pytest.approx(3.5)
    assert expected_layer(mix_weights(np.zeros(13))) == pytest.approx(6.0)  # uniform: middle


def test_cumulative_expected_layer_hand_worked():
    # Delta = [.2, .1, 0, .1]; sum l*Delta = .2 + .2 + 0 + .4 = .8; sum Delta = .4
    scores = [0.5, 0.7, 0.8, 0.8, 0.9]
    np.testing.assert_allclose(score_deltas(scores), [0.2, 0.1, 0.0, 0.1], atol=1e-12)
    assert cumulative_expected_layer(scores) == pytest.approx(2.0)
    # everything gained at layer 3: E = 3
    assert cumulative_expected_layer([0.4, 0.4, 0.4, 0.9, 0.9]) == pytest.approx(3.0)
    # a negative delta counts as defined: (1*.4 + 2*(-.1)) / .3
    assert cumulative_expected_layer([0.5, 0.9, 0.8]) == pytest.approx(0.2 / 0.3)
    assert np.isnan(cumulative_expected_layer([0.7, 0.7, 0.7]))
    with pytest.raises(ValueError):
        cumulative_expected_layer([0.7])


def test_micro_f1_is_accuracy_for_single_labels():
    assert micro_f1([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(0.5)
    assert micro_f1([3, 3], [3, 3]) == 1.0
    assert micro_f1([1, 2], [2, 1]) == 0.0
    assert np.isnan(micro_f1([], []))
    rng = np.random.default_rng(2)
    for _ in range(20):
        gold = rng.integers(0, 7, 200)
        pred = np.where(rng.random(200) < 0.6, gold, rng.integers(0, 7, 200))
        # brute force: per-label counts summed, then F1
        tp = sum(np.sum((gold == c) & (pred == c)) for c in range(7))
        fp = sum(np.sum((gold != c) & (pred == c)) for c in range(7))
        fn = sum(np.sum((gold == c) & (pred != c)) for c in range(7))
        p, r = tp / (tp + fp), tp / (tp + fn)
        assert micro_f1(gold, pred) == pytest.approx(2 * p * r / (p + r))
        assert micro_f1(gold, pred) == pytest.approx(np.mean(gold == pred))
    with pytest.raises(ValueError):
        micro_f1([1, 2], [1])


def test_edge_plan_hand_worked():
    plan = edge_plan(4, [3, 1], "cumulative")
    assert plan.states == (0, 1, 2, 3)
    assert plan.probes == ((3,), (1,), (0,), (0, 1), (0, 1, 2), (0, 1, 2, 3))
    assert plan.mix == (False, False, True, True, True, True)
    assert plan.keys == ((3, None), (1, None), ("mix", 0), ("mix", 1), ("mix", 2), ("mix", 3))
    full = edge_plan(4, [2], "full")
    assert full.probes == ((2,), (0, 1, 2, 3)) and full.keys[-1] == ("mix", 3)
    none = edge_plan(13, [12, 4], "none")
    assert none.states == (4, 12) and none.probes == ((1,), (0,)) and none.mix == (False,) * 2
