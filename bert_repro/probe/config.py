"""How a probe run trains and what it covers: one frozen settings object, made once.

:class:`SweepSettings` holds the probe side (layers, kinds, rank, epochs, training batch,
seed, sentence limit, what to do with too-long sentences, figures); how BERT runs is the
extraction path's :class:`~bert_repro.settings.ExtractionSettings`. :func:`sweep_settings`
builds both from one set of friendly keywords (a notebook's ``run_sweep(..., rank=64,
cache_dtype="float16")``), each keyword going to the object that owns it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

from ..errors import ConfigError, check_choice, check_positive
from ..settings import TOO_LONG, ExtractionSettings, TooLong
from .kinds import PROBE_KINDS

METRICS = {"distance": ("uuas", "dspr"), "depth": ("root_acc", "nspr")}


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """What a probe run trains and on which data.

    Attributes:
        layers: hidden-state indices (0 = embedding output; negative from the top); None = all.
        kinds: probe kinds, ``"distance"`` and/or ``"depth"``.
        rank: probe rank (clipped to the model's width).
        epochs: the most epochs (early stopping on dev ends most runs sooner).
        batch_size: sentences per training step (20, as Hewitt & Manning).
        seed: seeds each probe's initialisation and the shuffling.
        limit: use only the first ``limit`` sentences of each file (quick runs).
        too_long: a sentence longer than the model accepts fails the run (``"error"``) or is
            dropped and listed (``"skip"``).
        figures: write metric-vs-layer figures at the end.
    """

    layers: tuple[int, ...] | None = None
    kinds: tuple[str, ...] = PROBE_KINDS
    rank: int = 128
    epochs: int = 40
    batch_size: int = 20
    seed: int = 0
    limit: int | None = None
    too_long: TooLong = "error"
    figures: bool = True

    def __post_init__(self) -> None:
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        for kind in kinds:
            check_choice("kind", kind, PROBE_KINDS)
        if not kinds:
            raise ConfigError(f"give at least one probe kind ({', '.join(PROBE_KINDS)})")
        object.__setattr__(self, "kinds", tuple(dict.fromkeys(kinds)))
        if self.layers is not None:
            layers = ExtractionSettings(layers=self.layers).layers
            object.__setattr__(self, "layers", layers)
        check_positive("rank", self.rank)
        check_positive("epochs", self.epochs)
        check_positive("batch_size", self.batch_size)
        check_positive("seed", self.seed, minimum=0)
        check_positive("limit", self.limit, optional=True)
        check_choice("too_long", self.too_long, TOO_LONG)

    def describe(self) -> dict:
        """JSON-ready record (results files)."""
        out = dataclasses.asdict(self)
        out["layers"] = None if self.layers is None else list(self.layers)
        out["kinds"] = list(self.kinds)
        return out


_EXTRACTION_FIELDS = frozenset(f.name for f in dataclasses.fields(ExtractionSettings))


def split_settings(cls, settings, extraction: ExtractionSettings | None, options: dict) -> tuple:
    """``(settings, extraction)``: each keyword of ``options`` applied to the object that owns
    it, a ``cls`` settings object (a frozen dataclass: :class:`SweepSettings`, the edge
    probes' settings) or the :class:`~bert_repro.settings.ExtractionSettings` (``None`` values
    ignored).

    Raises:
        ConfigError: an unknown keyword (the message lists the valid ones) or a bad value.
    """
    fields = frozenset(f.name for f in dataclasses.fields(cls))
    mine = {k: v for k, v in options.items() if k in fields and v is not None}
    theirs = {k: v for k, v in options.items() if k not in fields}
    unknown = sorted(set(theirs) - _EXTRACTION_FIELDS)
    if unknown:
        valid = ", ".join(sorted(fields | _EXTRACTION_FIELDS))
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid: {valid}")
    settings = settings or cls()
    if mine:
        settings = dataclasses.replace(settings, **mine)
    return settings, ExtractionSettings.create(extraction, **theirs)


def sweep_settings(
    settings: SweepSettings | None = None,
    extraction: ExtractionSettings | None = None,
    **options,
) -> tuple[SweepSettings, ExtractionSettings]:
    """``(settings, extraction)`` with each keyword of ``options`` applied to the object that
    owns it (:func:`split_settings`). ``skip_too_long=True`` is still accepted for
    ``too_long="skip"``.
    """
    if options.pop("skip_too_long", None):
        warnings.warn("skip_too_long=True is now too_long='skip'", DeprecationWarning, stacklevel=3)
        options["too_long"] = "skip"
    return split_settings(SweepSettings, settings, extraction, options)


def training_and_log(cls, training, options: dict) -> tuple:
    """``(training, log)`` of a training function's keywords: ``training`` (a ``cls`` frozen
    dataclass, :class:`~bert_repro.probe.trainer.ProbeTraining` or
    :class:`~bert_repro.probe.edge_config.EdgeTraining`; default ``cls()``) with the fields
    among ``options`` applied, and the ``log`` (called with one line per epoch; ``None``:
    silent; ``print_fn=`` is its old name), each line after ``log_prefix=`` when given.

    Raises:
        ConfigError: an unknown keyword (the message lists the valid ones).
    """
    options = dict(options)
    log = options.pop("log", None)
    if "print_fn" in options:
        warnings.warn("print_fn= is now log=", DeprecationWarning, stacklevel=4)
        log = log or options.pop("print_fn")
    prefix = options.pop("log_prefix", "")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        valid = ", ".join(sorted(names | {"log"}))
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid: {valid}")
    training = training or cls()
    if options:
        training = dataclasses.replace(training, **options)
    return training, _prefixed(log, prefix)


def _prefixed(log: Callable[[str], None] | None, prefix: str) -> Callable[[str], None] | None:
    """``log`` with ``prefix`` put before every line (itself when there is no prefix)."""
    if log is None or not prefix:
        return log
    return lambda line: log(f"{prefix}{line}")
