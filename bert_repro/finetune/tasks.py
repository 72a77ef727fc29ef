"""The fine-tuning tasks: their data sources, heads, losses and evaluation metric.

==========  =========================  ==================================  ====================
task        tensorflow-datasets        local file (``data=``)              metric
==========  =========================  ==================================  ====================
``mnli``    ``glue/mnli`` train /      GLUE ``.tsv`` (sentence1,           accuracy
            validation_matched         sentence2, gold_label)
``squad``   ``squad/v1.1`` train /     SQuAD JSON (``data[].paragraphs[]   exact match, F1 (%)
            validation                 .qas[]``)
``agnews``  ``ag_news_subset`` train   CSV ``label,title,description``,    accuracy
            / test                     labels 1..4
``parse``   --                         CoNLL-U treebank (UD English-EWT    UAS, LAS, with and
                                       ``en_ewt-ud-{train,dev,test}``)     without punctuation
==========  =========================  ==================================  ====================

A single local file is split into a training and an evaluation part by a seeded permutation
(:func:`~bert_repro.finetune.sources.holdout_split`, 20 % held out by default) unless a separate
evaluation file is given. The examples are read by :mod:`.examples` (no TensorFlow);
``TaskData`` and ``load_task_data`` are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._keras import keras
from ..errors import DataError, check_choice
from . import agnews, mnli, parse, squad
from .biaffine import ArcLoss, BiaffineParserHead, RelationLoss
from .classification import accuracy, check_labels, encode_classification
from .config import TASKS, FinetuneConfig, TaskName
from .dataset import Features, predict_logits
from .examples import TaskData, load_task_data  # noqa: F401  (re-exported: their old home)
from .heads import ClassificationHead, SpanHead
from .squad_metrics import squad_scores


@dataclass(frozen=True)
class Encoded:
    """Training inputs and labels of a task (labels: ``(N,)`` or a dict of ``(N,)``)."""

    features: Features
    labels: np.ndarray | dict[str, np.ndarray]
    info: dict = field(default_factory=dict)


class ClassificationTask:
    """Sentence(-pair) classification with a :class:`ClassificationHead`; metric: accuracy."""

    def __init__(self, name: str, labels: tuple[str, ...]):
        self.name = name
        self.labels = labels

    def encode(self, tokenizer, examples, config: FinetuneConfig) -> Encoded:
        check_labels(examples, len(self.labels), self.name)
        features, labels = encode_classification(tokenizer, examples, config.max_seq_length)
        return Encoded(features, labels, {"n_examples": len(examples)})

    def make_head(
        self, config: FinetuneConfig, encoder_config, encoded: Encoded | None = None
    ) -> ClassificationHead:
        dropout = encoder_config.hidden_dropout_prob if config.dropout is None else config.dropout
        return ClassificationHead(
            len(self.labels),
            dropout=dropout,
            initializer_range=encoder_config.initializer_range,
            name="classification_head",
        )

    def compile_args(self) -> dict:
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def evaluate(self, model, tokenizer, examples, config: FinetuneConfig) -> dict:
        """Accuracy of ``model`` on ``examples`` (and how many there were)."""
        check_labels(examples, len(self.labels), self.name)
        features, labels = encode_classification(tokenizer, examples, config.max_seq_length)
        logits = predict_logits(
            model, features, config.eval_batch_size, pad_id=tokenizer.pad_token_id
        )
        return {"accuracy": accuracy(logits, labels), "n_examples": len(examples)}


def _squad_features(tokenizer, examples, config: FinetuneConfig, *, training: bool):
    """SQuAD windows of ``examples`` with the config's lengths and stride."""
    return squad.make_squad_features(
        tokenizer,
        examples,
        max_seq_length=config.max_seq_length,
        doc_stride=config.doc_stride,
        max_query_length=config.max_query_length,
        training=training,
    )


