"""BERT's input embedding taken apart (seed notebook 003), in NumPy from the model's weights.

For wordpiece ids ``x_t``, segment ids ``s_t`` and positions ``t = 0..T-1``:

    token_t    = E_word[x_t]            (vocab, H) table ``bert.embeddings.weight``
    segment_t  = E_type[s_t]            (type_vocab, H) ``bert.embeddings.token_type_embeddings``
    position_t = E_pos[t]               (max_positions, H) ``bert.embeddings.position_embeddings``
    sum_t      = token_t + segment_t + position_t
    output_t   = gamma * (sum_t - mu_t) / sqrt(var_t + eps) + beta      (LayerNorm over H)

and ``output`` equals ``hidden_states[0]``, the embedding output (dropout is off at inference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` over the last axis (population var).

    Computed in float64; returns ``x``'s shape.
    """
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray(gamma) * (x - mu) / np.sqrt(var + eps) + np.asarray(beta)


@dataclass(frozen=True)
class InputEmbeddingParts:
    """The parts of the input embedding of one text, each ``(T, H)`` float64.

    Attributes:
        tokens: the wordpieces (strings) or ids, for labels.
        token, segment, position: the three looked-up embeddings.
        sum: ``token + segment + position``.
        output: ``LayerNorm(sum)``, which equals ``hidden_states[0]``.
    """

    tokens: tuple[str, ...]
    token: np.ndarray
    segment: np.ndarray
    position: np.ndarray
    sum: np.ndarray
    output: np.ndarray

    def norms(self) -> dict[str, np.ndarray]:
        """Per-wordpiece L2 norms of each part: ``{part: (T,)}``."""
        parts = ("token", "segment", "position", "sum", "output")
        return {p: np.linalg.norm(getattr(self, p), axis=-1) for p in parts}


def embedding_weights(model) -> dict[str, np.ndarray | float]:
    """The input-embedding weights of a ``TFBertModel`` as NumPy arrays.

    Returns:
        ``word`` (vocab, H), ``type`` (type_vocab, H), ``position`` (max_positions, H),
        ``gamma`` (H,), ``beta`` (H,), ``eps`` (float).
    """
    emb = model.bert.embeddings
    return {
        "word": emb.weight.numpy(),
        "type": emb.token_type_embeddings.numpy(),
        "position": emb.position_embeddings.numpy(),
        "gamma": emb.LayerNorm.gamma.numpy(),
        "beta": emb.LayerNorm.beta.numpy(),
        "eps": float(emb.LayerNorm.epsilon),
    }


def input_embedding_parts(
    weights: dict,
    input_ids: Sequence[int],
    token_type_ids: Sequence[int] | None = None,
    *,
    tokens: Sequence[str] | None = None,
) -> InputEmbeddingParts:
    """Decompose the input embedding of one text (pure NumPy).

    Args:
        weights: from :func:`embedding_weights`.
        input_ids: ``(T,)`` wordpiece ids with ``[CLS]``/``[SEP]``.
        token_type_ids: ``(T,)`` segment ids (default all 0, a single text).
        tokens: the wordpiece strings, for labels (default the ids as strings).

    Returns:
        The :class:`InputEmbeddingParts`.

    Raises:
        DataError: empty input, an id outside the vocabulary, a segment id outside
            ``type_vocab``, more positions than the model has, or mismatched lengths.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.ndim != 1 or ids.size == 0:
        raise DataError(f"input_ids must be a non-empty (T,) sequence, got shape {ids.shape}")
    types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids)
    if types.shape != ids.shape:
        raise DataError(f"token_type_ids {types.shape} do not match input_ids {ids.shape}")
    t = ids.shape[0]
    checks = (
        (ids, weights["word"].shape[0], "wordpiece id"),
        (types, weights["type"].shape[0], "segment id"),
    )
    for values, size, what in checks:
        if values.min() < 0 or values.max() >= size:
            raise DataError(f"a {what} is outside 0..{size - 1}")
    if t > weights["position"].shape[0]:
        raise DataError(
            f"{t} wordpieces, but the model has {weights['position'].shape[0]} positions"
        )
    token = weights["word"][ids].astype(np.float64)  # (T, H)
    segment = weights["type"][types].astype(np.float64)  # (T, H)
    position = weights["position"][:t].astype(np.float64)  # (T, H)
    total = token + segment + position
    output = layer_norm(total, weights["gamma"], weights["beta"], weights["eps"])
    labels = tuple(tokens) if tokens is not None else tuple(str(i) for i in ids)
    return InputEmbeddingParts(labels, token, segment, position, total, output)


def decompose_text(
    model, tokenizer, text: str, text_pair: str | None = None
) -> InputEmbeddingParts:
    """Decompose the input embedding of ``text`` (and an optional second segment).

    ``text_pair`` is encoded as BERT's sentence B (segment id 1), as in seed notebook 002's
    dialogue: ``[CLS] text [SEP] text_pair [SEP]``.
    """
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"the text to decompose must be a non-blank string, got {text!r}")
    enc = tokenizer(text, text_pair, add_special_tokens=True, truncation=False)
    ids = enc["input_ids"]
    return input_embedding_parts(
        embedding_weights(model),
        ids,
        enc["token_type_ids"],
        tokens=tokenizer.convert_ids_to_tokens(ids),
    )


def max_abs_difference(parts: InputEmbeddingParts, hidden_state_0: np.ndarray) -> float:
    """``max |output - hidden_states[0]|`` (the check that the decomposition is complete)."""
    hidden_state_0 = np.asarray(hidden_state_0)
    if hidden_state_0.shape != parts.output.shape:
        raise DataError(
            f"hidden_states[0] has shape {hidden_state_0.shape}, the decomposition "
            f"{parts.output.shape}: not the same text"
        )
    return float(np.max(np.abs(parts.output - hidden_state_0)))
