"""Cosine similarity between word occurrences and between sentences.

``cosine_similarity(x, y, eps=1e-8) = x.y / max(|x| |y|, eps)`` (the seed notebook 002's
``cosine_similarity_manual``) and ``pairwise_cosine`` are :mod:`bert_repro.ops`' functions,
re-exported: a zero vector has similarity 0 with anything, never NaN.

:func:`similarity_study` is the seed's whole question in one call (every occurrence of some
words, and the texts as sentences), returning a :class:`SimilarityResult` that saves itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError, check_choice, check_not_string
from ..io import SavesResults
from ..ops import SUBWORD_POOLINGS, SubwordPooling, cosine_similarity, pairwise_cosine
from ..settings import ExtractionSettings
from ._extraction import resolve_settings
from .recipes import Recipe, check_recipe
from .sentences import (
    SENTENCE_POOLINGS,
    SentencePooling,
    check_sentence_poolings,
    sentence_features,
)
from .words import WordOccurrences, word_occurrences

__all__ = [
    "SimilarityResult",
    "check_similarity_study",
    "cosine_similarity",
    "pairwise_cosine",
    "occurrence_similarity",
    "sentence_similarity",
    "similarity_study",
]


def occurrence_similarity(
    model,
    tokenizer,
    texts: Sequence[str],
    word: str,
    recipe: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
    settings: ExtractionSettings | None = None,
    **options,
) -> tuple[WordOccurrences, np.ndarray]:
    """Cosine similarity between every pair of occurrences of ``word`` in ``texts``.

    ``settings``/``options``: how BERT runs (see
    :func:`~bert_repro.embeddings.word_occurrences`).

    Returns:
        ``(occurrences, matrix)``: the :class:`WordOccurrences` (N of them, corpus order) and
        the ``(N, N)`` matrix of their cosine similarities (1 on the diagonal).
    """
    occ = word_occurrences(
        model, tokenizer, texts, word, recipe, pooling=pooling, settings=settings, **options
    )
    return occ, pairwise_cosine(occ.vectors)


def sentence_similarity(
    model,
    tokenizer,
    texts: Sequence[str],
    other_texts: Sequence[str] | None = None,
    *,
    hows: Sequence[SentencePooling] = SENTENCE_POOLINGS,
    recipe: Recipe = "last_layer",
    settings: ExtractionSettings | None = None,
    **options,
) -> dict[str, np.ndarray]:
    """Sentence-to-sentence cosine similarity for lists of texts.

    Args:
        texts: N texts.
        other_texts: M texts to compare with (default: ``texts`` with themselves).
        hows: sentence vectors to use (see :mod:`bert_repro.embeddings.sentences`).
        recipe: layer recipe for ``cls``/``mean``.
        settings, options: how BERT runs (see :func:`~bert_repro.embeddings.sentence_features`).

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
        model, tokenizer, both, hows, recipe=recipe, settings=settings, **options
    )
    n = len(texts)
    out = {}
    for how, v in vectors.items():
        out[how] = pairwise_cosine(v) if other_texts is None else pairwise_cosine(v[:n], v[n:])
    return out


def check_similarity_study(
    words: Sequence[str] = (),
    *,
    recipe: Recipe = "last_layer",
    pooling: SubwordPooling = "mean",
    hows: Sequence[SentencePooling] = SENTENCE_POOLINGS,
) -> None:
    """The options of :func:`similarity_study`, checked before any model is loaded.

    Raises:
        ConfigError: an unknown recipe, subword pooling or sentence pooling (listing the valid
            ones). DataError: a blank word.
    """
    check_recipe(recipe)
    check_choice("pooling", pooling, SUBWORD_POOLINGS)
    if len(hows):
        check_sentence_poolings(hows)
    check_not_string(words, "words")
    for word in words:
        if not isinstance(word, str) or not word.strip():
            raise DataError(f"the word {word!r} is blank: give a word to look for")


