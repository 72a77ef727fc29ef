"""AG News as a fine-tuning task: the items of :mod:`bert_repro.agnews` (the one reader of the
dataset, CSV or tensorflow-datasets ``ag_news_subset``) as classification examples.

A news item is classified from its cleaned ``title + " " + description``
(:func:`bert_repro.agnews.agnews_text`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .. import agnews
from ..agnews import AGNEWS_LABELS, EVAL_SPLIT, TFDS_NAME, TRAIN_SPLIT, NewsItem
from .classification import ClassificationExample

__all__ = [
    "AGNEWS_LABELS",
    "EVAL_SPLIT",
    "TFDS_NAME",
    "TRAIN_SPLIT",
    "agnews_examples",
    "load_agnews_tfds",
    "read_agnews_csv",
]


def agnews_examples(items: Sequence[NewsItem]) -> list[ClassificationExample]:
    """Classification examples of AG News items; an example's id is ``"line N"`` for a file's
    item, its position for a tfds item."""
    return [
        ClassificationExample(
            item.text, None, item.label, str(i) if item.line is None else f"line {item.line}"
        )
        for i, item in enumerate(items)
    ]


def read_agnews_csv(path: str | os.PathLike) -> list[ClassificationExample]:
    """The examples of an AG News CSV file (:func:`bert_repro.agnews.read_agnews_csv`)."""
    return agnews_examples(agnews.read_agnews_csv(path))


def load_agnews_tfds(
    split: str = TRAIN_SPLIT, *, data_dir: str | os.PathLike | None = None
) -> list[ClassificationExample]:
    """The examples of an ``ag_news_subset`` split (:func:`bert_repro.agnews.load_agnews_tfds`)."""
    return agnews_examples(agnews.load_agnews_tfds(split, data_dir=data_dir))
