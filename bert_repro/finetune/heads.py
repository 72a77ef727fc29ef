"""Task heads put on a BERT encoder: sentence(-pair) classification and answer-span prediction.

Both follow transformers' PyTorch/TF heads so that results compare with the usual recipes:

* :class:`ClassificationHead` is ``BertForSequenceClassification``'s: dropout on the pooler
  output (``tanh(W_p h_[CLS] + b_p)``, part of the encoder) then a linear layer to the class
  logits.
* :class:`SpanHead` is ``BertForQuestionAnswering``'s: one linear layer ``H -> 2`` on every
  position's last hidden state, giving start and end logits; padding positions get a very low
  logit so that the softmax over positions ignores them (the transformers head leaves that to
  the data).
"""

from __future__ import annotations

import tensorflow as tf

from .._keras import keras

# Logit given to padding positions (float32): exp(-1e9 - max) is exactly 0.
PAD_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="bert_repro")
class ClassificationHead(keras.layers.Layer):
    """Dropout then a dense layer on the pooled ``[CLS]`` vector.

    Args:
        num_labels: number of classes ``C``.
        dropout: dropout rate on the pooled vector (BERT: the encoder's hidden dropout, 0.1).
        initializer_range: std of the truncated-normal kernel initialiser (BERT: 0.02).

    Call args:
        pooled: ``(B, H)`` pooler output.

    Returns:
        ``(B, C)`` float32 logits.
    """

    def __init__(
        self, num_labels: int, dropout: float = 0.1, initializer_range: float = 0.02, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_labels = int(num_labels)
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.drop = keras.layers.Dropout(self.dropout)
        self.classifier = keras.layers.Dense(
            self.num_labels,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            name="classifier",
        )

    def call(self, pooled, training=None):
        logits = self.classifier(self.drop(pooled, training=training))  # (B, C)
        return tf.cast(logits, tf.float32)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_labels=self.num_labels,
            dropout=self.dropout,
            initializer_range=self.initializer_range,
        )
        return config


def mask_logits(logits, mask):
    """Set ``logits`` to :data:`PAD_LOGIT` where ``mask`` is 0; shapes ``(B, T)`` both."""
    logits = tf.cast(logits, tf.float32)
    return tf.where(tf.cast(mask, tf.bool), logits, tf.constant(PAD_LOGIT, tf.float32))


@keras.saving.register_keras_serializable(package="bert_repro")
class SpanHead(keras.layers.Layer):
    """Start and end logits of an answer span over the positions of each input.

    ``start_t = w_s · h_t + b_s`` and ``end_t = w_e · h_t + b_e`` for each position ``t``; a
    softmax over ``t`` gives the probability that the answer starts (ends) there.

    Args:
        initializer_range: std of the truncated-normal kernel initialiser (BERT: 0.02).

    Call args:
        sequence: ``(B, T, H)`` last hidden states.
        mask: ``(B, T)`` attention mask (1 on real tokens).

    Returns:
        ``{"start": (B, T), "end": (B, T)}`` float32 logits, :data:`PAD_LOGIT` on padding.
    """

    def __init__(self, initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_range = float(initializer_range)
        self.qa_outputs = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            name="qa_outputs",
        )

    def call(self, sequence, mask):
        logits = self.qa_outputs(sequence)  # (B, T, 2)
        start, end = tf.unstack(logits, axis=-1)  # (B, T) each
        return {"start": mask_logits(start, mask), "end": mask_logits(end, mask)}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(initializer_range=self.initializer_range)
        return config