def _file_part(word: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", word)


@dataclass(frozen=True, eq=False)
class SimilarityResult(SavesResults):
    """Cosine similarities of word occurrences and of sentences over the same texts.

    Attributes:
        texts: the N texts.
        occurrences: ``{word: WordOccurrences}``, every occurrence of each word asked for.
        word_similarity: ``{word: (n, n)}`` cosine similarity of the word's ``n`` occurrences.
        sentences: ``{how: (N, N)}`` cosine similarity of the texts as sentences (empty with
            one text or no sentence pooling).
        settings: what made the numbers (recipe, poolings, extraction settings).
    """

    stem: ClassVar[str] = "similarity"
    command: ClassVar[str] = "embeddings similarity"

    texts: tuple[str, ...]
    occurrences: dict[str, WordOccurrences] = field(default_factory=dict)
    word_similarity: dict[str, np.ndarray] = field(default_factory=dict)
    sentences: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the texts, per word its pieces, occurrences (text, wordpiece
        positions) and matrix, per sentence pooling its matrix."""
        words = {}
        for word, occ in self.occurrences.items():
            words[word] = {
                "pieces": list(occ.pieces),
                "occurrences": [
                    {"text": int(t), "positions": p.tolist()}
                    for t, p in zip(occ.text_index, occ.positions, strict=True)
                ],
                "similarity": self.word_similarity[word].tolist(),
            }
        return {
            "texts": list(self.texts),
            "words": words,
            "sentences": {how: m.tolist() for how, m in self.sentences.items()},
        }

    def to_frame(self):
        """A ``pandas.DataFrame`` with one row per compared pair (both orders, diagonal
        included): ``kind`` (``word`` or ``sentence``), ``name`` (the word, or the sentence
        pooling), ``i``, ``j``, ``label_i``, ``label_j``, ``cosine``."""
        import pandas as pd

        rows = []
        tables = [
            ("word", w, self.word_similarity[w], occ.labels())
            for w, occ in self.occurrences.items()
        ]
        labels = [f"text {i}" for i in range(len(self.texts))]
        tables += [("sentence", how, m, labels) for how, m in self.sentences.items()]
        for kind, name, matrix, names in tables:
            for i, j in np.ndindex(*matrix.shape):
                rows.append(
                    {
                        "kind": kind,
                        "name": name,
                        "i": i,
                        "j": j,
                        "label_i": names[i],
                        "label_j": names[j],
                        "cosine": float(matrix[i, j]),
                    }
                )
        columns = ["kind", "name", "i", "j", "label_i", "label_j", "cosine"]
        return pd.DataFrame(rows, columns=columns)

    def figures(self) -> dict[str, Any]:
        """Plotly heatmaps by file name: ``word_<word>`` and ``sentences_<how>``."""
        from .figures import similarity_heatmap

        recipe = self.settings.get("recipe", "")
        figs = {
            f"word_{_file_part(word)}": similarity_heatmap(
                self.word_similarity[word], occ.labels(), title=f"{word!r} occurrences ({recipe})"
            )
            for word, occ in self.occurrences.items()
        }
        labels = [f"text {i}" for i in range(len(self.texts))]
        for how, matrix in self.sentences.items():
            figs[f"sentences_{how}"] = similarity_heatmap(
                matrix, labels, title=f"sentence similarity ({how})"
            )
        return figs

    def summary(self) -> list[str]:
        """Lines to print: per word its occurrences and the first one's similarities to the
        others; per sentence pooling the similarity of texts 0 and 1."""
        lines = []
        for word, occ in self.occurrences.items():
            lines.append(f"{word!r}: {len(occ)} occurrence(s)")
            matrix = self.word_similarity[word]
            if len(occ) > 1:
                shown = " ".join(f"{v:.4f}" for v in matrix[0, 1:])
                lines.append(f"  similarity: {shown} (first vs rest)")
        for how, matrix in self.sentences.items():
            lines.append(f"sentences ({how}): text 0 vs 1 = {matrix[0, 1]:.4f}")
        return lines


def similarity_study(
    model,
    tokenizer,
    texts: Sequence[str],
    words: Sequence[str] = (),
    *,
    recipe: Recipe = "last_layer",
    pooling: SubwordPooling = "mean",
    hows: Sequence[SentencePooling] = SENTENCE_POOLINGS,
    settings: ExtractionSettings | None = None,
    **options,
) -> SimilarityResult:
    """Every occurrence of each of ``words`` in ``texts`` compared with the others (word
    vectors by ``recipe`` and subword ``pooling``), and the texts compared as sentences
    (``hows``; with two texts or more).

    Args:
        model, tokenizer: from :func:`bert_repro.models.load_bert`.
        texts: raw strings.
        words: words to find by their wordpieces (each must occur somewhere).
        recipe: word-vector recipe, also the layers of the ``cls``/``mean`` sentence vectors.
        pooling: how a word of several wordpieces becomes one vector.
        hows: sentence vectors to compare (``()``: none).
        settings, options: how BERT runs (:class:`~bert_repro.settings.ExtractionSettings`
            and field names, e.g. ``max_batch=``, ``strategy=``, ``progress=``).

    Returns:
        A :class:`SimilarityResult`.

    Raises:
        DataError: no texts, a blank word or one that occurs nowhere. ConfigError: an unknown
            recipe or pooling.
    """
    check_similarity_study(words, recipe=recipe, pooling=pooling, hows=hows)
    check_not_string(texts, "texts")
    texts = list(texts)
    if not texts:
        raise DataError("no texts given (the list is empty)")
    extraction = resolve_settings(settings, options)
    occurrences, matrices = {}, {}
    for word in words:
        occ, matrix = occurrence_similarity(
            model, tokenizer, texts, word, recipe, pooling=pooling, settings=extraction
        )
        occurrences[word], matrices[word] = occ, matrix
    sentences = {}
    if len(texts) > 1 and len(hows):
        sentences = sentence_similarity(
            model, tokenizer, texts, hows=tuple(hows), recipe=recipe, settings=extraction
        )
    return SimilarityResult(
        texts=tuple(texts),
        occurrences=occurrences,
        word_similarity=matrices,
        sentences=sentences,
        settings={
            "recipe": recipe,
            "pooling": pooling,
            "hows": list(hows),
            "extraction": extraction.describe(),
        },
    )
