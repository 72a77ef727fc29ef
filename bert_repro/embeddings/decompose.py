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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError
from ..io import SavesResults
from ..settings import ExtractionSettings
from ._extraction import resolve_settings


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


def check_decompose_study(text: str, text_pair: str | None = None) -> None:
    """The texts of :func:`decompose_text` / :func:`decompose_study`, checked before any model
    is loaded.

    Raises:
        DataError: ``text`` (or a given ``text_pair``) is not a non-blank string.
    """
    for what, value in (("text", text), ("text_pair", text_pair)):
        if what == "text_pair" and value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"the {what} to decompose must be a non-blank string, got {value!r}")


def decompose_text(
    model, tokenizer, text: str, text_pair: str | None = None
) -> InputEmbeddingParts:
    """Decompose the input embedding of ``text`` (and an optional second segment).

    ``text_pair`` is encoded as BERT's sentence B (segment id 1), as in seed notebook 002's
    dialogue: ``[CLS] text [SEP] text_pair [SEP]``.
    """
    check_decompose_study(text, text_pair)
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


def embedding_output(
    model,
    tokenizer,
    text: str,
    text_pair: str | None = None,
    *,
    settings: ExtractionSettings | None = None,
    **options,
) -> np.ndarray:
    """The model's own embedding output ``hidden_states[0]`` for ``text``, ``(T, H)``.

    A single text goes through the package's extraction path
    (:func:`bert_repro.features.hidden_states`, with ``settings``/``options``); a pair
    (``[CLS] text [SEP] text_pair [SEP]``, segment ids 0 and 1) through the model's embedding
    layer, since the extraction path encodes single texts.
    """
    check_decompose_study(text, text_pair)
    if text_pair is None:
        from ..features import hidden_states

        extraction = resolve_settings(settings, options).replace(layers=(0,))
        return hidden_states(model, tokenizer, [text], settings=extraction)[0][0]
    enc = tokenizer(text, text_pair, return_tensors="tf")
    out = model.bert.embeddings(
        input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"], training=False
    )
    return np.asarray(out.numpy()[0], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class DecompositionResult(SavesResults):
    """The input embedding of one text taken apart, checked against the model's own.

    Attributes:
        text, text_pair: the text (and the optional sentence B).
        parts: the parts (:class:`InputEmbeddingParts`), ``(T, H)`` each.
        hidden_state_0: ``(T, H)`` the model's embedding output for the same wordpieces.
        settings: what made the numbers.
    """

    stem: ClassVar[str] = "decompose"
    command: ClassVar[str] = "embeddings decompose"

    text: str
    text_pair: str | None
    parts: InputEmbeddingParts
    hidden_state_0: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def max_abs_difference(self) -> float:
        """``max |LayerNorm(token + segment + position) - hidden_states[0]|``."""
        return max_abs_difference(self.parts, self.hidden_state_0)

    def to_frame(self):
        """A ``pandas.DataFrame``, one row per wordpiece: ``position``, ``token`` and the L2
        norm of each part (``token``, ``segment``, ``position``, ``sum``, ``output``)."""
        import pandas as pd

        norms = {f"norm_{k}": v for k, v in self.parts.norms().items()}
        tokens = list(self.parts.tokens)
        return pd.DataFrame({"position": range(len(tokens)), "token": tokens, **norms})

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the wordpieces, each part's norms, and the check."""
        return {
            "text": self.text,
            "text_pair": self.text_pair,
            "tokens": list(self.parts.tokens),
            "norms": {k: np.round(v, 6).tolist() for k, v in self.parts.norms().items()},
            "max_abs_difference_vs_hidden_states_0": self.max_abs_difference,
        }

    def figure(self, *, title: str = "Input embedding parts"):
        """Grouped bars of the parts' per-wordpiece norms (:func:`~.figures.decomposition_figure`)."""
        from .figures import decomposition_figure

        return decomposition_figure(self.parts, title=title)

    def summary(self) -> list[str]:
        """A line to print: the wordpieces and the check."""
        return [
            f"{len(self.parts.tokens)} wordpieces; max |LayerNorm(sum) - hidden_states[0]| = "
            f"{self.max_abs_difference:.2e}"
        ]

    def figures(self) -> dict[str, Any]:
        return {"decompose": self.figure()}


def decompose_study(
    model,
    tokenizer,
    text: str,
    text_pair: str | None = None,
    *,
    settings: ExtractionSettings | None = None,
    **options,
) -> DecompositionResult:
    """Seed notebook 003 in one call: :func:`decompose_text` and the model's own
    :func:`embedding_output`, which the parts' LayerNorm must equal.

    Raises:
        DataError: a blank text, or one longer than the model's positions.
    """
    parts = decompose_text(model, tokenizer, text, text_pair)
    extraction = resolve_settings(settings, options)
    h0 = embedding_output(model, tokenizer, text, text_pair, settings=extraction)
    return DecompositionResult(text, text_pair, parts, h0, {"extraction": extraction.describe()})
