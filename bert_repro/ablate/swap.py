"""Put a base model's weights into parts of a fine-tuned encoder: a pure mix, applied in place.

For fine-tuned weights ``W_ft``, base weights ``W_base`` (both keyed by variable name without
the model prefix, :func:`bert_repro.encoder_parts.variable_key`) and a set of parts ``P``
(:func:`bert_repro.encoder_parts.ablated_parts`):

    W_mix[v] = W_base[v]   if part(v) in P
               W_ft[v]     otherwise.

:func:`mix_weights` computes that on NumPy arrays; :func:`restored` applies it to a live model
by assigning only the variables of ``P`` and puts the fine-tuned values back on exit, so a sweep
over ``k`` loads each model once and keeps its compiled prediction function.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping

import numpy as np

from ..encoder_parts import variable_key, variable_part
from ..errors import ModelError

# Config fields that decide whether two encoders' weights can be exchanged name by name.
ARCHITECTURE_FIELDS = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
)


def encoder_arrays(encoder) -> dict[str, np.ndarray]:
    """``{variable key: array}`` of every weight of ``encoder`` (a copy)."""
    return {variable_key(w.name): np.array(w.numpy()) for w in encoder.weights}


def encoder_variables(encoder) -> dict:
    """``{variable key: tf.Variable}`` of every weight of ``encoder`` (the live variables)."""
    return {variable_key(w.name): w for w in encoder.weights}


def check_same_architecture(
    finetuned: Mapping[str, tuple[int, ...]],
    base: Mapping[str, tuple[int, ...]],
    *,
    finetuned_config: Mapping | None = None,
    base_config: Mapping | None = None,
    names: tuple[str, str] = ("the fine-tuned model", "the base model"),
) -> None:
    """Refuse two encoders whose weights do not correspond one to one.

    Args:
        finetuned, base: ``{variable key: shape}`` of each encoder.
        finetuned_config, base_config: their configs as dicts (checked on
            :data:`ARCHITECTURE_FIELDS` first, for a message in the config's terms).
        names: how the message names the two models.

    Raises:
        ModelError: a config field, the set of variable names or a shape differs; the message
            names the first differences and the fix.
    """
    fix = "restore needs the base model the fine-tuned one was trained from (same architecture)"
    if finetuned_config is not None and base_config is not None:
        diffs = [
            f"{field} {finetuned_config.get(field)} vs {base_config.get(field)}"
            for field in ARCHITECTURE_FIELDS
            if finetuned_config.get(field) != base_config.get(field)
        ]
        if diffs:
            raise ModelError(f"{names[0]} and {names[1]} differ: {', '.join(diffs)}; {fix}")
    only_ft = sorted(set(finetuned) - set(base))
    only_base = sorted(set(base) - set(finetuned))
    if only_ft or only_base:
        raise ModelError(
            f"{names[0]} and {names[1]} have different variables (only in {names[0]}: "
            f"{only_ft[:3]}{' ...' if len(only_ft) > 3 else ''}; only in {names[1]}: "
            f"{only_base[:3]}{' ...' if len(only_base) > 3 else ''}); {fix}"
        )
    shapes = [
        f"{k}: {tuple(finetuned[k])} vs {tuple(base[k])}"
        for k in sorted(finetuned)
        if tuple(finetuned[k]) != tuple(base[k])
    ]
    if shapes:
        raise ModelError(
            f"{names[0]} and {names[1]} differ in {len(shapes)} weight shape(s), e.g. "
            f"{'; '.join(shapes[:3])}; {fix}"
        )


def restored_keys(keys: Collection[str], parts: Collection[str]) -> tuple[str, ...]:
    """The variable keys (sorted) whose part is in ``parts``: those a restore replaces."""
    wanted = set(parts)
    return tuple(sorted(k for k in keys if variable_part(k) in wanted))


def mix_weights(
    finetuned: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray], parts: Collection[str]
) -> dict[str, np.ndarray]:
    """``W_mix``: the base's weights in ``parts``, the fine-tuned ones elsewhere (module doc).

    Neither input is changed; the result shares their arrays.

    Raises:
        ModelError: the two do not have the same variables and shapes.
    """
    check_same_architecture(
        {k: np.shape(v) for k, v in finetuned.items()}, {k: np.shape(v) for k, v in base.items()}
    )
    take = set(restored_keys(finetuned, parts))
    return {k: (base[k] if k in take else v) for k, v in finetuned.items()}


@contextlib.contextmanager
def restored(encoder, base: Mapping[str, np.ndarray], parts: Collection[str]) -> Iterator[tuple]:
    """Within the block, ``encoder`` holds :func:`mix_weights` of its weights and ``base``.

    Only the variables of ``parts`` are assigned; their previous values are put back on exit
    (also on an error), so the encoder leaves the block as it entered it.

    Args:
        encoder: a live ``TFBertModel`` (e.g. ``BertTaskModel.encoder``); changed in place.
        base: ``{variable key: array}`` of the base encoder (:func:`encoder_arrays`), already
            checked with :func:`check_same_architecture`.
        parts: part names (:func:`bert_repro.encoder_parts.ablated_parts`).

    Yields:
        The keys of the variables replaced.
    """
    variables = encoder_variables(encoder)
    keys = restored_keys(variables, parts)
    saved = {k: variables[k].numpy() for k in keys}
    try:
        for k in keys:
            variables[k].assign(base[k])
        yield keys
    finally:
        for k in keys:
            variables[k].assign(saved[k])
