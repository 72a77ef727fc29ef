"""A BERT encoder and a task head as one Keras model, trained end to end with ``fit``."""

from __future__ import annotations

from .._keras import keras
from .biaffine import BiaffineParserHead
from .heads import ClassificationHead, SpanHead

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@keras.saving.register_keras_serializable(package="bert_repro")
class BertTaskModel(keras.Model):
    """``head(encoder(inputs))``: a ``TFBertModel`` with a :mod:`~bert_repro.finetune.heads` head.

    Args:
        encoder: a ``transformers.TFBertModel`` (its weights are trained too).
        head: a :class:`ClassificationHead` (fed the ``(B, H)`` pooler output), a
            :class:`SpanHead` (fed the ``(B, T, H)`` last hidden states and the mask) or a
            :class:`~bert_repro.finetune.biaffine.BiaffineParserHead` (fed the last hidden
            states and ``inputs["word_starts"]``).

    Call args:
        inputs: dict of ``(B, T)`` int32 ``input_ids``, ``attention_mask``, ``token_type_ids``
            (and ``(B, W)`` ``word_starts`` for the parser).

    Returns:
        ``(B, C)`` logits for classification; ``{"start", "end"}`` ``(B, T)`` logits for spans;
        ``{"arc": (B, W, W + 1), "rel": (B, W, W + 1, R)}`` for parsing.
    """

    def __init__(self, encoder, head, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(head, (ClassificationHead, SpanHead, BiaffineParserHead)):
            raise TypeError(
                f"head must be a ClassificationHead, SpanHead or BiaffineParserHead, not "
                f"{type(head)}"
            )
        self.encoder = encoder
        self.head = head
        uses_pooler = isinstance(head, ClassificationHead)
        if not uses_pooler and getattr(encoder, "bert", None) is not None:
            # Span prediction and parsing do not use the pooler (BertForQuestionAnswering has
            # none): keep it as it was rather than leave it without gradients.
            encoder.bert.pooler.trainable = False

    def call(self, inputs, training=None):
        out = self.encoder(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            token_type_ids=inputs["token_type_ids"],
            output_hidden_states=False,
            training=bool(training),
        )
        if isinstance(self.head, SpanHead):
            return self.head(out.last_hidden_state, inputs["attention_mask"])
        if isinstance(self.head, BiaffineParserHead):
            return self.head(out.last_hidden_state, inputs["word_starts"], training=training)
        return self.head(out.pooler_output, training=training)

    def get_config(self) -> dict:
        return {
            "encoder_config": self.encoder.config.to_dict(),
            "head": keras.layers.serialize(self.head),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild with a freshly initialised encoder of the same configuration."""
        from transformers import BertConfig, TFBertModel

        encoder = TFBertModel(BertConfig.from_dict(config["encoder_config"]))
        head = keras.layers.deserialize(config["head"], custom_objects=custom_objects)
        return cls(encoder, head, name=config.get("name"))
