"""How an edge-probe run trains and what it covers: one frozen settings object, made once.

:class:`EdgeSettings` is the probe side (its parts :class:`EdgeHead`, the probes' shape, and
:class:`EdgeTraining`, their training regimen, are what the Keras layer and the training loop
take); how BERT runs is the extraction path's
:class:`~bert_repro.settings.ExtractionSettings`, shared with the structural probes (so both
read the same word-feature cache entries). :func:`edge_settings` builds both from one set of
keywords, each going to the object that owns it.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import ClassVar, Literal, get_args

from ..errors import ConfigError, check_choice, check_positive
from ..settings import ExtractionSettings
from .config import TOO_LONG, TooLong
from .edge_data import EDGE_TASKS

MixMode = Literal["cumulative", "full", "none"]
MIX_MODES: tuple[str, ...] = get_args(MixMode)

LEARNING_RATE = 1e-3
LR_FACTOR = 0.5  # jiant's plateau decay
PATIENCE = 3
MAX_EPOCHS = 20


@dataclasses.dataclass(frozen=True)
class EdgeHead:
    """The shape of an edge probe past its input (Tenney et al.'s sizes by default).

    Attributes:
        projection_dim: ``D``, each span's projection (256).
        hidden_dim: the MLP's hidden width (256).
        dropout: the MLP's dropout rate (0.2).
    """

    projection_dim: int = 256
    hidden_dim: int = 256
    dropout: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "projection_dim", int(self.projection_dim))
        object.__setattr__(self, "hidden_dim", int(self.hidden_dim))
        object.__setattr__(self, "dropout", float(self.dropout))
        if min(self.projection_dim, self.hidden_dim) < 1 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                "projection_dim and hidden_dim must be >= 1 and dropout in [0, 1), got "
                f"{self.projection_dim}, {self.hidden_dim}, {self.dropout}"
            )

    @classmethod
    def take(cls, head: EdgeHead | None, options: dict) -> EdgeHead:
        """``head`` with its fields among ``options`` (taken out of it) applied: how a Keras
        layer accepts ``projection_dim=``, ``hidden_dim=``, ``dropout=`` beside Keras's own
        keywords (and reads them back from its config)."""
        fields = {f.name: options.pop(f.name) for f in dataclasses.fields(cls) if f.name in options}
        head = head or cls()
        return dataclasses.replace(head, **fields) if fields else head


@dataclasses.dataclass(frozen=True)
class EdgeTraining:
    """How the edge probes train (:func:`bert_repro.probe.edge_train.train_edge_probes`).

    Attributes:
        epochs: the most epochs (20).
        learning_rate: Adam's initial rate (1e-3; tf-keras's Adam, epsilon 1e-7).
        patience: epochs without a better dev F1 before a probe stops (3).
        lr_factor: the rate is multiplied by this after each epoch without a better dev F1
            (0.5, jiant's plateau decay).
    """

    epochs: int = MAX_EPOCHS
    learning_rate: float = LEARNING_RATE
    patience: int = PATIENCE
    lr_factor: float = LR_FACTOR
    #: Any better dev F1 counts as an improvement.
    min_delta: ClassVar[float] = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if not 0.0 < self.lr_factor <= 1.0:
            raise ConfigError(f"lr_factor must be in (0, 1], got {self.lr_factor}")

    @classmethod
    def create(
        cls, training: EdgeTraining | None = None, **options
    ) -> tuple[EdgeTraining, Callable[[str], None] | None]:
        """``(training, log)`` from an optional object and its fields as keywords (``epochs=``,
        ...), and ``log=`` (one line per probe and epoch; ``print_fn=`` is its old name):
        :func:`~bert_repro.probe.config.training_and_log`."""
        from .config import training_and_log

        return training_and_log(cls, training, options)


@dataclasses.dataclass(frozen=True)
class EdgeSettings:
    """What an edge-probe run trains and on which data.

    Attributes:
        layers: hidden states probed one at a time (0 = embedding output; negative from the
            top); None = all.
        tasks: ``"pos"`` and/or ``"deprel"``.
        mixes: the scalar-mix probes besides the single layers: ``"cumulative"`` (Tenney et
            al.'s: one probe on the mix of layers ``0..l`` for every ``l``, the last being the
            mix of all layers; gives the cumulative expected layer), ``"full"`` (only the mix
            of all layers) or ``"none"``. The mixes always cover every layer, whatever
            ``layers``.
        epochs: the most epochs (early stopping on dev F1 ends most runs sooner).
        batch_size: sentences per training step (all their words' examples).
        seed: seeds the initialisation, the dropout masks and the shuffling.
        limit: use only the first ``limit`` sentences of each file.
        too_long: a sentence longer than the model accepts fails the run or is dropped.
        figures: write F1-vs-layer figures at the end.
        learning_rate, lr_factor, patience: Adam's initial rate, its factor after an epoch
            without a better dev F1, and such epochs before a probe stops.
        projection_dim, hidden_dim, dropout: the span projection's width, the MLP's hidden
            width and its dropout (256, 256, 0.2 as Tenney et al.'s).
    """

    layers: tuple[int, ...] | None = None
    tasks: tuple[str, ...] = EDGE_TASKS
    mixes: MixMode = "cumulative"
    epochs: int = MAX_EPOCHS
    batch_size: int = 20
    seed: int = 0
    limit: int | None = None
    too_long: TooLong = "error"
    figures: bool = True
    learning_rate: float = LEARNING_RATE
    lr_factor: float = LR_FACTOR
    patience: int = PATIENCE
    projection_dim: int = 256
    hidden_dim: int = 256
    dropout: float = 0.2

    def __post_init__(self) -> None:
        tasks = (self.tasks,) if isinstance(self.tasks, str) else tuple(self.tasks)
        if not tasks:
            raise ConfigError(f"give at least one edge-probe task ({', '.join(EDGE_TASKS)})")
        for task in tasks:
            check_choice("task", task, EDGE_TASKS)
        object.__setattr__(self, "tasks", tuple(dict.fromkeys(tasks)))
        if self.layers is not None:
            object.__setattr__(self, "layers", ExtractionSettings(layers=self.layers).layers)
        check_choice("mixes", self.mixes, MIX_MODES)
        for name in ("epochs", "batch_size", "patience", "projection_dim", "hidden_dim"):
            check_positive(name, getattr(self, name))
        check_positive("seed", self.seed, minimum=0)
        check_positive("limit", self.limit, optional=True)
        check_choice("too_long", self.too_long, TOO_LONG)
        for name, low, high in (
            ("learning_rate", 0.0, None),
            ("lr_factor", 0.0, 1.0),
            ("dropout", None, 1.0),
        ):
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok = ok and (low is None or value > low) and (high is None or value <= high)
            ok = ok and not (name == "dropout" and not 0.0 <= value < 1.0)
            if not ok:
                raise ConfigError(f"{name} out of range: {value!r}")

    def describe(self) -> dict:
        """JSON-ready record (results files)."""
        out = dataclasses.asdict(self)
        out["layers"] = None if self.layers is None else list(self.layers)
        out["tasks"] = list(self.tasks)
        return out

    @property
    def head(self) -> EdgeHead:
        """The probes' shape past their input."""
        return EdgeHead(self.projection_dim, self.hidden_dim, self.dropout)

    @property
    def training(self) -> EdgeTraining:
        """The probes' training regimen."""
        return EdgeTraining(self.epochs, self.learning_rate, self.patience, self.lr_factor)


def edge_settings(
    settings: EdgeSettings | None = None,
    extraction: ExtractionSettings | None = None,
    **options,
) -> tuple[EdgeSettings, ExtractionSettings]:
    """``(settings, extraction)`` with each keyword of ``options`` applied to the object that
    owns it (:func:`~bert_repro.probe.config.split_settings`).

    Raises:
        ConfigError: an unknown keyword (the message lists the valid ones) or a bad value.
    """
    from .config import split_settings

    return split_settings(EdgeSettings, settings, extraction, options)
