"""The three fine-tuning tasks: their data sources, heads, losses and evaluation metric.

==========  =========================  ==================================  ====================
task        tensorflow-datasets        local file (``data=``)              metric
==========  =========================  ==================================  ====================
``mnli``    ``glue/mnli`` train /      GLUE ``.tsv`` (sentence1,           accuracy
            validation_matched         sentence2, gold_label)
``squad``   ``squad/v1.1`` train /     SQuAD JSON (``data[].paragraphs[]   exact match, F1 (%)
            validation                 .qas[]``)
``agnews``  ``ag_news_subset`` train   CSV ``label,title,description``,    accuracy
            / test                     labels 1..4
==========  =========================  ==================================  ====================

A single local file is split into a training and an evaluation part by a seeded permutation
(:func:`~bert_repro.finetune.sources.holdout_split`, 20 % held out by default) unless a separate
evaluation file is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._keras import keras
from ..errors import ConfigError, check_choice
from . import agnews, mnli, squad
from .classification import accuracy, check_labels, encode_classification
from .config import TASKS, FinetuneConfig, TaskName
from .dataset import Features, predict_logits
from .heads import ClassificationHead, SpanHead
from .sources import holdout_split, subsample
from .squad_metrics import squad_scores


@dataclass(frozen=True)
class TaskData:
    """Training and evaluation examples of one task and a record of where they came from.

    Attributes:
        train: training examples.
        eval: evaluation examples.
        source: description for the run's JSON (origin, splits, sizes, seed).
    """

    train: Sequence[Any]
    eval: Sequence[Any]
    source: dict = field(default_factory=dict)


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

    def make_head(self, config: FinetuneConfig, encoder_config) -> ClassificationHead:
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


class SquadTask:
    """Extractive question answering with a :class:`SpanHead`; metrics: exact match and F1."""

    name = "squad"

    def encode(self, tokenizer, examples, config: FinetuneConfig) -> Encoded:
        feats = squad.make_squad_features(
            tokenizer,
            examples,
            max_seq_length=config.max_seq_length,
            doc_stride=config.doc_stride,
            max_query_length=config.max_query_length,
            training=True,
        )
        labels = {"start": feats.start_positions, "end": feats.end_positions}
        info = {
            "n_examples": len(examples),
            "n_features": len(feats),
            "n_skipped_answer_not_found": len(feats.skipped),
        }
        return Encoded(feats.features, labels, info)

    def make_head(self, config: FinetuneConfig, encoder_config) -> SpanHead:
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
        feats = squad.make_squad_features(
            tokenizer,
            examples,
            max_seq_length=config.max_seq_length,
            doc_stride=config.doc_stride,
            max_query_length=config.max_query_length,
            training=False,
        )
        logits = predict_logits(
            model, feats.features, config.eval_batch_size, pad_id=tokenizer.pad_token_id
        )
        return squad.predict_answers(
            examples, feats, logits["start"], logits["end"], config.max_answer_length
        )


_TASKS = {
    "mnli": ClassificationTask("mnli", mnli.MNLI_LABELS),
    "agnews": ClassificationTask("agnews", agnews.AGNEWS_LABELS),
    "squad": SquadTask(),
}

# task -> (tfds loader, train split, eval split, file reader, tfds name)
_SOURCES: dict[str, tuple[Callable, str, str, Callable, str]] = {
    "mnli": (
        mnli.load_mnli_tfds,
        mnli.TRAIN_SPLIT,
        mnli.EVAL_SPLIT,
        mnli.read_mnli_tsv,
        mnli.TFDS_NAME,
    ),
    "agnews": (
        agnews.load_agnews_tfds,
        agnews.TRAIN_SPLIT,
        agnews.EVAL_SPLIT,
        agnews.read_agnews_csv,
        agnews.TFDS_NAME,
    ),
    "squad": (
        squad.load_squad_tfds,
        squad.TRAIN_SPLIT,
        squad.EVAL_SPLIT,
        squad.read_squad_json,
        squad.TFDS_NAME,
    ),
}


def get_task(name: TaskName) -> ClassificationTask | SquadTask:
    """The task object for ``"mnli"``, ``"squad"`` or ``"agnews"``."""
    check_choice("task", name, TASKS)
    return _TASKS[name]


def _where(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


def load_task_data(
    task: TaskName,
    data: str | os.PathLike | None = None,
    *,
    eval_data: str | os.PathLike | None = None,
    eval_fraction: float = 0.2,
    seed: int = 0,
    train_split: str | None = None,
    eval_split: str | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> TaskData:
    """Training and evaluation examples for ``task`` (sources in the module docstring).

    Args:
        task: ``"mnli"``, ``"squad"`` or ``"agnews"``.
        data: a local file; ``None`` reads tensorflow-datasets.
        eval_data: a separate local evaluation file; without it a local ``data`` file is
            split by :func:`holdout_split` (``eval_fraction``, ``seed``).
        eval_fraction: share of a single file held out for evaluation.
        seed: seed of the split and of the subsets below.
        train_split, eval_split: tensorflow-datasets splits (defaults per task, see table).
        tfds_data_dir: where tensorflow-datasets keeps prepared datasets.
        max_train, max_eval: keep a seeded random subset of at most this many examples.

    Returns:
        The examples and a ``source`` record for the run's JSON.
    """
    check_choice("task", task, TASKS)
    load_tfds, default_train, default_eval, read_file, tfds_name = _SOURCES[task]
    if data is None:
        if eval_data is not None:
            raise ConfigError("eval_data needs a local training file in data")
        train_split = train_split or default_train
        eval_split = eval_split or default_eval
        train = load_tfds(train_split, data_dir=tfds_data_dir)
        evaluation = load_tfds(eval_split, data_dir=tfds_data_dir)
        source = {"tfds": tfds_name, "train_split": train_split, "eval_split": eval_split}
    elif eval_data is not None:
        train, evaluation = read_file(data), read_file(eval_data)
        source = {"train_file": _where(data), "eval_file": _where(eval_data)}
    else:
        examples = read_file(data)
        train_idx, eval_idx = holdout_split(len(examples), eval_fraction, seed)
        train = [examples[i] for i in train_idx]
        evaluation = [examples[i] for i in eval_idx]
        source = {
            "file": _where(data),
            "split": f"seeded permutation of the {len(examples)} examples (questions for "
            f"SQuAD): {1 - eval_fraction:.0%} train / {eval_fraction:.0%} eval",
            "eval_fraction": eval_fraction,
            "split_seed": seed,
        }
    train = [train[i] for i in subsample(len(train), max_train, seed)]
    evaluation = [evaluation[i] for i in subsample(len(evaluation), max_eval, seed + 1)]
    source.update(n_train=len(train), n_eval=len(evaluation))
    if max_train is not None or max_eval is not None:
        source.update(max_train=max_train, max_eval=max_eval, subset_seed=seed)
    return TaskData(train=train, eval=evaluation, source=source)
