"""Sentence vectors: the ``[CLS]`` vector, the masked mean of the wordpiece vectors, or BERT's
pooler output, from the foundation's batched extraction.

- ``cls``: ``h[0]``, the ``[CLS]`` position of the chosen layer(s) (seed 002, Q7).
- ``mean``: ``sum_t m_t h_t / sum_t m_t`` over the attention mask ``m``: padding never counts,
  ``[CLS]`` and ``[SEP]`` do (as in sentence-transformers' mean pooling, which is how
  all-MiniLM-L6-v2 makes its sentence embeddings, before their L2 normalisation).
- ``pooler``: ``tanh(W h_L[0] + b)``, the model's own pooler (``TFBertPooler``: dense + tanh
  on the last layer's ``[CLS]`` vector), computed from the extracted last hidden state
  rather than by a second forward pass; it always uses the last layer, whatever the recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..errors import DataError, ModelError, check_choice, check_not_string
from ..ops import masked_mean
from .recipes import Recipe, check_recipe, recipe_layers, reduce_layers

SentencePooling = Literal["cls", "mean", "pooler"]
SENTENCE_POOLINGS: tuple[str, ...] = ("cls", "mean", "pooler")


def pool_sentences(
    hidden: np.ndarray, attention_mask: np.ndarray, how: Literal["cls", "mean"] = "cls"
) -> np.ndarray:
    """Sentence vectors from a padded batch of wordpiece vectors.

    Args:
        hidden: ``(B, T, D)`` wordpiece vectors (one layer, or layers combined by a recipe).
        attention_mask: ``(B, T)`` 1 on real wordpieces, 0 on padding.
        how: ``"cls"`` (position 0) or ``"mean"`` (masked mean over the real wordpieces).

    Returns:
        ``(B, D)``.
    """
    check_choice("how", how, ("cls", "mean"))
    hidden = np.asarray(hidden)
    if hidden.ndim != 3:
        raise DataError(f"hidden must be (B, T, D), got shape {hidden.shape}")
    if how == "cls":
        return hidden[:, 0]
    return masked_mean(hidden, attention_mask, axis=-2).astype(hidden.dtype, copy=False)


def pooler_output(model, cls_vectors: np.ndarray) -> np.ndarray:
    """The model's pooler applied to last-layer ``[CLS]`` vectors: ``tanh(W h + b)``.

    Args:
        model: a ``TFBertModel`` (its ``bert.pooler`` layer is used).
        cls_vectors: ``(B, H)`` last-layer ``[CLS]`` vectors.

    Returns:
        ``(B, H)`` float32, equal to ``model(...).pooler_output``.

    Raises:
        ModelError: the model was built without a pooler.
    """
    import tensorflow as tf

    pooler = getattr(getattr(model, "bert", None), "pooler", None)
    if pooler is None:
        raise ModelError("this model has no pooler layer (add_pooling_layer=False)")
    cls_vectors = np.asarray(cls_vectors, dtype=np.float32)
    out = pooler(tf.constant(cls_vectors[:, None, :]))  # compute dtype of the model
    return np.asarray(out.numpy(), dtype=np.float32)


def sentence_features(
    model,
    tokenizer,
    texts: Sequence[str],
    hows: Sequence[SentencePooling] = ("cls", "mean", "pooler"),
    *,
    strategy: Recipe = "last_layer",
    batch_size: int | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Several kinds of sentence vector of ``texts`` from one extraction pass.

    Args:
        model, tokenizer: from :func:`bert_repro.models.load_bert`.
        texts: raw strings (each must fit the model; nothing is truncated).
        hows: any of ``"cls"``, ``"mean"``, ``"pooler"``.
        strategy: the layer recipe for ``cls`` and ``mean`` (default the last layer; e.g.
            ``"concat_last4"`` gives ``(N, 4H)``); ``pooler`` always uses the last layer.
        batch_size: at most this many texts a forward pass (default: a token budget).

    Returns:
        ``{how: (N, D) float32}`` in input order.

    Raises:
        DataError: no texts. ConfigError: an unknown pooling or recipe.
    """
    from ..features import iter_batches

    hows = tuple(hows)
    if not hows:
        raise DataError("no sentence pooling asked for")
    for how in hows:
        check_choice("how", how, SENTENCE_POOLINGS)
    check_recipe(strategy)
    check_not_string(texts, "texts")
    texts = list(texts)
    if not texts:
        raise DataError("no texts given (the list is empty)")
    num_states = int(model.config.num_hidden_layers) + 1
    recipe = recipe_layers(strategy, num_states)
    needed = list(recipe)
    if "pooler" in hows and num_states - 1 not in needed:
        needed.append(num_states - 1)
    where = [needed.index(k) for k in recipe]
    last = needed.index(num_states - 1) if "pooler" in hows else None
    out: dict[str, np.ndarray | None] = dict.fromkeys(hows)
    for batch, (hs,) in iter_batches(
        model, tokenizer, texts, batch_size=batch_size, layers=needed, progress=progress
    ):
        rows = {}
        combined = reduce_layers(hs[where], strategy)  # (B, T, D)
        for how in hows:
            if how == "pooler":
                rows[how] = pooler_output(model, hs[last][:, 0])
            else:
                rows[how] = pool_sentences(combined, batch["attention_mask"], how)
        for how, values in rows.items():
            if out[how] is None:
                out[how] = np.zeros((len(texts), values.shape[-1]), dtype=np.float32)
            out[how][batch["index"]] = values
    return out  # type: ignore[return-value]


def sentence_vectors(
    model,
    tokenizer,
    texts: Sequence[str],
    how: SentencePooling = "cls",
    *,
    strategy: Recipe = "last_layer",
    batch_size: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """One sentence vector per text, ``(N, D)``; see :func:`sentence_features`."""
    return sentence_features(
        model,
        tokenizer,
        texts,
        (how,),
        strategy=strategy,
        batch_size=batch_size,
        progress=progress,
    )[how]
