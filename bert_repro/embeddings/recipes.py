"""Word vectors from BERT's hidden states by "recipe": which layers, combined how.

The hidden states of one text are a stack ``(L+1, T, H)``: index 0 is the **embedding output**
(LayerNorm of token + segment + position embeddings), index ``k`` (1..L) the output of encoder
layer ``k``. The recipes, for a model with L encoder layers (the seed notebook 002 and
McCormick & Ryan's "BERT word embeddings tutorial", 2019, which it follows):

============== =========================================== ===================================
recipe         tensors used                                combination              (width)
============== =========================================== ===================================
first_layer    ``hidden[1]`` (first *encoder* layer)       as is                    (H)
last_layer     ``hidden[L]`` = ``hidden[-1]``              as is                    (H)
sum_all        ``hidden[1..L]`` (all L encoder layers)     sum                      (H)
sum_last4      ``hidden[L-3..L]``                          sum                      (H)
concat_last4   ``hidden[L], hidden[L-1], hidden[L-2],      concatenation, last      (4H)
               hidden[L-3]``                               layer first
mean_last4     ``hidden[L-3..L]``                          mean (= sum_last4 / 4)   (H)
``k`` (int)    ``hidden[k]``; 0 = embedding output,        as is                    (H)
               negative counts from the top
============== =========================================== ===================================

The embedding output is **not** a layer for the named recipes: ``first_layer`` is encoder layer
1 (the seed indexes ``hidden_states[1]`` for "1 layer") and ``sum_all`` sums the L encoder
layers (the seed's "sum all 12 layers"; its answer cell summed all 13 tensors, embedding output
included, which contradicts its own title). Ask for the embedding output with the int ``0``.
``concat_last4`` puts the last layer first, as the seed's answer cell and the tutorial do
(``torch.cat((token[-1], token[-2], token[-3], token[-4]))``). The ``*_last4`` recipes need at
least 4 encoder layers and refuse smaller models rather than silently include the embedding
output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Union, get_args

import numpy as np

from ..errors import ConfigError, DataError, check_choice
from ..ops import SUBWORD_POOLINGS, SubwordPooling, pool_wordpieces

RecipeName = Literal[
    "first_layer", "last_layer", "sum_all", "sum_last4", "concat_last4", "mean_last4"
]
Recipe = Union[RecipeName, int]  # noqa: UP007 (a runtime alias that reads well in signatures)
#: The named recipes, in the order of the module docstring's table (``RecipeName``'s values).
RECIPES: tuple[str, ...] = get_args(RecipeName)


def _is_layer_index(recipe: object) -> bool:
    return isinstance(recipe, (int, np.integer)) and not isinstance(recipe, bool)


def check_recipe(recipe: object) -> None:
    """Raise :class:`ConfigError` unless ``recipe`` is a recipe name or an int layer index
    (the message lists the valid ones)."""
    if not _is_layer_index(recipe):
        check_choice("recipe", recipe, RECIPES + ("<int layer index>",))


def parse_recipe(text: str) -> Recipe:
    """A recipe as written on a command line: a name, or an int layer index in digits
    (``"-1"``, ``"0"``, ``"7"``).

    Raises:
        ConfigError: neither (the message lists the valid ones).
    """
    text = str(text).strip()
    recipe: Recipe = int(text) if re.fullmatch(r"-?\d+", text) else text
    check_recipe(recipe)
    return recipe


def recipe_layers(recipe: Recipe, num_states: int) -> tuple[int, ...]:
    """The hidden-state indices a recipe uses, in the order it combines them.

    Args:
        recipe: a recipe name (see the module docstring) or an int layer index.
        num_states: number of hidden-state tensors, ``L + 1`` (embedding output included).

    Returns:
        Absolute indices into ``0..num_states-1``; e.g. for L = 12: ``first_layer`` -> (1,),
        ``sum_all`` -> (1, ..., 12), ``concat_last4`` -> (12, 11, 10, 9).

    Raises:
        ConfigError: an unknown recipe, an index outside the stack, or a model with too few
            encoder layers for the recipe.
    """
    check_recipe(recipe)
    n = int(num_states)
    if _is_layer_index(recipe):
        k = int(recipe)
        if not -n <= k < n:
            raise ConfigError(
                f"layer {k} does not exist: the hidden states are 0..{n - 1} "
                f"(0 = embedding output, {n - 1} = last encoder layer)"
            )
        return (k % n,)
    num_layers = n - 1
    need = 4 if recipe.endswith("last4") else 1
    if num_layers < need:
        raise ConfigError(
            f"recipe={recipe!r} needs at least {need} encoder layer(s); these hidden states "
            f"hold {num_layers} (plus the embedding output). Use an int layer index instead."
        )
    if recipe == "first_layer":
        return (1,)
    if recipe == "last_layer":
        return (num_layers,)
    if recipe == "sum_all":
        return tuple(range(1, n))
    if recipe == "concat_last4":
        return tuple(range(num_layers, num_layers - 4, -1))
    return tuple(range(num_layers - 3, n))  # sum_last4, mean_last4


def reduce_layers(selected: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Combine hidden states already selected by :func:`recipe_layers`.

    Args:
        selected: ``(K, ..., H)``, the recipe's tensors in :func:`recipe_layers` order.
        recipe: the recipe.

    Returns:
        ``(..., H)`` (sum, mean or the single layer) or ``(..., K*H)`` for ``concat_last4``
        (``selected[0]`` first).
    """
    check_recipe(recipe)
    selected = np.asarray(selected)
    if recipe in ("sum_all", "sum_last4"):
        return selected.sum(axis=0)
    if recipe == "mean_last4":
        return selected.mean(axis=0)
    if recipe == "concat_last4":
        return np.concatenate(list(selected), axis=-1)
    if selected.shape[0] != 1:
        raise ConfigError(f"recipe={recipe!r} uses one layer, got {selected.shape[0]}")
    return selected[0]


