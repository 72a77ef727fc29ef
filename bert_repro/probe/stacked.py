"""``K`` structural probes of each kind as one Keras layer: stacked projections ``(K, H, rank)``.

Probe ``k`` of a kind reads hidden state ``k`` of a ``(K, B, W, H)`` batch of word features (as
:meth:`bert_repro.probe.data.ProbeDataset.layer_batches` serves them) through its own slice
``B_k`` of shape ``(H, rank)``, exactly as a lone
:class:`~bert_repro.probe.model.TwoWordProbe` (``d(h_i, h_j) = |B_k^T(h_i - h_j)|^2``) or
:class:`~bert_repro.probe.model.OneWordProbe` (``|B_k^T h_i|^2``) would; the ``K`` losses of a
batch (:func:`stacked_distance_loss`, :func:`stacked_depth_loss`) are the per-probe values of
:func:`bert_repro.probe.loss.distance_loss` and :func:`~bert_repro.probe.loss.depth_loss`.
Probes are independent: the gradient of the summed losses on slice ``k`` is probe ``k``'s own.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from .._keras import keras
from ..errors import ConfigError, check_choice
from .loss import build_label_mask, build_word_mask
from .model import (
    INIT_RANGE,
    PROBE_KINDS,
    ProbeKind,
    make_probe,
    pairwise_sq_distances,
    squared_norms,
)

__all__ = [
    "STACKED_LOSSES",
    "StackedProbes",
    "nonempty_count",
    "pack_words",
    "stacked_depth_loss",
    "stacked_distance_loss",
    "unpack_words",
]


def _per_probe_mean(per_sentence: tf.Tensor, norm: tf.Tensor, count=None) -> tf.Tensor:
    """``(K, B)`` sums, ``(B,)`` norms -> ``(K,)`` means of ``sum / norm`` over the non-empty
    sentences (0 for an all-empty batch), as :func:`bert_repro.probe.loss.distance_loss`.

    ``count``: the number of non-empty sentences to divide by (default: this batch's). A
    replica holding rows of a larger batch passes that batch's count, so that the replicas'
    results add up to the whole batch's mean (:func:`nonempty_count`).
    """
    nonempty = norm > 0
    ratio = tf.where(nonempty, per_sentence / tf.where(nonempty, norm, 1.0), 0.0)
    if count is None:
        count = tf.reduce_sum(tf.cast(nonempty, ratio.dtype))
    return tf.math.divide_no_nan(tf.reduce_sum(ratio, axis=1), tf.cast(count, ratio.dtype))


def nonempty_count(lengths) -> tf.Tensor:
    """The number of sentences with at least one word: the mean's denominator (float32)."""
    return tf.reduce_sum(tf.cast(tf.convert_to_tensor(lengths) > 0, tf.float32))


def stacked_distance_loss(predicted, gold, lengths, count=None) -> tf.Tensor:
    """:func:`~bert_repro.probe.loss.distance_loss` of ``K`` probes on one batch.

    Args:
        predicted: ``(K, B, W, W)`` squared distances; gold: ``(B, W, W)``; lengths: ``(B,)``.
        count: the mean's denominator, default this batch's :func:`nonempty_count` (see
            :func:`_per_probe_mean`).

    Returns:
        ``(K,)``: per probe, the mean over non-empty sentences of ``sum_{i,j<n}|pred-gold|/n^2``.
    """
    mask = build_label_mask(lengths, tf.shape(predicted)[2]) > 0  # (B, W, W)
    diff = tf.where(mask, tf.abs(predicted - tf.cast(gold, tf.float32)), 0.0)
    n = tf.cast(lengths, tf.float32)
    return _per_probe_mean(tf.reduce_sum(diff, axis=[2, 3]), tf.square(n), count)


def stacked_depth_loss(predicted, gold, lengths, count=None) -> tf.Tensor:
    """:func:`~bert_repro.probe.loss.depth_loss` of ``K`` probes on one batch.

    Args:
        predicted: ``(K, B, W)`` squared norms; gold: ``(B, W)``; lengths: ``(B,)``.
        count: as :func:`stacked_distance_loss`.

    Returns:
        ``(K,)``: per probe, the mean over non-empty sentences of ``sum_{i<n}|pred-gold|/n``.
    """
    mask = build_word_mask(lengths, tf.shape(predicted)[2]) > 0  # (B, W)
    diff = tf.where(mask, tf.abs(predicted - tf.cast(gold, tf.float32)), 0.0)
    return _per_probe_mean(tf.reduce_sum(diff, axis=2), tf.cast(lengths, tf.float32), count)


def pack_words(flat: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The real words' rows of padded batches, and where each padded slot finds its row.

    Args:
        flat: ``(K, B*W, H)`` word vectors (the batch's ``(B, W)`` slots flattened).
        mask: ``(B, W)`` bool, True for real words.

    Returns:
        ``packed``: ``(K, N, H)`` the ``N`` real words' rows, in slot order; ``slot``:
        ``(B*W,)`` int64, the row of ``packed`` for each slot, ``N`` for padding (see
        :func:`unpack_words`).
    """
    real = tf.reshape(mask, [-1])  # (B*W,)
    rows = tf.where(real)[:, 0]  # (N,)
    slot = tf.where(real, tf.cumsum(tf.cast(real, tf.int64)) - 1, tf.size(rows, tf.int64))
    return tf.gather(flat, rows, axis=1), slot


def unpack_words(packed: tf.Tensor, slot: tf.Tensor) -> tf.Tensor:
    """``(K, N, ...)`` per-word values -> ``(K, B*W, ...)`` per slot, zero on padding."""
    pad = [[0, 0], [0, 1]] + [[0, 0]] * (packed.shape.rank - 2)
    return tf.gather(tf.pad(packed, pad), slot, axis=1)  # row N of the padded values is 0


STACKED_LOSSES = {"distance": stacked_distance_loss, "depth": stacked_depth_loss}


@keras.saving.register_keras_serializable(package="bert_repro")
class StackedProbes(keras.layers.Layer):
    """``num_probes`` independent probes of each kind, as stacked projections.

    Slice ``k`` of the ``(num_probes, model_dim, probe_rank)`` weight ``proj_<kind>`` is probe
    ``k``'s ``B`` and reads hidden state ``k`` of the features; it is initialised as
    ``make_probe(kind, model_dim, probe_rank, seed=seed).proj`` is.

    Args:
        num_probes: ``K``, the hidden states probed at once.
        model_dim, probe_rank: see :class:`~bert_repro.probe.model.TwoWordProbe`.
        kinds: ``"distance"`` and/or ``"depth"``.
        seed: seed of every slice's ``U(-0.05, 0.05)`` initialiser.

    Call:
        ``(features (K, B, W, model_dim), lengths (B,) optional)`` -> ``{"distance": (K, B, W,
        W), "depth": (K, B, W)}`` (the kinds held); see :meth:`call`.
    """

    def __init__(
        self,
        num_probes: int,
        model_dim: int,
        probe_rank: int,
        kinds: Sequence[ProbeKind] = PROBE_KINDS,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min(int(num_probes), int(model_dim), int(probe_rank)) < 1:
            raise ConfigError(
                "num_probes, model_dim and probe_rank must be >= 1, got "
                f"{num_probes}, {model_dim}, {probe_rank}"
            )
        if not kinds or len(set(kinds)) != len(kinds):
            raise ConfigError(f"kinds must be distinct and not empty, got {list(kinds)}")
        for kind in kinds:
            check_choice("kind", kind, PROBE_KINDS)
        self.num_probes = int(num_probes)
        self.model_dim = int(model_dim)
        self.probe_rank = int(probe_rank)
        self.kinds = tuple(kinds)
        self.seed = None if seed is None else int(seed)
        self.projections = tuple(
            self.add_weight(
                name=f"proj_{kind}",
                shape=(self.num_probes, self.model_dim, self.probe_rank),
                initializer=self._initial_slices,
                trainable=True,
            )
            for kind in self.kinds
        )
        self.built = True

    def _initial_slices(self, shape, dtype=None):
        """``K`` slices, each drawn as a lone probe's ``proj`` (a fresh seeded initialiser)."""
        k, h, r = shape
        init = keras.initializers.RandomUniform
        return tf.stack(
            [init(-INIT_RANGE, INIT_RANGE, seed=self.seed)((h, r), dtype) for _ in range(k)]
        )

    def call(self, features, lengths=None):
        """Predictions of every probe.

        Args:
            features: ``(K, B, W, model_dim)`` word vectors, zero on padding.
            lengths: ``(B,)`` words per sentence, optional: given, only the real words are
                projected (:func:`pack_words`; the same values, for about
                ``B * W / sum(lengths)`` times fewer multiplications).

        Returns:
            ``{kind: (K, B, W, W) distances or (K, B, W) depths}``; padding words are
            projected to 0 either way (mask them out: :func:`stacked_distance_loss`).
        """
        features = tf.convert_to_tensor(features, tf.float32)
        k, b, w = tf.unstack(tf.shape(features)[:3])
        words = tf.reshape(features, [k, b * w, self.model_dim])  # (K, B*W, H)
        slot = None
        if lengths is not None:
            words, slot = pack_words(words, tf.sequence_mask(lengths, w))  # (K, N, H)
        unpack = (lambda v: v) if slot is None else (lambda v: unpack_words(v, slot))
        out = {}
        for kind, proj in zip(self.kinds, self.projections, strict=True):
            y = tf.matmul(words, proj)  # (K, N or B*W, R)
            if kind == "depth":
                out[kind] = tf.reshape(unpack(squared_norms(y)), [k, b, w])
            else:
                y = tf.reshape(unpack(y), [k * b, w, self.probe_rank])
                out[kind] = tf.reshape(pairwise_sq_distances(y), [k, b, w, w])
        return out

    def probe(self, kind: ProbeKind, index: int):
        """A standalone :class:`TwoWordProbe`/:class:`OneWordProbe` holding slice ``index``."""
        check_choice("kind", kind, self.kinds)
        probe = make_probe(kind, self.model_dim, self.probe_rank, seed=self.seed)
        probe.proj.assign(self.projections[self.kinds.index(kind)][index])
        return probe

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_probes=self.num_probes,
            model_dim=self.model_dim,
            probe_rank=self.probe_rank,
            kinds=list(self.kinds),
            seed=self.seed,
        )
        return config
