"""Find a word's wordpieces in a text and turn every occurrence into a vector by recipe.

A word is found by its wordpieces, not by one token id, so a word the tokenizer splits
("embeddings" -> ``em ##bed ##ding ##s``) is found too, and a word is never matched inside a
longer one (``code`` does not match the start of ``code ##s``). Wordpiece positions count
``[CLS]`` as 0, matching the hidden states of :func:`bert_repro.features.hidden_states`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, check_choice, check_not_string
from ..ops import SUBWORD_POOLINGS, SubwordPooling, pool_wordpieces
from ..pipeline import Encoded, EncodedCorpus, as_fast_tokenizer
from ..settings import ExtractionSettings
from ._extraction import study_settings
from .recipes import Recipe, check_recipe, recipe_layers, reduce_layers, word_embedding


def _is_continuation(piece: str) -> bool:
    return piece.startswith("##")


def find_word(tokens: Sequence[str], pieces: Sequence[str]) -> list[np.ndarray]:
    """Every place where ``pieces`` occur in ``tokens`` as a whole word.

    A match is a contiguous run equal to ``pieces`` whose next token (if any) is not a ``##``
    continuation, i.e. the word ends there. ``pieces[0]`` is a word start (no ``##``).

    Args:
        tokens: the text's wordpieces, e.g. ``["[CLS]", "i", "code", ".", ..., "[SEP]"]``.
        pieces: the word's wordpieces, e.g. ``["cod", "##ing"]``.

    Returns:
        One ``(len(pieces),)`` int64 array of positions per occurrence, in text order.
    """
    tokens, pieces = list(tokens), list(pieces)
    n = len(pieces)
    if n == 0:
        return []
    found = []
    for i in range(len(tokens) - n + 1):
        if tokens[i : i + n] != pieces:
            continue
        if i + n < len(tokens) and _is_continuation(tokens[i + n]):
            continue
        found.append(np.arange(i, i + n, dtype=np.int64))
    return found


def word_pieces(tokenizer, word: str) -> list[str]:
    """The wordpieces of ``word`` as the tokenizer splits it (lower-cased if it lower-cases).

    Raises:
        DataError: the word is blank or maps to ``[UNK]``.
    """
    if not isinstance(word, str) or not word.strip():
        raise DataError(f"the word to look for must be a non-blank string, got {word!r}")
    pieces = tokenizer.tokenize(word)
    if not pieces:
        raise DataError(f"the word {word!r} has no wordpieces")
    if tokenizer.unk_token in pieces:
        raise DataError(
            f"the word {word!r} is not in the tokenizer's vocabulary (it becomes {pieces}); "
            "it could only match [UNK] tokens"
        )
    return pieces


def word_positions(tokenizer, input_ids: Sequence[int], word: str) -> list[np.ndarray]:
    """Positions of every occurrence of ``word`` in one encoded text.

    Args:
        tokenizer: the model's tokenizer.
        input_ids: ``(T,)`` the text's wordpiece ids with ``[CLS]``/``[SEP]`` (no padding).
        word: the word to find (any casing the tokenizer normalises).

    Returns:
        One array of wordpiece positions per occurrence (several pieces for a split word).

    Raises:
        DataError: the word does not occur in the text (the message shows its pieces).
    """
    pieces = word_pieces(tokenizer, word)
    tokens = tokenizer.convert_ids_to_tokens([int(i) for i in input_ids])
    found = find_word(tokens, pieces)
    if not found:
        shown = " ".join(tokens[:40]) + (" ..." if len(tokens) > 40 else "")
        raise DataError(
            f"the word {word!r} (wordpieces {pieces}) does not occur in the text [{shown}]"
        )
    return found


def occurrence_vectors(
    hidden_states: np.ndarray,
    input_ids: Sequence[int],
    tokenizer,
    word: str,
    recipe: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
) -> np.ndarray:
    """Vectors of every occurrence of ``word`` in one text.

    Args:
        hidden_states: ``(L+1, T, H)`` the text's hidden states (all layers).
        input_ids: ``(T,)`` the same text's wordpiece ids.
        tokenizer: the model's tokenizer.
        word: the word.
        recipe: recipe (see :mod:`bert_repro.embeddings.recipes`).
        pooling: ``"mean"``, ``"first"`` or ``"last"`` piece of a split word.

    Returns:
        ``(n_occurrences, D)``, D = H (or 4H for ``concat_last4``), in text order.
    """
    hidden_states = np.asarray(hidden_states)
    if hidden_states.ndim != 3 or hidden_states.shape[1] != len(input_ids):
        raise DataError(
            f"hidden states {hidden_states.shape} do not match the {len(input_ids)} input ids "
            "(expected (L+1, T, H) of the same text)"
        )
    positions = word_positions(tokenizer, input_ids, word)
    return np.stack([word_embedding(hidden_states, p, recipe, pooling=pooling) for p in positions])


@dataclass(frozen=True)
class WordOccurrences:
    """The occurrences of one word across texts.

    Attributes:
        word: the word looked for.
        pieces: its wordpieces.
        vectors: ``(N, D)`` one vector per occurrence.
        text_index: ``(N,)`` the text each occurrence is in.
        positions: ``N`` arrays of wordpiece positions (``[CLS]`` = 0).
        recipe, pooling: how the vectors were made.
    """

    word: str
    pieces: tuple[str, ...]
    vectors: np.ndarray
    text_index: np.ndarray
    positions: tuple[np.ndarray, ...]
    recipe: Recipe
    pooling: str

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def labels(self) -> list[str]:
        """``"text 0 @13"``-style labels (text index, first wordpiece position)."""
        return [
            f"text {t} @{int(p[0])}" for t, p in zip(self.text_index, self.positions, strict=True)
        ]


def _check_texts(texts: Sequence[str]) -> list[str]:
    check_not_string(texts, "texts")
    texts = list(texts)
    if not texts:
        raise DataError("no texts given (the list is empty)")
    return texts


def word_occurrences(
    model,
    tokenizer,
    texts: Sequence[str],
    word: str,
    recipe: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
    settings: ExtractionSettings | None = None,
    **options,
) -> WordOccurrences:
    """Every occurrence of ``word`` in a corpus, as vectors by recipe.

    Runs the foundation's batched extraction (:func:`bert_repro.features.iter_batches`) over
    only the layers the recipe needs; memory holds one batch plus the occurrences found.

    Args:
        model, tokenizer: from :func:`bert_repro.models.load_bert`.
        texts: raw strings.
        word: the word to find, by its wordpieces.
        recipe: recipe; pooling: subword pooling (see :func:`word_embedding`).
        settings: how BERT runs (:class:`~bert_repro.settings.ExtractionSettings`);
            ``options`` replace some of its fields, e.g. ``max_tokens=``, ``max_batch=`` (texts
            a forward pass), ``strategy=`` (a ``tf.distribute.Strategy``), ``progress=``. The
            layers come from the recipe.

    Returns:
        A :class:`WordOccurrences` in corpus order (text, then position).

    Raises:
        DataError: no texts, or the word occurs in none of them.
    """
    from ..features import iter_batches

    check_recipe(recipe)
    check_choice("pooling", pooling, SUBWORD_POOLINGS)
    texts = _check_texts(texts)
    pieces = word_pieces(tokenizer, word)
    layers = recipe_layers(recipe, int(model.config.num_hidden_layers) + 1)
    settings = study_settings(settings, options, layers)
    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    for batch, (out,) in iter_batches(model, tokenizer, texts, settings=settings):
        lengths = batch["attention_mask"].sum(axis=1)
        for row, t in enumerate(batch["index"]):
            ids = batch["input_ids"][row, : lengths[row]]
            for pos in find_word(tokenizer.convert_ids_to_tokens(ids.tolist()), pieces):
                index = np.full(int(lengths[row]), -1, dtype=np.int64)
                index[pos] = 0
                pooled = pool_wordpieces(out[:, row, : lengths[row]], index, 1, pooling)[:, 0]
                found.append((int(t), pos, reduce_layers(pooled, recipe)))
    if not found:
        raise DataError(
            f"the word {word!r} (wordpieces {pieces}) does not occur in any of the {len(texts)} "
            "text(s)"
        )
    found.sort(key=lambda f: (f[0], int(f[1][0])))
    return WordOccurrences(
        word=word,
        pieces=tuple(pieces),
        vectors=np.stack([f[2] for f in found]),
        text_index=np.array([f[0] for f in found], dtype=np.int64),
        positions=tuple(f[1] for f in found),
        recipe=recipe,
        pooling=pooling,
    )


@dataclass(frozen=True)
class TextWords:
    """All words of one text with their vectors.

    Attributes:
        words: the text's words as the tokenizer pre-splits them (whitespace and punctuation).
        vectors: ``(n_words, D)``.
    """

    words: tuple[str, ...]
    vectors: np.ndarray


def encode_text_words(
    tokenizer, texts: Sequence[str]
) -> tuple[EncodedCorpus, list[tuple[str, ...]]]:
    """Tokenise raw texts once, keeping each wordpiece's word.

    Returns:
        ``(corpus, words)``: an :class:`~bert_repro.pipeline.EncodedCorpus` of the texts whose
        items carry ``word_index`` ``(T,)`` (the word of each wordpiece, -1 = special) and
        ``n_words``, and per text its words as the tokenizer pre-splits them.
    """
    tokenizer = as_fast_tokenizer(tokenizer)
    batch = tokenizer(
        list(texts),
        add_special_tokens=True,
        return_offsets_mapping=True,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    items, word_indices, all_words = [], [], []
    for i, text in enumerate(texts):
        wids = batch.word_ids(i)
        word_index = np.array([-1 if w is None else w for w in wids], dtype=np.int64)
        n = int(word_index.max()) + 1 if word_index.size else 0
        spans = [batch.word_to_chars(i, w) for w in range(n)]
        words = tuple(text[sp.start : sp.end] if sp is not None else "" for sp in spans)
        ids = np.asarray(batch["input_ids"][i], dtype=np.int32)
        items.append(Encoded(ids))
        word_indices.append(word_index)
        all_words.append(words)
    return EncodedCorpus(list(texts), items, False), word_indices, all_words


def text_word_index(tokenizer, text: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(word_index (T,), words)`` for a raw text: the word of each wordpiece (-1 = special)."""
    _, word_index, words = encode_text_words(tokenizer, [text])
    return word_index[0], words[0]


def corpus_word_vectors(
    model,
    tokenizer,
    texts: Sequence[str],
    recipe: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
    settings: ExtractionSettings | None = None,
    **options,
) -> list[TextWords]:
    """Vectors of every word of every text, by recipe and subword pooling.

    Words are the tokenizer's pre-tokenised words (split on whitespace and punctuation), so
    ``"I code."`` has the words ``I``, ``code``, ``.``; ``[CLS]``/``[SEP]`` are not words.
    ``settings``/``options``: how BERT runs, see :func:`word_occurrences`.

    Returns:
        One :class:`TextWords` per text, in input order.
    """
    from ..features import iter_batches

    check_recipe(recipe)
    check_choice("pooling", pooling, SUBWORD_POOLINGS)
    texts = _check_texts(texts)
    layers = recipe_layers(recipe, int(model.config.num_hidden_layers) + 1)
    settings = study_settings(settings, options, layers)
    corpus, word_index, words = encode_text_words(tokenizer, texts)  # tokenised once
    result: list[TextWords | None] = [None] * len(texts)
    for batch, (out,) in iter_batches(model, tokenizer, corpus, settings=settings):
        lengths = batch["attention_mask"].sum(axis=1)
        for row, t in enumerate(batch["index"]):
            t, n = int(t), lengths[row]
            pooled = pool_wordpieces(out[:, row, :n], word_index[t], len(words[t]), pooling)
            result[t] = TextWords(words[t], reduce_layers(pooled, recipe))
    return result  # type: ignore[return-value]
