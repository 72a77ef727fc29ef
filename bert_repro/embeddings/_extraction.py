"""How the embeddings studies run BERT: the package's one extraction path
(:mod:`bert_repro.features`), with the caller's :class:`~bert_repro.settings.ExtractionSettings`
and only the hidden states a recipe needs."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from ..errors import ConfigError
from ..settings import ExtractionSettings


def resolve_settings(settings: ExtractionSettings | None, options: dict) -> ExtractionSettings:
    """``settings`` with ``options`` (field names, see :meth:`ExtractionSettings.create`)
    applied, made once at a study's entry point.

    Raises:
        ConfigError: an unknown option; ``layers=`` (a study takes its layers from its recipe);
            or a pooling recipe passed as ``strategy=`` (``strategy`` is a
            ``tf.distribute.Strategy``; the recipe is ``recipe=``).
    """
    if "layers" in options:
        raise ConfigError(
            "layers= is not an option of the embeddings studies: recipe= picks the hidden states"
        )
    strategy = options.get("strategy")
    if isinstance(strategy, (str, numbers.Integral)):
        raise ConfigError(
            f"strategy={strategy!r} looks like a pooling recipe: a recipe is given as "
            f"recipe={strategy!r}; strategy= is a tf.distribute.Strategy"
        )
    return ExtractionSettings.create(settings, **options)


def study_settings(
    settings: ExtractionSettings | None, options: dict, layers: Sequence[int]
) -> ExtractionSettings:
    """:func:`resolve_settings` with the hidden states set to ``layers`` (a recipe's)."""
    return resolve_settings(settings, options).replace(layers=tuple(int(k) for k in layers))
