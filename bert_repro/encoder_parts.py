"""The parts of a BERT encoder by depth, their variables, and the bottom / top ``k`` of them.

A ``TFBertModel`` with ``L`` layers is cut into ``L + 2`` parts, named

* ``"embeddings"``: token, position and segment embeddings and their LayerNorm (the input of
  layer 0; ``hidden_states[0]``);
* ``"layer_0"`` ... ``"layer_{L-1}"``: the transformer layers (``hidden_states[i + 1]`` is
  ``layer_i``'s output);
* ``"pooler"``: ``tanh(W_p h_[CLS] + b_p)``, which only the classification head reads.

The layer ablations of Merchant et al. (2020, "What Happens To BERT Embeddings During
Fine-tuning?") act on the bottom or the top ``k`` layers, ``0 <= k <= L``:

    bottom(k) = ()                                                   if k = 0
              = (embeddings, layer_0, ..., layer_{k-1})              if k >= 1
    top(k)    = (layer_{L-k}, ..., layer_{L-1})

The embeddings go with the bottom layers (they are below layer 0) and never with the top ones,
so ``k = 0`` touches nothing in either direction and ``bottom(L)`` is the whole encoder but the
pooler. The pooler belongs to neither: it is the classifier's input transform and is ablated,
frozen or restored with the head, never with the layers. Everything here but
:func:`part_layers` and :func:`freeze_bottom` is plain Python on variable names.
"""

from __future__ import annotations

import re
from typing import Literal

from .errors import ConfigError, ModelError, check_choice

Direction = Literal["bottom", "top"]
DIRECTIONS: tuple[str, ...] = ("bottom", "top")
EMBEDDINGS = "embeddings"
POOLER = "pooler"

_LAYER_SEGMENT = re.compile(r"^layer_\._(\d+)$")  # transformers' TF name of encoder.layer[i]


def layer_part(i: int) -> str:
    """The part name of transformer layer ``i`` (0-based): ``"layer_<i>"``."""
    return f"layer_{int(i)}"


def encoder_parts(num_layers: int) -> tuple[str, ...]:
    """All ``L + 2`` part names, bottom to top: embeddings, layer_0..layer_{L-1}, pooler."""
    return (EMBEDDINGS, *(layer_part(i) for i in range(num_layers)), POOLER)


def variable_key(name: str) -> str:
    """A variable's name without Keras' per-session model prefix.

    ``"tf_bert_model_3/bert/encoder/layer_._0/attention/self/query/kernel:0"`` ->
    ``"bert/encoder/layer_._0/attention/self/query/kernel:0"``: the same key in every copy of
    a model (as :func:`bert_repro.models.model_fingerprint` names them).
    """
    return name.split("/", 1)[-1]


def variable_part(key: str) -> str:
    """The part (see the module docstring) a ``TFBertModel`` variable belongs to.

    Args:
        key: the variable's name, with or without the model prefix.

    Raises:
        ModelError: the name is in none of the parts (not a BERT encoder variable).
    """
    segments = key.split("/")[:-1]  # the last segment is the variable itself
    for i, seg in enumerate(segments):
        if seg == EMBEDDINGS or seg == POOLER:
            return seg
        if seg == "encoder" and i + 1 < len(segments):
            match = _LAYER_SEGMENT.match(segments[i + 1])
            if match:
                return layer_part(int(match.group(1)))
    raise ModelError(
        f"variable {key!r} is in no part of a BERT encoder (embeddings, encoder/layer_._i, "
        "pooler): layer ablations need a transformers TFBertModel"
    )


def check_depth(k: int, num_layers: int, what: str = "k") -> None:
    """Raise :class:`ConfigError` unless ``0 <= k <= num_layers`` (an int)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= num_layers:
        raise ConfigError(f"{what}={k!r} must be an int from 0 to the model's {num_layers} layers")


def layer_counts(ks, num_layers: int) -> list[int]:
    """``ks`` checked (each ``0 <= k <= L``), deduplicated and sorted; ``None``: ``0..L``."""
    if ks is None:
        return list(range(num_layers + 1))
    if isinstance(ks, (str, bytes)) or len(ks) == 0:
        raise ConfigError(f"ks must be a non-empty list of ints from 0 to {num_layers}, got {ks!r}")
    for k in ks:
        check_depth(k, num_layers)
    return sorted(set(ks))


def ablated_parts(direction: Direction, k: int, num_layers: int) -> tuple[str, ...]:
    """The parts touched by an ablation of the bottom or top ``k`` layers.

    Args:
        direction: ``"bottom"`` (embeddings + layers ``0..k-1`` when ``k >= 1``) or ``"top"``
            (layers ``L-k..L-1``, never the embeddings).
        k: how many transformer layers, ``0 <= k <= L``.
        num_layers: ``L``.

    Returns:
        Part names, bottom to top (empty for ``k = 0``).
    """
    check_choice("direction", direction, DIRECTIONS)
    check_depth(k, num_layers)
    if direction == "top":
        return tuple(layer_part(i) for i in range(num_layers - k, num_layers))
    if k == 0:
        return ()
    return (EMBEDDINGS, *(layer_part(i) for i in range(k)))


def part_layers(encoder) -> dict[str, object]:
    """The Keras layer of each part of a ``TFBertModel`` (``encoder.bert``'s sub-layers).

    Raises:
        ModelError: ``encoder`` has no ``bert`` main layer with embeddings, encoder and pooler.
    """
    main = getattr(encoder, "bert", None)
    try:
        layers = {EMBEDDINGS: main.embeddings}
        layers.update({layer_part(i): lay for i, lay in enumerate(main.encoder.layer)})
        layers[POOLER] = main.pooler
    except AttributeError as err:
        raise ModelError(
            f"{type(encoder).__name__} is not a transformers TFBertModel (no bert.embeddings / "
            "bert.encoder.layer / bert.pooler): layers cannot be frozen or restored"
        ) from err
    return layers


def freeze_bottom(encoder, k: int) -> tuple[str, ...]:
    """Make the embeddings and layers ``0..k-1`` of ``encoder`` not trainable (in place).

    Call before ``compile``: Keras then leaves their variables out of ``trainable_weights``,
    so neither the gradient step nor the weight decay touches them. Dropout inside them still
    runs in training mode, as when fine-tuning with frozen layers in transformers.

    Args:
        encoder: a ``TFBertModel``.
        k: ``0 <= k <= L``; ``0`` freezes nothing (see :func:`ablated_parts`).

    Returns:
        The frozen parts.
    """
    num_layers = int(encoder.config.num_hidden_layers)
    check_depth(k, num_layers, "freeze_layers")
    parts = ablated_parts("bottom", k, num_layers)
    layers = part_layers(encoder)
    for part in parts:
        layers[part].trainable = False
    return parts
