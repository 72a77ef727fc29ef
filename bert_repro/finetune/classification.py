"""Sentence and sentence-pair classification examples, their encoding, and accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .dataset import Features


@dataclass(frozen=True)
class ClassificationExample:
    """One labelled text or text pair.

    Attributes:
        text_a: the text (MNLI: the premise).
        text_b: the second text (MNLI: the hypothesis), or ``None`` for single texts.
        label: class index in ``[0, C)``.
        id: where it came from (row number or dataset id), for messages.
    """

    text_a: str
    text_b: str | None
    label: int
    id: str = ""


def encode_classification(
    tokenizer, examples: Sequence[ClassificationExample], max_seq_length: int
) -> tuple[Features, np.ndarray]:
    """Tokenise ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``, cut to ``max_seq_length``.

    Pairs are truncated longest-first (one wordpiece at a time from the longer text), as BERT's
    ``_truncate_seq_pair``; single texts lose their tail.

    Returns:
        The features and the ``(N,)`` int32 labels.

    Raises:
        DataError: no examples, or single texts mixed with pairs.
    """
    if not examples:
        raise DataError("no examples to encode")
    pairs = {ex.text_b is not None for ex in examples}
    if len(pairs) > 1:
        raise DataError("examples mix single texts and text pairs")
    texts_a = [ex.text_a for ex in examples]
    texts_b = [ex.text_b for ex in examples] if pairs == {True} else None
    enc = tokenizer(
        texts_a,
        texts_b,
        truncation="longest_first",
        max_length=max_seq_length,
        return_token_type_ids=True,
        return_attention_mask=False,
    )
    features = Features(
        tuple(np.asarray(x, dtype=np.int32) for x in enc["input_ids"]),
        tuple(np.asarray(x, dtype=np.int32) for x in enc["token_type_ids"]),
    )
    labels = np.fromiter((ex.label for ex in examples), dtype=np.int32, count=len(examples))
    return features, labels


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose arg-max logit is the label; ``logits (N, C)``, ``labels (N,)``."""
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits {logits.shape} and labels {labels.shape} do not match")
    if labels.size == 0:
        return float("nan")
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def check_labels(examples: Sequence[ClassificationExample], num_labels: int, what: str) -> None:
    """Raise :class:`DataError` naming the first example whose label is outside ``[0, C)``."""
    for ex in examples:
        if not 0 <= ex.label < num_labels:
            raise DataError(
                f"{what} example {ex.id or '?'} has label {ex.label}, outside 0..{num_labels - 1}"
            )
