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

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from ..errors import DataError, ModelError, check_choice, check_not_string
from ..ops import masked_mean
from ..settings import ExtractionSettings
from ._extraction import study_settings
from .recipes import Recipe, check_recipe, recipe_layers, reduce_layers

SentencePooling = Literal["cls", "mean", "pooler"]
SENTENCE_POOLINGS: tuple[str, ...] = get_args(SentencePooling)
#: The sentence poolings computed from wordpiece vectors alone (``pooler`` needs the model).
TokenPooling = Literal["cls", "mean"]
TOKEN_POOLINGS: tuple[str, ...] = get_args(TokenPooling)


def check_sentence_poolings(hows: Sequence[str], name: str = "hows") -> tuple[str, ...]:
    """``hows`` as a tuple, each one of :data:`SENTENCE_POOLINGS`.

    Args:
        hows: the sentence poolings asked for.
        name: what messages call them (the caller's keyword).

    Raises:
        DataError: none given. ConfigError: an unknown one (the message lists the valid ones).
    """
    check_not_string(hows, name)
    hows = tuple(hows)
    if not hows:
        valid = ", ".join(repr(h) for h in SENTENCE_POOLINGS)
        raise DataError(f"no sentence pooling given in {name} (choose from {valid})")
    for how in hows:
        check_choice(name, how, SENTENCE_POOLINGS)
    return hows


def pool_sentences(
    hidden: np.ndarray, attention_mask: np.ndarray, how: TokenPooling = "cls"
) -> np.ndarray:
    """Sentence vectors from a padded batch of wordpiece vectors.

    Args:
        hidden: ``(B, T, D)`` wordpiece vectors (one layer, or layers combined by a recipe).
        attention_mask: ``(B, T)`` 1 on real wordpieces, 0 on padding.
        how: ``"cls"`` (position 0) or ``"mean"`` (masked mean over the real wordpieces).

    Returns:
        ``(B, D)``.
    """
    check_choice("how", how, TOKEN_POOLINGS)
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
    hows: Sequence[SentencePooling] = SENTENCE_POOLINGS,
    *,
    recipe: Recipe = "last_layer",
    settings: ExtractionSettings | None = None,
    **options,
) -> dict[str, np.ndarray]:
    """Several kinds of sentence vector of ``texts`` from one extraction pass.

    Args:
        model, tokenizer: from :func:`bert_repro.models.load_bert`.
        texts: raw strings (each must fit the model; nothing is truncated).
        hows: any of ``"cls"``, ``"mean"``, ``"pooler"``.
        recipe: the layer recipe for ``cls`` and ``mean`` (default the last layer; e.g.
            ``"concat_last4"`` gives ``(N, 4H)``); ``pooler`` always uses the last layer.
        settings: how BERT runs (:class:`~bert_repro.settings.ExtractionSettings`);
            ``options`` replace some of its fields, e.g. ``max_tokens=``, ``max_batch=`` (texts
            a forward pass), ``strategy=`` (a ``tf.distribute.Strategy``), ``progress=``.

    Returns:
        ``{how: (N, D) float32}`` in input order.

    Raises:
        DataError: no texts. ConfigError: an unknown pooling or recipe.
    """
    from ..features import iter_batches

    hows = check_sentence_poolings(hows)
    check_recipe(recipe)
    check_not_string(texts, "texts")
    texts = list(texts)
    if not texts:
        raise DataError("no texts given (the list is empty)")
    num_states = int(model.config.num_hidden_layers) + 1
    layers = recipe_layers(recipe, num_states)
    needed = list(layers)
    if "pooler" in hows and num_states - 1 not in needed:
        needed.append(num_states - 1)
    where = [needed.index(k) for k in layers]
    last = needed.index(num_states - 1) if "pooler" in hows else None
    settings = study_settings(settings, options, needed)
    out: dict[str, np.ndarray | None] = dict.fromkeys(hows)
    for batch, (hs,) in iter_batches(model, tokenizer, texts, settings=settings):
        rows = {}
        combined = reduce_layers(hs[where], recipe)  # (B, T, D)
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


def model_sentence_pooling(model) -> TokenPooling:
    """The sentence pooling a model was trained with: ``"mean"`` when its folder holds a
    sentence-transformers pooling config asking for mean pooling (all-MiniLM-L6-v2 does),
    ``"cls"`` when it asks for the ``[CLS]`` token, and ``"cls"`` (BERT's own convention, the
    input of its pooler and of fine-tuned classification heads) when there is no such config.

    Args:
        model: a loaded ``TFBertModel`` (its ``config.name_or_path`` is the folder it came
            from), or a model folder.
    """
    folder = getattr(getattr(model, "config", None), "name_or_path", model)
    try:
        modules = json.loads((Path(folder) / "modules.json").read_text())
        pooling = next(m for m in modules if m.get("type", "").endswith(".Pooling"))
        config = json.loads((Path(folder) / pooling["path"] / "config.json").read_text())
    except (OSError, TypeError, ValueError, StopIteration, KeyError):
        return "cls"
    return "mean" if config.get("pooling_mode_mean_tokens") else "cls"


def sentence_vectors(
    model,
    tokenizer,
    texts: Sequence[str],
    how: SentencePooling | None = None,
    *,
    recipe: Recipe = "last_layer",
    settings: ExtractionSettings | None = None,
    **options,
) -> np.ndarray:
    """One sentence vector per text, ``(N, D)``; see :func:`sentence_features`.

    ``how=None`` (the default) pools as the model was trained to
    (:func:`model_sentence_pooling`: ``"mean"`` for the shipped all-MiniLM-L6-v2, ``"cls"``
    for a plain BERT); ``how="cls"``, ``"mean"`` or ``"pooler"`` chooses.
    """
    if how is None:
        how = model_sentence_pooling(model)
    return sentence_features(
        model, tokenizer, texts, (how,), recipe=recipe, settings=settings, **options
    )[how]
