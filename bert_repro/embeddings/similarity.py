"""Cosine similarity between word occurrences and between sentences.

``cosine_similarity(x, y, eps=1e-8) = x.y / max(|x| |y|, eps)`` (the seed notebook 002's
``cosine_similarity_manual``) and ``pairwise_cosine`` are :mod:`bert_repro.ops`' functions,
re-exported: a zero vector has similarity 0 with anything, never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DataError, check_not_string
from ..ops import SubwordPooling, cosine_similarity, pairwise_cosine
from .recipes import Recipe
from .sentences import SentencePooling, sentence_features
from .words import WordOccurrences, word_occurrences

__all__ = [
    "cosine_similarity",
    "pairwise_cosine",
    "occurrence_similarity",
    "sentence_similarity",
]


def occurrence_similarity(
    model,
    tokenizer,
    texts: Sequence[str],
    word: str,
    strategy: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
    batch_size: int | None = None,
) -> tuple[WordOccurrences, np.ndarray]:
    """Cosine similarity between every pair of occurrences of ``word`` in ``texts``.

    Returns:
        ``(occurrences, matrix)``: the :class:`WordOccurrences` (N of them, corpus order) and
        the ``(N, N)`` matrix of their cosine similarities (1 on the diagonal).
    """
    occ = word_occurrences(
        model, tokenizer, texts, word, strategy, pooling=pooling, batch_size=batch_size
    )
    return occ, pairwise_cosine(occ.vectors)


def sentence_similarity(
    model,
    tokenizer,
    texts: Sequence[str],
    other_texts: Sequence[str] | None = None,
    *,
    hows: Sequence[SentencePooling] = ("cls", "mean", "pooler"),
    strategy: Recipe = "last_layer",
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Sentence-to-sentence cosine similarity for lists of texts.

    Args:
        texts: N texts.
        other_texts: M texts to compare with (default: ``texts`` with themselves).
        hows: sentence vectors to use (see :mod:`bert_repro.embeddings.sentences`).
        strategy: layer recipe for ``cls``/``mean``.

    Returns:
        ``{how: (N, M) matrix}``.
    """
    for name, given in (("texts", texts), ("other_texts", other_texts)):
        check_not_string(given, name)
        if given is not None and len(given) == 0:
            raise DataError(f"{name} is empty: no sentences to compare")
    texts = list(texts)
    both = texts if other_texts is None else [*texts, *other_texts]
    vectors = sentence_features(
        model, tokenizer, both, hows, strategy=strategy, batch_size=batch_size
    )
    n = len(texts)
    out = {}
    for how, v in vectors.items():
        out[how] = pairwise_cosine(v) if other_texts is None else pairwise_cosine(v[:n], v[n:])
    return out
