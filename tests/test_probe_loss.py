"""The probe losses equal a hand computation, ignore padding, and match their Keras forms."""

from __future__ import annotations

import numpy as np
import pytest

from bert_repro.probe.data import pad_labels
from bert_repro.probe.loss import (
    L1DepthLoss,
    L1DistanceLoss,
    build_label_mask,
    build_word_mask,
    depth_loss,
    distance_loss,
    lengths_from_labels,
)
from bert_repro.probe.trainer import build_label_mask as seed_build_label_mask

# Two sentences padded to W = 3: lengths 2 and 3.
GOLD_A = np.array([[0, 1], [1, 0]], dtype=np.float32)
GOLD_B = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=np.float32)
PRED = np.array(
    [
        [[0.0, 2.0, 99.0], [0.5, 0.0, 99.0], [99.0, 99.0, 99.0]],  # padding row/col = 99
        [[1.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 1.0, 0.0]],
    ],
    dtype=np.float32,
)
LENGTHS = np.array([2, 3], dtype=np.int32)


def test_distance_loss_by_hand():
    gold = pad_labels([GOLD_A, GOLD_B])
    # sentence A: |0-0| + |2-1| + |0.5-1| + |0-0| = 1.5, / 2^2 = 0.375
    # sentence B: diffs 1 (0,0), 2 (1,2) -> 3, / 3^2 = 1/3
    want = (0.375 + 1 / 3) / 2
    assert float(distance_loss(PRED, gold, LENGTHS)) == pytest.approx(want)
    assert float(L1DistanceLoss()(gold, PRED)) == pytest.approx(want)


def test_depth_loss_by_hand():
    gold = pad_labels([np.array([0, 1], np.float32), np.array([1, 0, 1], np.float32)])
    pred = np.array([[0.5, 1.0, 50.0], [1.0, 2.0, 0.0]], np.float32)
    # A: (0.5 + 0) / 2 = 0.25; B: (0 + 2 + 1) / 3 = 1
    assert float(depth_loss(pred, gold, LENGTHS)) == pytest.approx((0.25 + 1.0) / 2)
    assert float(L1DepthLoss()(gold, pred)) == pytest.approx((0.25 + 1.0) / 2)


def test_padding_does_not_change_the_loss():
    gold = pad_labels([GOLD_A, GOLD_B])
    base = float(distance_loss(PRED, gold, LENGTHS))
    # other values in the padding, of predictions and of labels
    pred2, gold2 = PRED.copy(), gold.copy()
    pred2[0, 2, :] = pred2[0, :, 2] = -1e6
    gold2[0, 2, :] = gold2[0, :, 2] = 123.0
    assert float(distance_loss(pred2, gold2, LENGTHS)) == pytest.approx(base)
    # more padding (W = 6)
    pad_pred = np.zeros((2, 6, 6), np.float32)
    pad_pred[:, :3, :3] = PRED
    pad_gold = pad_labels([GOLD_A, GOLD_B], max_words=6)
    assert float(distance_loss(pad_pred, pad_gold, LENGTHS)) == pytest.approx(base)
    assert float(L1DistanceLoss()(pad_gold, pad_pred)) == pytest.approx(base)
    # each sentence alone in its own batch: the mean of the per-sentence values
    a = float(distance_loss(PRED[:1, :2, :2], GOLD_A[None], LENGTHS[:1]))
    b = float(distance_loss(PRED[1:], GOLD_B[None], LENGTHS[1:]))
    assert (a + b) / 2 == pytest.approx(base)


def test_empty_sentences_are_not_counted():
    gold = pad_labels([GOLD_A, GOLD_B])
    base = float(distance_loss(PRED, gold, LENGTHS))
    pred3 = np.concatenate([PRED, np.full((1, 3, 3), 7.0, np.float32)])
    gold3 = np.concatenate([gold, np.full((1, 3, 3), -1.0, np.float32)])
    assert float(distance_loss(pred3, gold3, np.array([2, 3, 0]))) == pytest.approx(base)
    assert float(L1DistanceLoss()(gold3, pred3)) == pytest.approx(base)
    assert float(distance_loss(PRED[:1], gold[:1], np.array([0]))) == 0.0


def test_masks_and_lengths():
    mask = seed_build_label_mask(LENGTHS, 3).numpy()
    assert mask.shape == (2, 3, 3)
    assert mask[0].tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert mask[1].sum() == 9
    assert build_label_mask is seed_build_label_mask
    assert build_word_mask(LENGTHS, 4).numpy().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0]]
    gold = pad_labels([GOLD_A, GOLD_B], max_words=5)
    assert lengths_from_labels(gold, pairs=True).numpy().tolist() == [2, 3]
    depths = pad_labels([np.zeros(2), np.zeros(3)], max_words=5)
    assert lengths_from_labels(depths, pairs=False).numpy().tolist() == [2, 3]


def test_seed_style_masking():
    """The seed multiplies probe outputs and labels by build_label_mask(length, max(length))."""
    import tensorflow as tf

    length = tf.constant(LENGTHS)
    mask = build_label_mask(length, tf.reduce_max(length))
    masked = PRED * mask
    assert float(tf.reduce_sum(masked[0])) == pytest.approx(2.5)
