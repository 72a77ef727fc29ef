"""Pure parts of bert_repro.finetune: SQuAD metrics, span decoding, windows, splits, schedule."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.errors import ConfigError, DataError
from bert_repro.finetune.classification import accuracy
from bert_repro.finetune.config import FinetuneConfig, paper_defaults
from bert_repro.finetune.sources import holdout_split, subsample
from bert_repro.finetune.squad import answer_token_span, best_span, max_context_mask, window_starts
from bert_repro.finetune.squad_metrics import (
    exact_match,
    f1_score,
    normalize_answer,
    squad_scores,
)

# ----------------------------------------------------------------------------- SQuAD metrics


@pytest.mark.parametrize(
    "text, normal",
    [
        ("The Denver Broncos!", "denver broncos"),
        ("  an  Apple a day ", "apple day"),
        ("Theater", "theater"),  # 'the' only as a word
        ("a.k.a.", "aka"),  # punctuation removed before articles
        ("Santa Clara, California", "santa clara california"),
        ("the", ""),
    ],
)
def test_normalize_answer_matches_the_official_script(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_and_f1_on_hand_worked_examples():
    assert exact_match("The Broncos", "broncos.") == 1.0
    assert exact_match("Denver Broncos", "Broncos") == 0.0
    # pred {denver, broncos}, gold {broncos}: P = 1/2, R = 1, F1 = 2/3
    assert f1_score("Denver Broncos", "the Broncos") == pytest.approx(2 / 3)
    # multiset overlap: pred [a1 x x], gold [x y] -> common 1, P = 1/3, R = 1/2, F1 = 0.4
    assert f1_score("one two two", "two three") == pytest.approx(0.4)
    assert f1_score("Carolina Panthers", "Denver Broncos") == 0.0
    # v1.1: both empty after normalisation score 0, not 1
    assert f1_score("the", "a") == 0.0
    assert exact_match("the", "a") == 1.0


def test_squad_scores_max_over_gold_answers_and_missing_predictions():
    gold = {"q1": ("Denver Broncos", "Broncos"), "q2": ("Levi's Stadium",), "q3": ("gold",)}
    pred = {"q1": "the broncos", "q2": "Levi's Stadium in Santa Clara"}  # q3 unanswered
    scores = squad_scores(pred, gold)
    # q1: EM 1 (vs "Broncos"), F1 1; q2: EM 0, F1 = 2*(2/5*1)/(2/5+1) = 4/7; q3: 0
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 4 / 7) / 3)
    assert scores["n_questions"] == 3


def test_accuracy():
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 1.0]])
    assert accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(logits, np.array([1, 0]))


# ----------------------------------------------------------------------------- span decoding


def _brute_best_span(s, e, s_ok, e_ok, max_len):
    best = None
    for i in range(len(s)):
        for j in range(i, min(len(s), i + max_len)):
            if s_ok[i] and e_ok[j] and (best is None or s[i] + e[j] > best[0]):
                best = (s[i] + e[j], i, j)
    return best


def test_best_span_matches_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(200):
        t = int(rng.integers(1, 40))
        s, e = rng.normal(size=t), rng.normal(size=t)
        s_ok, e_ok = rng.random(t) < 0.7, rng.random(t) < 0.7
        max_len = int(rng.integers(1, 8))
        got = best_span(s, e, s_ok, e_ok, max_len)
        want = _brute_best_span(s, e, s_ok, e_ok, max_len)
        if want is None:
            assert got is None, trial
        else:
            assert got[1:] == want[1:], trial
            assert got[0] == pytest.approx(want[0])


def test_best_span_respects_order_and_length():
    s = np.array([0.0, 0.0, 9.0, 0.0, 0.0])
    e = np.array([8.0, 0.0, 0.0, 0.0, 7.0])  # the best end is before the best start
    ok = np.ones(5, bool)
    assert best_span(s, e, ok, ok, 30)[1:] == (2, 4)
    assert best_span(s, e, ok, ok, 2)[1:] == (2, 2)  # (2, 4) is 3 tokens long


# ----------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    "n, window, stride", [(0, 5, 2), (3, 5, 2), (10, 4, 3), (23, 7, 7), (9, 4, 9)]
)
def test_window_starts_cover_every_token_with_bert_steps(n, window, stride):
    starts = window_starts(n, window, stride)
    covered = np.zeros(n, int)
    for s in starts:
        covered[s : s + window] += 1
    assert (covered >= 1).all()
    assert all(b - a == min(window, stride) for a, b in zip(starts[:-1], starts[1:], strict=True))
    if starts:
        assert starts[-1] + window >= n and starts[-1] < n


def test_max_context_mask_gives_each_token_one_window_where_it_is_most_central():
    n, window = 10, 6
    starts = window_starts(n, window, 2)  # [0, 2, 4]
    masks = max_context_mask(starts, window, n)
    owners = np.zeros(n, int)
    for s, m in zip(starts, masks, strict=True):
        assert len(m) == min(window, n - s)
        owners[s : s + len(m)] += m
    assert (owners == 1).all()
    # token 5: min(left, right) is 0 in [0,5], 2 in [2,7], 1 in [4,9] -> window 1
    assert masks[1][5 - 2] and not masks[0][5] and not masks[2][5 - 4]
    # a single window holds every token at its maximum context
    assert max_context_mask([0], 8, 5)[0].all()


def test_answer_token_span_maps_characters_to_tokens():
    # "Denver Broncos won" -> tokens "denver" [0,6) "bro" [7,10) "##ncos" [10,14) "won" [15,18)
    offsets = np.array([[0, 6], [7, 10], [10, 14], [15, 18]])
    assert answer_token_span(offsets, 7, 14) == (1, 2)
    assert answer_token_span(offsets, 0, 18) == (0, 3)
    assert answer_token_span(offsets, 11, 12) == (2, 2)
    assert answer_token_span(offsets, 6, 7) is None  # only the space


# ----------------------------------------------------------------------------- splits


def test_holdout_split_is_a_seeded_partition():
    train, held = holdout_split(101, 0.2, seed=3)
    assert len(held) == 20 and len(train) == 81
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(101))
    again = holdout_split(101, 0.2, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(held, again[1])
    assert not np.array_equal(held, holdout_split(101, 0.2, seed=4)[1])
    with pytest.raises(DataError):
        holdout_split(1, 0.2, seed=0)
    with pytest.raises(DataError):
        holdout_split(10, 1.0, seed=0)


def test_subsample():
    assert np.array_equal(subsample(5, None, 0), np.arange(5))
    picked = subsample(100, 10, 0)
    assert len(picked) == 10 and len(set(picked)) == 10 and np.all(np.diff(picked) > 0)


# ----------------------------------------------------------------------------- config, schedule


def test_paper_defaults_and_validation():
    mnli, squad = paper_defaults("mnli"), paper_defaults("squad")
    assert (mnli.learning_rate, mnli.batch_size, mnli.epochs, mnli.max_seq_length) == (
        2e-5,
        32,
        3.0,
        128,
    )
    assert (squad.learning_rate, squad.epochs, squad.max_seq_length, squad.doc_stride) == (
        3e-5,
        2.0,
        384,
        128,
    )
    assert squad.warmup_fraction == 0.1 and squad.max_answer_length == 30
    assert paper_defaults("agnews", max_steps=7, seed=None).max_steps == 7
    with pytest.raises(ConfigError, match="mnli"):
        paper_defaults("sst2")
    with pytest.raises(ConfigError):
        FinetuneConfig(learning_rate=-1.0)
    with pytest.raises(ConfigError, match="unknown"):
        paper_defaults("mnli", learning_rat=1e-5)


def test_linear_warmup_decay_matches_the_formula():
    from bert_repro.finetune.optimization import (
        LinearWarmupDecay,
        warmup_decay_lr,
        warmup_steps_for,
    )

    total, warm = 50, warmup_steps_for(50, 0.1)
    assert warm == 5
    sched = LinearWarmupDecay(3e-5, total, warm)
    steps = np.arange(0, 60)
    got = np.array([float(sched(t)) for t in steps])
    np.testing.assert_allclose(got, warmup_decay_lr(steps, 3e-5, total, warm), rtol=1e-6)
    # hand values: 0 at the start, 1/5 of the peak after one step, the peak after warm-up,
    # (50 - 32) / 45 = 0.4 of it at step 32, 0 at the end and after
    np.testing.assert_allclose(
        got[[0, 1, 5, 32, 50, 59]], [0, 6e-6, 3e-5, 1.2e-5, 0, 0], rtol=1e-6, atol=1e-12
    )
    clone = LinearWarmupDecay.from_config(sched.get_config())
    assert float(clone(12)) == pytest.approx(float(sched(12)))
