"""Fine-tuning batches grouped by length: coverage per pass, determinism, padding, masking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bert_repro.batching import length_grouped_batches, length_grouped_order, round_up
from bert_repro.errors import ConfigError, DataError
from bert_repro.finetune.dataset import Features, pad_inputs, pad_labels, training_dataset


def _take(stream, k: int) -> list[np.ndarray]:
    return list(itertools.islice(stream, k))


def skewed_lengths(n: int, seed: int = 0) -> np.ndarray:
    """Mostly short items and a long tail, like news sentences or SQuAD's last windows."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.85, rng.integers(8, 40, n), rng.integers(40, 128, n))


@pytest.mark.parametrize(
    "n, b, window", [(103, 16, 2), (64, 16, 50), (100, 7, 1), (5, 16, 3), (17, 16, 1)]
)
def test_every_pass_holds_every_item_once_and_batches_are_full(n, b, window):
    lengths = skewed_lengths(n, seed=n)
    passes = 5
    k = -(-passes * n // b) + 1
    batches = _take(length_grouped_batches(lengths, b, seed=3, window_batches=window), k)
    assert all(batch.shape == (b,) for batch in batches)
    stream = np.concatenate(batches)
    for p in range(passes):
        assert sorted(stream[p * n : (p + 1) * n].tolist()) == list(range(n)), p


def test_one_window_per_pass_gives_the_length_sorted_chunks():
    """Hand-checkable case: the window is the whole pass and B divides N, so the pass's
    batches are the chunks of the items sorted longest first (distinct lengths), in some
    order; the next pass has the same chunks in another order."""
    lengths = np.random.default_rng(1).permutation(np.arange(10, 58))  # 48 distinct
    order = np.argsort(-lengths)
    chunks = {tuple(sorted(order[i : i + 8].tolist())) for i in range(0, 48, 8)}
    batches = _take(length_grouped_batches(lengths, 8, seed=0, window_batches=6), 12)
    first = [tuple(sorted(x.tolist())) for x in batches[:6]]
    second = [tuple(sorted(x.tolist())) for x in batches[6:]]
    assert set(first) == chunks and set(second) == chunks
    assert first != second  # the batch order is shuffled anew
    assert [len(set(c)) for c in first] == [8] * 6


def test_the_stream_is_deterministic_by_seed():
    lengths = skewed_lengths(300)
    a = _take(length_grouped_batches(lengths, 32, seed=7, window_batches=3), 40)
    b = _take(length_grouped_batches(lengths, 32, seed=7, window_batches=3), 40)
    c = _take(length_grouped_batches(lengths, 32, seed=8, window_batches=3), 40)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # passes differ from each other (a new permutation each pass)
    per_pass = -(-300 // 32)
    assert not np.array_equal(np.concatenate(a[:3]), np.concatenate(a[per_pass : per_pass + 3]))


def _padding_share(lengths, batches) -> float:
    real = sum(int(lengths[x].sum()) for x in batches)
    padded = sum(len(x) * int(round_up(lengths[x].max(), 8)) for x in batches)
    return 1 - real / padded


def test_grouping_computes_far_less_padding_than_random_batches():
    lengths = skewed_lengths(3200)
    k = 3200 // 32 * 3
    grouped = _take(length_grouped_batches(lengths, 32, seed=0), k)
    random = _take(length_grouped_batches(lengths, 32, seed=0, window_batches=1), k)
    g, r = _padding_share(lengths, grouped), _padding_share(lengths, random)
    # random batches of 32 almost always hold a tail item: ~75% padding; grouped: ~10%
    assert r > 0.6 and g < 0.2, (g, r)
    # a random batch is padded like one of 32 items drawn at random: check against that
    rng = np.random.default_rng(0)
    draws = [rng.choice(3200, 32, replace=False) for _ in range(k)]
    assert abs(r - _padding_share(lengths, draws)) < 0.05


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="batch_size"):
        next(length_grouped_batches([3, 4], 0, seed=0))
    with pytest.raises(ConfigError, match="window_batches"):
        next(length_grouped_batches([3, 4], 2, seed=0, window_batches=0))
    with pytest.raises(ConfigError, match="no items"):
        next(length_grouped_batches([], 2, seed=0))


# ----------------------------------------------------------------------------- tf.data stream


def _toy_features(lengths) -> Features:
    """Item ``i``: ``[i+1, i+1, ...]`` (so a batch row names its item), types 1 on its second
    half."""
    ids = tuple(np.full(n, i + 1, np.int32) for i, n in enumerate(lengths))
    types = tuple((np.arange(n) >= n // 2).astype(np.int32) for n in lengths)
    return Features(ids, types)


def test_training_dataset_pads_each_planned_batch_to_a_multiple_of_8():
    lengths = skewed_lengths(50, seed=2)
    feats = _toy_features(lengths)
    labels = np.arange(50, dtype=np.int32) * 10
    per_word = [np.arange(n % 11 + 1, dtype=np.int32) + 1 for n in lengths]
    ds = training_dataset(
        feats, {"cls": labels, "words": per_word}, 8, seed=4, label_pad=-1, window_batches=2
    )
    plan = _take(length_grouped_batches(lengths, 8, seed=4, window_batches=2), 14)
    for (x, y), index in zip(ds.take(14), plan, strict=True):
        want = pad_inputs(feats, index)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(x[key].numpy(), want[key])
        t = x["input_ids"].shape[1]
        assert t % 8 == 0 and t == round_up(lengths[index].max(), 8)
        assert np.array_equal(x["input_ids"].numpy()[:, 0] - 1, index)  # the rows' items
        np.testing.assert_array_equal(y["cls"].numpy(), labels[index])
        words = y["words"].numpy()
        assert words.shape[1] % 8 == 0
        for row, i in enumerate(index):
            m = len(per_word[i])
            np.testing.assert_array_equal(words[row, :m], per_word[i])
            assert (words[row, m:] == -1).all()
    again = [x["input_ids"].numpy() for x, _ in training_dataset(feats, labels, 8, seed=4).take(5)]
    once = [x["input_ids"].numpy() for x, _ in training_dataset(feats, labels, 8, seed=4).take(5)]
    assert all(np.array_equal(a, b) for a, b in zip(again, once, strict=True))


def test_training_dataset_refuses_mismatched_labels():
    feats = _toy_features([3, 4, 5])
    with pytest.raises(DataError, match="2 labels"):
        training_dataset(feats, np.zeros(2), 2, seed=0)
    with pytest.raises(DataError, match="no training examples"):
        training_dataset(Features((), ()), np.zeros(0), 2, seed=0)
    # per-item labels are padded with -1 (PAD_LABEL), which the losses ignore
    padded = pad_labels([np.array([1, 2])], [0, 0])
    np.testing.assert_array_equal(padded[:, :3], [[1, 2, -1]] * 2)
    assert padded.shape == (2, 8) and (padded[:, 2:] == -1).all()


@pytest.fixture(scope="module")
def task_models(tiny_bert_dir):
    from bert_repro.finetune.config import paper_defaults
    from bert_repro.finetune.model import BertTaskModel
    from bert_repro.finetune.tasks import get_task
    from bert_repro.models import load_bert

    out = {}
    for name in ("agnews", "squad"):
        encoder, tok = load_bert(tiny_bert_dir)
        task = get_task(name)
        model = BertTaskModel(encoder, task.make_head(paper_defaults(name), encoder.config))
        out[name] = (model, task.compile_args(), tok)
    return out


@pytest.mark.parametrize("name", ["agnews", "squad"])
def test_the_loss_of_a_batch_does_not_change_with_extra_padding(task_models, name):
    """Padding to 8 (the planned batches) or 40 more columns (random batches) gives the same
    loss: the attention mask and the span head's masked logits hide every padded position."""
    model, compile_args, tok = task_models[name]
    rng = np.random.default_rng(0)
    lengths = [5, 9, 14, 20]
    ids = tuple(rng.integers(5, 100, n).astype(np.int32) for n in lengths)
    feats = Features(ids, tuple(np.zeros(n, np.int32) for n in lengths))
    index = [0, 1, 2, 3]
    if name == "agnews":
        y = np.array([0, 3, 1, 2])
        losses = [compile_args["loss"]]
    else:
        y = {"start": np.array([1, 2, 4, 10]), "end": np.array([2, 5, 9, 18])}
        losses = [compile_args["loss"]["start"]] * 2
    values = []
    for multiple in (8, 64):
        x = pad_inputs(feats, index, pad_id=tok.pad_token_id, pad_multiple=multiple)
        out = model(x, training=False)
        if name == "agnews":
            values.append(float(losses[0](y, out)))
        else:
            values.append(0.5 * sum(float(losses[0](y[k], out[k])) for k in ("start", "end")))
    assert x["input_ids"].shape[1] == 64
    assert values[0] == pytest.approx(values[1], rel=1e-5, abs=1e-6)
    assert np.isfinite(values).all() and values[0] > 0


@pytest.mark.parametrize("n, b, window", [(103, 16, 2), (64, 16, 50), (100, 7, 1), (5, 16, 3)])
def test_a_grouped_epoch_is_a_permutation_with_the_small_batch_last(n, b, window):
    lengths = skewed_lengths(n, seed=n)
    rng = np.random.default_rng(4)
    order = length_grouped_order(lengths, b, rng, window_batches=window)
    assert order.dtype == np.int64 and sorted(order.tolist()) == list(range(n))
    # the full batches are the chunks of the length-sorted windows of one permutation
    rng = np.random.default_rng(4)
    perm = rng.permutation(n)
    w = window * b
    windows = [perm[i : i + w] for i in range(0, n, w)]
    sorted_perm = np.concatenate([x[np.argsort(-lengths[x], kind="stable")] for x in windows])
    full = n // b
    chunks = {tuple(sorted_perm[k * b : (k + 1) * b]) for k in range(full)}
    got = [tuple(order[k * b : (k + 1) * b]) for k in range(full)]
    assert set(got) == chunks
    assert order[full * b :].tolist() == sorted_perm[full * b :].tolist()


def test_grouped_epochs_pad_much_less_than_random_ones_and_follow_the_seed():
    """EWT-like lengths: grouping must cut the padded words of batches of 20 at least in half
    (random batches pad to ~2.8x the real words on EWT train, grouped ones ~1.1x)."""
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.gamma(2.0, 8.0, 4000).astype(int) + 1, 1, 150)
    b = 20

    def padded(order):
        return sum(len(c) * lengths[c].max() for c in np.split(order, range(b, len(order), b)))

    grouped = length_grouped_order(lengths, b, np.random.default_rng(1))
    random = np.random.default_rng(1).permutation(len(lengths))
    assert padded(grouped) < 0.5 * padded(random)
    again = length_grouped_order(lengths, b, np.random.default_rng(1))
    other = length_grouped_order(lengths, b, np.random.default_rng(2))
    assert np.array_equal(grouped, again) and not np.array_equal(grouped, other)
    # window_batches=1: the batches are a random permutation's chunks (no grouping)
    plain = length_grouped_order(lengths, b, np.random.default_rng(1), window_batches=1)
    assert padded(plain) > 0.8 * padded(random)
