"""Dozat & Manning's biaffine dependency parser (ICLR 2017) as a head on a BERT encoder.

Each word ``i`` gets a vector ``r_i`` (its first wordpiece's last hidden state; ROOT is
``[CLS]``, position 0). Four MLPs (one dense layer, leaky ReLU of slope 0.1 as in the SuPar
implementation, dropout) give it a *dependent* and a *head* view for arcs (``d_i``, ``h_j``, ``arc_mlp_size`` units) and for relations
(``d'_i``, ``h'_j``, ``rel_mlp_size`` units). Then

* arc score of head ``j`` for dependent ``i`` (biaffine):
  ``s_ij = h_j^T U d_i + h_j^T u``, ``U (a, a)``, ``u (a,)``; the second term is the prior
  of ``j`` being a head at all;
* relation score of label ``k`` for the arc ``j -> i`` (bilinear plus linear):
  ``t_ijk = h'_j^T U_k d'_i + w_k^T [d'_i ; h'_j] + b_k``.

Relation scores are computed for every pair (cheap next to the encoder: about
``B W R r (r + W)`` multiply-adds with ``r ~ 100``); the loss reads them at the *gold* head (training), decoding at the *predicted*
head (:func:`bert_repro.finetune.parse.decode`), as the paper prescribes.

Loss (:class:`ArcLoss` + :class:`RelationLoss`): cross-entropy of the gold head over
``{ROOT} ∪ words`` plus cross-entropy of the gold relation given the gold head, each averaged
over the real words of the batch (padding words, label ``-1``, count for nothing).
"""

from __future__ import annotations

import tensorflow as tf

from .._keras import keras
from .heads import PAD_LOGIT

LABEL_PAD = -1
"""Label (head, relation) and word position of padding words."""


def gather_words(sequence, word_starts):
    """ROOT and word vectors from wordpiece states: ``[CLS]`` then each word's first piece.

    Why the first wordpiece: it is BERT's own recipe for word-level tasks (Devlin et al. 2019,
    §5.3: NER tags are predicted from each word's first sub-token) and the usual one in BERT
    parsers; every layer's self-attention already lets it see the word's other pieces, and it
    needs no averaging over a varying number of pieces (mean pooling also works, about as well).

    Args:
        sequence: ``(B, T, H)`` last hidden states.
        word_starts: ``(B, W)`` int, position of each word's first wordpiece, ``-1`` on padding.

    Returns:
        ``(B, W + 1, H)``: index 0 the ``[CLS]`` vector (ROOT), index ``i`` word ``i``
        (padding words get the ``[CLS]`` vector; they are masked downstream).
    """
    starts = tf.maximum(tf.cast(word_starts, tf.int32), 0)  # (B, W)
    index = tf.concat([tf.zeros_like(starts[:, :1]), starts], axis=1)  # (B, W + 1)
    return tf.gather(sequence, index, batch_dims=1)


def arc_mask(word_starts):
    """``(B, W, W + 1)`` bool: may word ``i`` (row) take head ``j`` (column, 0 = ROOT)?

    True unless ``j`` is a padding word or ``j == i + 1`` (a word is not its own head).
    """
    real = tf.cast(word_starts, tf.int32) >= 0  # (B, W)
    heads = tf.concat([tf.ones_like(real[:, :1]), real], axis=1)  # (B, W + 1)
    w = tf.shape(word_starts)[1]
    self_arc = tf.concat([tf.zeros([w, 1], tf.bool), tf.eye(w, dtype=tf.bool)], axis=1)
    not_self = tf.logical_not(self_arc)  # (W, W + 1): column i + 1 is word i itself
    return tf.logical_and(heads[:, None, :], not_self[None])


def biaffine_arc_scores(dep, head, weight, bias):
    """``s[b, i, j] = head[b, j]^T weight dep[b, i] + head[b, j]^T bias``.

    Args:
        dep: ``(B, W, a)`` dependent views of the words.
        head: ``(B, W + 1, a)`` head views of ROOT and the words.
        weight: ``(a, a)`` ``U``; bias: ``(a,)`` ``u``.

    Returns:
        ``(B, W, W + 1)`` arc scores, row = dependent, column = candidate head.
    """
    bilinear = tf.einsum("bjp,pq,biq->bij", head, weight, dep)
    prior = tf.einsum("bjp,p->bj", head, bias)  # (B, W + 1)
    return bilinear + prior[:, None, :]


def bilinear_relation_scores(dep, head, weight, dep_weight, head_weight, bias):
    """``t[b, i, j, k] = head[b, j]^T weight[k] dep[b, i] + dep_weight[:, k] . dep[b, i]
    + head_weight[:, k] . head[b, j] + bias[k]``.

    Args:
        dep: ``(B, W, r)``; head: ``(B, W + 1, r)``.
        weight: ``(R, r, r)``; dep_weight, head_weight: ``(r, R)``; bias: ``(R,)``.

    Returns:
        ``(B, W, W + 1, R)`` relation scores of every arc ``j -> i``.
    """
    bilinear = tf.einsum("bjp,kpq,biq->bijk", head, weight, dep)
    linear_dep = tf.einsum("bip,pk->bik", dep, dep_weight)[:, :, None, :]
    linear_head = tf.einsum("bjp,pk->bjk", head, head_weight)[:, None, :, :]
    return bilinear + linear_dep + linear_head + bias


def masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` is true (0 when nothing is)."""
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(values * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def arc_cross_entropy(gold_heads, arc_scores):
    """Mean over real words of ``-log softmax_j(s_ij)[gold head]``.

    Args:
        gold_heads: ``(B, W)`` int, 0 = ROOT, ``-1`` on padding words.
        arc_scores: ``(B, W, W + 1)`` logits.
    """
    gold = tf.cast(gold_heads, tf.int32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.maximum(gold, 0), logits=tf.cast(arc_scores, tf.float32)
    )
    return masked_mean(ce, gold >= 0)


def relation_cross_entropy(gold, rel_scores):
    """Mean over real words of ``-log softmax_k(t_{i, g_i, k})[gold relation]``.

    Args:
        gold: ``(B, W, 2)`` int: gold head ``g_i`` and gold relation id, ``-1`` on padding.
        rel_scores: ``(B, W, W + 1, R)`` logits.
    """
    gold = tf.cast(gold, tf.int32)
    heads, rels = gold[..., 0], gold[..., 1]
    at_gold = tf.gather(tf.cast(rel_scores, tf.float32), tf.maximum(heads, 0), batch_dims=2)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.maximum(rels, 0), logits=at_gold
    )  # (B, W)
    return masked_mean(ce, rels >= 0)


def _mlp(units: int, dropout: float, initializer_range: float, name: str):
    return keras.Sequential(
        [
            keras.layers.Dense(
                units,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
                name="dense",
            ),
            keras.layers.LeakyReLU(0.1),
            keras.layers.Dropout(dropout),
        ],
        name=name,
    )


@keras.saving.register_keras_serializable(package="bert_repro")
class BiaffineParserHead(keras.layers.Layer):
    """Arc and relation scores of every word pair (see the module docstring for the maths).

    Args:
        relations: the relation labels ``R`` (their order fixes the relation ids).
        arc_mlp_size: units ``a`` of the arc MLPs (Dozat & Manning: 500).
        rel_mlp_size: units ``r`` of the relation MLPs (Dozat & Manning: 100).
        dropout: dropout after each MLP (Dozat & Manning: 0.33).
        initializer_range: std of the MLP kernels' truncated-normal initialiser (BERT: 0.02);
            ``U``, ``U_k`` and the linear terms start at zero, as in SuPar's implementation (the
            first scores are uniform).

    Call args:
        sequence: ``(B, T, H)`` last hidden states.
        word_starts: ``(B, W)`` first-wordpiece position of each word, ``-1`` on padding.

    Returns:
        ``{"arc": (B, W, W + 1), "rel": (B, W, W + 1, R)}`` float32 logits; arcs to padding
        words and self-arcs get :data:`~bert_repro.finetune.heads.PAD_LOGIT`.
    """

    def __init__(
        self,
        relations,
        arc_mlp_size: int = 500,
        rel_mlp_size: int = 100,
        dropout: float = 0.33,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.relations = tuple(str(r) for r in relations)
        if not self.relations:
            raise ValueError("a parser head needs at least one relation label")
        self.arc_mlp_size = int(arc_mlp_size)
        self.rel_mlp_size = int(rel_mlp_size)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        mlp = (self.dropout, self.initializer_range)
        self.arc_dep = _mlp(self.arc_mlp_size, *mlp, name="arc_dep")
        self.arc_head = _mlp(self.arc_mlp_size, *mlp, name="arc_head")
        self.rel_dep = _mlp(self.rel_mlp_size, *mlp, name="rel_dep")
        self.rel_head = _mlp(self.rel_mlp_size, *mlp, name="rel_head")

    def build(self, input_shape):
        a, r, n_rel = self.arc_mlp_size, self.rel_mlp_size, len(self.relations)
        zeros = keras.initializers.Zeros()
        self.arc_weight = self.add_weight(name="arc_weight", shape=(a, a), initializer=zeros)
        self.arc_bias = self.add_weight(name="arc_bias", shape=(a,), initializer=zeros)
        self.rel_weight = self.add_weight(name="rel_weight", shape=(n_rel, r, r), initializer=zeros)
        self.rel_dep_weight = self.add_weight(
            name="rel_dep_weight", shape=(r, n_rel), initializer=zeros
        )
        self.rel_head_weight = self.add_weight(
            name="rel_head_weight", shape=(r, n_rel), initializer=zeros
        )
        self.rel_bias = self.add_weight(name="rel_bias", shape=(n_rel,), initializer=zeros)
        super().build(input_shape)

    def call(self, sequence, word_starts, training=None):
        nodes = gather_words(sequence, word_starts)  # (B, W + 1, H), ROOT first
        words = nodes[:, 1:]  # (B, W, H)
        arc = biaffine_arc_scores(
            self.arc_dep(words, training=training),
            self.arc_head(nodes, training=training),
            self.arc_weight,
            self.arc_bias,
        )
        rel = bilinear_relation_scores(
            self.rel_dep(words, training=training),
            self.rel_head(nodes, training=training),
            self.rel_weight,
            self.rel_dep_weight,
            self.rel_head_weight,
            self.rel_bias,
        )
        mask = arc_mask(word_starts)
        arc = tf.where(mask, tf.cast(arc, tf.float32), tf.constant(PAD_LOGIT, tf.float32))
        return {"arc": arc, "rel": tf.cast(rel, tf.float32)}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            relations=list(self.relations),
            arc_mlp_size=self.arc_mlp_size,
            rel_mlp_size=self.rel_mlp_size,
            dropout=self.dropout,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package="bert_repro")
class ArcLoss(keras.losses.Loss):
    """Keras loss of the ``"arc"`` output: :func:`arc_cross_entropy` (a batch mean already)."""

    def __init__(self, name: str = "arc_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return arc_cross_entropy(y_true, y_pred)


@keras.saving.register_keras_serializable(package="bert_repro")
class RelationLoss(keras.losses.Loss):
    """Keras loss of the ``"rel"`` output: :func:`relation_cross_entropy` (labels ``(B, W, 2)``
    gold head and relation)."""

    def __init__(self, name: str = "rel_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return relation_cross_entropy(y_true, y_pred)