class SquadTask:
    """Extractive question answering with a :class:`SpanHead`; metrics: exact match and F1."""

    name = "squad"

    def encode(self, tokenizer, examples, config: FinetuneConfig) -> Encoded:
        feats = _squad_features(tokenizer, examples, config, training=True)
        labels = {"start": feats.start_positions, "end": feats.end_positions}
        info = {
            "n_examples": len(examples),
            "n_features": len(feats),
            "n_skipped_answer_not_found": len(feats.skipped),
        }
        return Encoded(feats.features, labels, info)

    def make_head(
        self, config: FinetuneConfig, encoder_config, encoded: Encoded | None = None
    ) -> SpanHead:
        return SpanHead(initializer_range=encoder_config.initializer_range, name="span_head")

    def compile_args(self) -> dict:
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        # BertForQuestionAnswering: (CE(start) + CE(end)) / 2.
        return {"loss": {"start": ce, "end": ce}, "loss_weights": {"start": 0.5, "end": 0.5}}

    def evaluate(self, model, tokenizer, examples, config: FinetuneConfig) -> dict:
        """Official SQuAD v1.1 exact match and F1 (percent) of ``model`` on ``examples``."""
        answers = self.predict(model, tokenizer, examples, config)
        return squad_scores(answers, squad.gold_answers(examples))

    def predict(self, model, tokenizer, examples, config: FinetuneConfig) -> dict[str, str]:
        """Question id -> predicted answer text."""
        feats = _squad_features(tokenizer, examples, config, training=False)
        logits = predict_logits(
            model, feats.features, config.eval_batch_size, pad_id=tokenizer.pad_token_id
        )
        return squad.predict_answers(
            examples, feats, logits["start"], logits["end"], config.max_answer_length
        )


class ParseTask:
    """Dependency parsing with a :class:`BiaffineParserHead` (Dozat & Manning, 2017) on the
    words' first wordpieces; metrics: UAS and LAS with and without punctuation
    (:mod:`bert_repro.finetune.parse`).

    The examples are :class:`bert_repro.treebank.Sentence` objects. The relation labels are
    those of the training sentences (subtypes kept, e.g. ``nsubj:pass``); the head stores them
    (``head.relations``), so a saved model decodes with its own label set.
    """

    name = "parse"

    def encode(self, tokenizer, examples, config: FinetuneConfig) -> Encoded:
        """Inputs, per-word gold heads and (head, relation) labels of the sentences that fit
        in ``config.max_seq_length`` wordpieces (the others are left out and counted)."""
        parse.check_sentences(examples, "training")
        enc = parse.encode_sentences(tokenizer, examples, config.max_seq_length, drop_long=True)
        if len(enc.kept) == 0:
            raise DataError(
                f"no training sentence fits in max_seq_length={config.max_seq_length} "
                "wordpieces; raise it"
            )
        relations = parse.relation_vocabulary(examples)
        kept = [examples[i] for i in enc.kept]
        heads, rels = parse.gold_labels(kept, relations)
        info = {
            "n_sentences": len(examples),
            "n_train_sentences": len(kept),
            "n_skipped_too_long": len(examples) - len(kept),
            "n_train_words": int(sum(len(s) for s in kept)),
            "relations": list(relations),
        }
        return Encoded(enc.features, {"arc": heads, "rel": rels}, info)

    def make_head(
        self, config: FinetuneConfig, encoder_config, encoded: Encoded | None = None
    ) -> BiaffineParserHead:
        if encoded is None or "relations" not in encoded.info:
            raise ValueError("the parser head needs the encoded training data (its relations)")
        dropout = 0.33 if config.dropout is None else config.dropout
        return BiaffineParserHead(
            encoded.info["relations"],
            arc_mlp_size=config.arc_mlp_size,
            rel_mlp_size=config.rel_mlp_size,
            dropout=dropout,
            initializer_range=encoder_config.initializer_range,
            name="biaffine_parser_head",
        )

    def compile_args(self) -> dict:
        # Dozat & Manning: the sum of the arc and the relation cross-entropies.
        return {"loss": {"arc": ArcLoss(), "rel": RelationLoss()}}

    def evaluate(self, model, tokenizer, examples, config: FinetuneConfig) -> dict:
        """UAS/LAS of ``model``'s maximum-spanning-tree parses of ``examples``: every word
        (CoNLL 2018: ``uas``, ``las``) and without punctuation (PTB: ``uas_no_punct``,
        ``las_no_punct``); relations compared by their universal part."""
        parse.check_sentences(examples, "evaluation")
        heads, labels = parse.predict_trees(model, tokenizer, examples, config.eval_batch_size)
        return parse.parse_scores(examples, heads, labels)


_TASKS = {
    "mnli": ClassificationTask("mnli", mnli.MNLI_LABELS),
    "agnews": ClassificationTask("agnews", agnews.AGNEWS_LABELS),
    "squad": SquadTask(),
    "parse": ParseTask(),
}


def get_task(name: TaskName) -> ClassificationTask | SquadTask | ParseTask:
    """The task object for ``"mnli"``, ``"squad"``, ``"agnews"`` or ``"parse"``."""
    check_choice("task", name, TASKS)
    return _TASKS[name]
