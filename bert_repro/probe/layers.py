"""Which hidden states a probe run covers."""

from __future__ import annotations

from collections.abc import Sequence


def unique_layers(layers: int | Sequence[int] | None, num_states: int) -> tuple[int, ...]:
    """Layer indices resolved against a model with ``num_states`` hidden states (negative ones
    count from the top, ``None`` is all; :func:`bert_repro.features.resolve_layers`), each
    once, in the order first asked: ``[6, -1]`` on a 7-state model is one probe, not the same
    probe trained twice.

    Raises:
        ConfigError: an index is out of range or not an int.
    """
    from ..features import resolve_layers

    return tuple(dict.fromkeys(resolve_layers(layers, num_states)))
