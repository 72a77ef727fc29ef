"""How BERT runs over a corpus: one frozen settings object, made once at the entry point.

Every extraction (hidden states, word features, the comparator, the feature cache, the probes'
features, the embeddings studies) takes an :class:`ExtractionSettings`. The public functions
keep friendly keywords for notebooks (``hidden_states(model, tok, texts, layers=[0, 6])``) and
turn them into the object once (:meth:`ExtractionSettings.create`); below the entry point it is
passed down whole, and the feature cache's key is derived from it (:meth:`cache_parts`).
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Sequence
from typing import Any, Literal, get_args

from .batching import DEFAULT_MAX_TOKENS
from .errors import ConfigError, check_choice

Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
CacheDtype = Literal["float32", "float16"]
#: What to do with an input longer than the model accepts: fail, or leave it out and count it.
TooLong = Literal["error", "skip"]
TOO_LONG: tuple[str, ...] = get_args(TooLong)
PRECISIONS: tuple[str, ...] = get_args(Precision)
CACHE_DTYPES: tuple[str, ...] = get_args(CacheDtype)

#: Old keyword -> field, still accepted (with a DeprecationWarning) by the public functions.
#: ``batch_size`` now means only "sentences per training step" across the package.
_ALIASES = {"batch_size": "max_batch"}


@dataclasses.dataclass(frozen=True)
class ExtractionSettings:
    """How the extraction path runs a model over a corpus.

    Attributes:
        max_tokens: padded wordpieces a forward batch may hold (its memory); batches are
            planned over the length-sorted texts to compute little padding
            (:mod:`bert_repro.batching`). Results never depend on it.
        max_batch: at most this many texts a forward batch (``None``: only ``max_tokens``).
        layers: hidden-state indices to compute (0 = embedding output; negative from the top);
            ``None`` = all ``num_hidden_layers + 1``.
        jit_compile: XLA-compile the forward pass (a few padded shapes; worth it on GPUs).
        strategy: a ``tf.distribute.Strategy`` splitting each batch across its replicas
            (load the models in its scope); ``None`` = one device.
        precision: the Keras dtype policy models are loaded with (``load_bert(precision=)``);
            a mixed precision changes a model's fingerprint, so caches never mix.
        cache_dtype: ``"float32"`` or ``"float16"`` word features in the feature cache.
        progress: show progress bars.
    """

    max_tokens: int = DEFAULT_MAX_TOKENS
    max_batch: int | None = None
    layers: tuple[int, ...] | None = None
    jit_compile: bool = False
    strategy: Any = None
    precision: Precision = "float32"
    cache_dtype: CacheDtype = "float32"
    progress: bool = True

    def __post_init__(self) -> None:
        _check_count("max_tokens", self.max_tokens)
        if self.max_batch is not None:
            _check_count("max_batch", self.max_batch)
        if self.layers is not None:
            object.__setattr__(self, "layers", _as_layer_tuple(self.layers))
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("cache_dtype", self.cache_dtype, CACHE_DTYPES)
        object.__setattr__(self, "jit_compile", bool(self.jit_compile))
        object.__setattr__(self, "progress", bool(self.progress))

    @classmethod
    def create(cls, settings: ExtractionSettings | None = None, **options) -> ExtractionSettings:
        """``settings`` (default: the defaults) with the given fields replaced.

        ``options`` are field names; ``None`` values are ignored (so a function can forward
        its optional keywords unchanged). ``batch_size`` is still accepted for ``max_batch``.

        Raises:
            ConfigError: an unknown option (the message lists the valid ones) or a bad value.
        """
        base = settings if settings is not None else cls()
        if not isinstance(base, ExtractionSettings):
            raise ConfigError(f"settings must be an ExtractionSettings, got {type(base).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        changes = {}
        for name, value in options.items():
            if value is None:
                continue
            if name in _ALIASES:
                warnings.warn(
                    f"{name}= is now {_ALIASES[name]}= for extraction (batch_size means "
                    "sentences per training step)",
                    DeprecationWarning,
                    stacklevel=3,
                )
                name = _ALIASES[name]
            if name not in fields:
                raise ConfigError(
                    f"unknown extraction option {name!r}; valid: {', '.join(sorted(fields))}"
                )
            changes[name] = value
        return dataclasses.replace(base, **changes) if changes else base

    def replace(self, **changes) -> ExtractionSettings:
        """A copy with some fields changed (the object itself is frozen)."""
        return dataclasses.replace(self, **changes)

    @property
    def num_replicas(self) -> int:
        """Replicas a global batch is split across (1 without a strategy)."""
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    def cache_parts(self) -> dict:
        """The settings that change cached numbers (the cache key's share of them).

        The batching, XLA, the strategy and progress never change the results (tested), so
        they are not part of the key; precision is in the model's fingerprint.
        """
        return {"dtype": self.cache_dtype}

    def describe(self) -> dict:
        """JSON-ready record of the settings (results files, run metadata)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["layers"] = None if self.layers is None else list(self.layers)
        out["strategy"] = None if self.strategy is None else type(self.strategy).__name__
        return out


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


def _as_layer_tuple(layers: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(layers, numbers.Integral) and not isinstance(layers, bool):
        return (int(layers),)
    if isinstance(layers, (str, bytes)):
        raise ConfigError(f"layers must be an int or a list of ints, got {layers!r}")
    try:
        items = list(layers)
    except TypeError:
        raise ConfigError(f"layers must be an int or a list of ints, got {layers!r}") from None
    for k in items:
        if not isinstance(k, numbers.Integral) or isinstance(k, bool):
            raise ConfigError(f"layer indices must be ints, got {k!r}")
    return tuple(int(k) for k in items)
