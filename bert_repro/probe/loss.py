"""The structural-probe losses (Hewitt & Manning 2019): L1, normalised per sentence.

For a batch of ``S`` non-empty sentences with lengths ``n_s`` (padding masked out):

* distances: ``loss = 1/S sum_s 1/n_s^2 sum_{i,j<n_s} |d_pred(s,i,j) - d_gold(s,i,j)|``
* depths:    ``loss = 1/S sum_s 1/n_s   sum_{i<n_s}   |depth_pred(s,i) - depth_gold(s,i)|``

Sentences of length 0 are left out of ``S``. Padded gold labels hold :data:`PAD_LABEL` (-1,
which no tree distance or depth can be), so the Keras losses recover each sentence's length
from its labels and train with plain ``compile``/``fit``.
"""

from __future__ import annotations

import tensorflow as tf

from .._keras import keras
from .kinds import PAD_LABEL


def build_word_mask(lengths, max_length) -> tf.Tensor:
    """``(batch,)`` lengths -> ``(batch, max_length)`` float32, 1 for real words, 0 for padding."""
    return tf.sequence_mask(lengths, max_length, dtype=tf.float32)


def build_label_mask(lengths, max_length) -> tf.Tensor:
    """Mask of the real word pairs of each sentence.

    Args:
        lengths: ``(batch,)`` int, words per sentence.
        max_length: the padded length ``W`` (int or scalar tensor).

    Returns:
        ``(batch, W, W)`` float32: ``mask[s, i, j] = 1`` when ``i < n_s`` and ``j < n_s``.
    """
    m = build_word_mask(lengths, max_length)  # (B, W)
    return m[:, :, None] * m[:, None, :]


def _normalised_mean(per_sentence: tf.Tensor, norm: tf.Tensor) -> tf.Tensor:
    """Mean over non-empty sentences of ``per_sentence / norm`` (0 for an all-empty batch)."""
    nonempty = norm > 0
    ratio = tf.where(nonempty, per_sentence / tf.where(nonempty, norm, 1.0), 0.0)
    count = tf.reduce_sum(tf.cast(nonempty, ratio.dtype))
    return tf.math.divide_no_nan(tf.reduce_sum(ratio), count)


def distance_loss(predicted, gold, lengths) -> tf.Tensor:
    """L1 distance loss, each sentence normalised by its length squared.

    Args:
        predicted: ``(batch, W, W)`` predicted squared distances.
        gold: ``(batch, W, W)`` gold tree distances (padding values are ignored).
        lengths: ``(batch,)`` words per sentence.

    Returns:
        Scalar: the mean over non-empty sentences of ``sum_{i,j<n}|pred - gold| / n^2``.
    """
    predicted = tf.convert_to_tensor(predicted, tf.float32)
    gold = tf.cast(gold, tf.float32)
    mask = build_label_mask(lengths, tf.shape(predicted)[1]) > 0
    per_sentence = tf.reduce_sum(tf.where(mask, tf.abs(predicted - gold), 0.0), axis=[1, 2])
    n = tf.cast(lengths, tf.float32)
    return _normalised_mean(per_sentence, tf.square(n))


def depth_loss(predicted, gold, lengths) -> tf.Tensor:
    """L1 depth loss, each sentence normalised by its length.

    Args:
        predicted: ``(batch, W)`` predicted depths (squared norms).
        gold: ``(batch, W)`` gold tree depths (padding values are ignored).
        lengths: ``(batch,)`` words per sentence.

    Returns:
        Scalar: the mean over non-empty sentences of ``sum_{i<n}|pred - gold| / n``.
    """
    predicted = tf.convert_to_tensor(predicted, tf.float32)
    gold = tf.cast(gold, tf.float32)
    mask = build_word_mask(lengths, tf.shape(predicted)[1]) > 0
    per_sentence = tf.reduce_sum(tf.where(mask, tf.abs(predicted - gold), 0.0), axis=1)
    return _normalised_mean(per_sentence, tf.cast(lengths, tf.float32))


def lengths_from_labels(gold, pairs: bool) -> tf.Tensor:
    """Sentence lengths recovered from labels padded with :data:`PAD_LABEL`.

    Args:
        gold: ``(batch, W, W)`` distances (``pairs=True``) or ``(batch, W)`` depths.
        pairs: whether the labels are distance matrices.

    Returns:
        ``(batch,)`` int32.
    """
    gold = tf.convert_to_tensor(gold)
    rows = tf.linalg.diag_part(gold) if pairs else gold  # (B, W)
    return tf.reduce_sum(tf.cast(tf.not_equal(rows, PAD_LABEL), tf.int32), axis=1)


@keras.saving.register_keras_serializable(package="bert_repro")
class L1DistanceLoss(keras.losses.Loss):
    """Keras form of :func:`distance_loss`; lengths come from the -1 padding of ``y_true``.

    ``__call__(y_true (B, W, W), y_pred (B, W, W))`` returns the batch's scalar loss, so every
    Keras reduction leaves it unchanged.
    """

    def __init__(self, name: str = "l1_distance_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return distance_loss(y_pred, y_true, lengths_from_labels(y_true, pairs=True))


@keras.saving.register_keras_serializable(package="bert_repro")
class L1DepthLoss(keras.losses.Loss):
    """Keras form of :func:`depth_loss`; lengths come from the -1 padding of ``y_true``.

    ``__call__(y_true (B, W), y_pred (B, W))`` returns the batch's scalar loss.
    """

    def __init__(self, name: str = "l1_depth_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return depth_loss(y_pred, y_true, lengths_from_labels(y_true, pairs=False))


LOSS_CLASSES = {"distance": L1DistanceLoss, "depth": L1DepthLoss}