def combine_layers(hidden_states: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Apply a recipe to a full hidden-state stack.

    Args:
        hidden_states: ``(L+1, ..., H)`` with the embedding output at index 0, e.g. one text's
            ``(L+1, T, H)`` from :func:`bert_repro.features.hidden_states` (all layers).
        recipe: a recipe name or an int layer index (see the module docstring).

    Returns:
        ``(..., H)``, or ``(..., 4H)`` for ``concat_last4``.
    """
    hidden_states = np.asarray(hidden_states)
    if hidden_states.ndim < 2:
        raise DataError(f"hidden states must be (L+1, ..., H), got shape {hidden_states.shape}")
    layers = recipe_layers(recipe, hidden_states.shape[0])
    return reduce_layers(hidden_states[list(layers)], recipe)


def _positions(position: int | Sequence[int], length: int) -> np.ndarray:
    pos = np.atleast_1d(np.asarray(position))
    if pos.size == 0:
        raise DataError("no wordpiece position given")
    if pos.ndim != 1 or not np.issubdtype(pos.dtype, np.integer):
        raise DataError(f"positions must be ints, got {position!r}")
    bad = pos[(pos < 0) | (pos >= length)]
    if bad.size:
        raise DataError(
            f"wordpiece position {int(bad[0])} is outside the text, which has {length} "
            "wordpieces ([CLS] at 0)"
        )
    return pos.astype(np.int64)


def word_embedding(
    hidden_states: np.ndarray,
    position: int | Sequence[int],
    recipe: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
) -> np.ndarray:
    """One word's vector from one text's hidden states.

    ``word_embedding(hs, 13, recipe="sum_last4")`` is ``hs[-4:, 13].sum(0)`` for a 12-layer model: the
    index arithmetic of the seed notebook 002, done once.

    Args:
        hidden_states: ``(L+1, T, H)``, one text, all layers, as returned by
            :func:`bert_repro.features.hidden_states` (index 0 = embedding output; wordpiece
            positions count ``[CLS]`` as 0).
        position: the word's wordpiece position, or the positions of all its pieces (see
            :func:`bert_repro.embeddings.word_positions`); to name a word by its number in the
            text instead, use :func:`word_embedding_by_word`.
        recipe: a recipe name or an int layer index (see the module docstring).
        pooling: how several pieces make one word: ``"mean"``, ``"first"`` or ``"last"``
            (applied to each layer before the recipe combines layers).

    Returns:
        ``(H,)`` or ``(4H,)`` for ``concat_last4``, float32 as the input.

    Raises:
        ConfigError: unknown recipe or pooling, or a recipe the model is too small for.
        DataError: a position outside the text, or hidden states that are not ``(L+1, T, H)``.
    """
    check_choice("pooling", pooling, SUBWORD_POOLINGS)
    hidden_states = np.asarray(hidden_states)
    if hidden_states.ndim != 3:
        raise DataError(
            f"hidden_states must be one text's (L+1, T, H) stack, got shape {hidden_states.shape}"
        )
    pos = _positions(position, hidden_states.shape[1])
    layers = recipe_layers(recipe, hidden_states.shape[0])
    selected = hidden_states[list(layers)]  # (K, T, H)
    word_index = np.full(hidden_states.shape[1], -1, dtype=np.int64)
    word_index[pos] = 0
    pooled = pool_wordpieces(selected, word_index, n_words=1, how=pooling)[:, 0]  # (K, H)
    return reduce_layers(pooled, recipe)


def word_embedding_by_word(
    hidden_states: np.ndarray,
    word_index: Sequence[int] | np.ndarray,
    word: int,
    recipe: Recipe = "last_layer",
    *,
    pooling: SubwordPooling = "mean",
) -> np.ndarray:
    """One word's vector, the word named by its number in the text (0 = the first word, as
    ``sentence[0]`` in flair), not by a wordpiece position.

    ``word_index`` maps each wordpiece to its word (``-1`` for ``[CLS]``/``[SEP]``), as
    :func:`bert_repro.embeddings.text_word_index` returns it for a raw text::

        word_index, words = text_word_index(tokenizer, text)
        v = word_embedding_by_word(hs, word_index, 3, recipe="sum_last4")   # the 4th word

    All of the word's pieces are pooled (``pooling``), then the recipe combines layers, as
    :func:`word_embedding` does with the same positions.

    Args:
        hidden_states: ``(L+1, T, H)``, one text.
        word_index: ``(T,)`` the word of each wordpiece (-1 = special).
        word: the word's number, from 0.

    Returns:
        ``(H,)`` (``(4H,)`` for ``concat_last4``).

    Raises:
        DataError: ``word_index`` does not match the text's length, or the text has no such
            word (the message gives the number of words).
    """
    word_index = np.asarray(word_index)
    length = np.asarray(hidden_states).shape[1] if np.ndim(hidden_states) == 3 else None
    if word_index.ndim != 1 or (length is not None and word_index.shape[0] != length):
        raise DataError(
            f"word_index must give one word per wordpiece ({length}), got shape "
            f"{word_index.shape}: use text_word_index(tokenizer, text) of the same text"
        )
    n_words = int(word_index.max()) + 1 if word_index.size else 0
    if not 0 <= int(word) < n_words:
        raise DataError(f"word {word} is outside the text, which has {n_words} words (from 0)")
    positions = np.flatnonzero(word_index == int(word))
    return word_embedding(hidden_states, positions, recipe, pooling=pooling)
