"""Per-probe learning-rate schedule and early stopping: tf-keras's callbacks as pure functions.

:func:`bert_repro.probe.trainer.train_probe` trains with ``ReduceLROnPlateau(factor=0.1,
patience=0, min_delta=1e-4, min_lr=0)`` and ``EarlyStopping(patience=5, min_delta=1e-4,
restore_best_weights=True)`` on ``val_loss``. Joint training keeps one such pair per probe;
:func:`reduce_on_plateau` and :func:`early_stopping` are their ``on_epoch_end`` (tf-keras
``callbacks.py``), step by step: the same comparisons as written (``current < best -
min_delta`` vs ``current + min_delta < best``), the same ``wait`` counters, float32 learning
rates, the first epoch's weights kept whatever its loss, no stop before the second epoch.
Applied in ``fit``'s order: ReduceLROnPlateau, then EarlyStopping; the epoch's logged ``lr`` is
the one it trained with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .trainer import LR_FACTOR, MIN_DELTA, PATIENCE

__all__ = [
    "LR_FACTOR",
    "PlateauState",
    "ProbeRun",
    "StoppingState",
    "early_stopping",
    "reduce_on_plateau",
]


@dataclass(frozen=True)
class PlateauState:
    """``ReduceLROnPlateau``'s state for one probe (mode min, no cooldown)."""

    best: float = np.inf
    wait: int = 0


def reduce_on_plateau(
    state: PlateauState,
    current: float,
    lr: np.float32,
    *,
    factor: float = LR_FACTOR,
    patience: int = 0,
    min_delta: float = MIN_DELTA,
    min_lr: float = 0.0,
) -> tuple[PlateauState, np.float32]:
    """tf-keras ``ReduceLROnPlateau.on_epoch_end`` for one probe: improvement is
    ``current < best - min_delta``; otherwise ``wait += 1`` and, once ``wait >= patience``,
    ``lr = max(lr * factor, min_lr)`` (float32) and ``wait = 0``.

    Returns:
        The new state and the learning rate of the next epoch.
    """
    if np.less(current, state.best - min_delta):
        return PlateauState(current, 0), lr
    wait = state.wait + 1
    if wait >= patience and lr > np.float32(min_lr):
        return PlateauState(state.best, 0), np.float32(max(lr * factor, min_lr))
    return PlateauState(state.best, wait), lr


@dataclass(frozen=True)
class StoppingState:
    """``EarlyStopping``'s state for one probe.

    ``best_epoch`` (0-based, -1 before the first epoch) is the epoch whose weights are kept: the
    last that beat the best before it by more than ``min_delta``, or the first epoch.
    """

    best: float = np.inf
    wait: int = 0
    best_epoch: int = -1
    stopped: bool = False


def early_stopping(
    state: StoppingState,
    epoch: int,
    current: float,
    *,
    patience: int = PATIENCE,
    min_delta: float = MIN_DELTA,
) -> tuple[StoppingState, bool]:
    """tf-keras ``EarlyStopping.on_epoch_end`` (mode min, ``restore_best_weights=True``) for
    one probe: the first epoch's weights are kept whatever its loss; ``wait += 1``; an
    improvement (``current + min_delta < best``) keeps the epoch's weights and resets ``wait``;
    otherwise training stops once ``wait >= patience`` (from the second epoch on).

    Returns:
        The new state and whether to keep this epoch's weights as the best.
    """
    keep = state.best_epoch < 0
    best_epoch = epoch if keep else state.best_epoch
    if np.less(current + min_delta, state.best):
        return StoppingState(current, 0, epoch, False), True
    wait = state.wait + 1
    return StoppingState(state.best, wait, best_epoch, wait >= patience and epoch > 0), keep


@dataclass
class ProbeRun:
    """One probe's learning rate, callback states and per-epoch history while it trains beside
    others (joint structural probes, edge probes)."""

    lr: np.float32
    plateau: PlateauState = field(default_factory=PlateauState)
    stopping: StoppingState = field(default_factory=StoppingState)
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def end_epoch(self, epoch: int, monitored: float, training, **logged: float) -> bool:
        """Log ``logged`` and the epoch's rate, then ReduceLROnPlateau (by
        ``training.lr_factor``) and EarlyStopping (after ``training.patience`` epochs) on
        ``monitored``, improvements counted beyond ``training.min_delta``, in fit's callback
        order; return whether this epoch's weights are the best so far (the ones to keep).

        ``training``: a :class:`~bert_repro.probe.trainer.ProbeTraining` or
        :class:`~bert_repro.probe.edge_config.EdgeTraining`."""
        for key, value in {**logged, "lr": self.lr}.items():
            self.history.setdefault(key, []).append(float(value))
        min_delta = training.min_delta
        self.plateau, self.lr = reduce_on_plateau(
            self.plateau, monitored, self.lr, factor=training.lr_factor, min_delta=min_delta
        )
        self.stopping, keep = early_stopping(
            self.stopping, epoch, monitored, patience=training.patience, min_delta=min_delta
        )
        return keep

    def summary(self, labels: dict[str, str]) -> str:
        """The last epoch's line: each ``labels`` key's last value under its label, then the
        learning rate and the seconds so far."""
        h = self.history
        shown = " ".join(f"{label} {h[key][-1]:.4f}" for key, label in labels.items())
        return f"{shown} lr {h['lr'][-1]:.0e} ({self.seconds:.0f}s)"

    def best_fields(self) -> dict:
        """What every probe's training result reports: ``epochs`` trained, the 1-based
        ``best_epoch`` kept, its ``dev_loss``, the ``history`` and the ``seconds``."""
        best = self.stopping.best_epoch
        return {
            "epochs": len(self.history["val_loss"]),
            "best_epoch": best + 1,
            "dev_loss": self.history["val_loss"][best],
            "history": self.history,
            "seconds": self.seconds,
        }
