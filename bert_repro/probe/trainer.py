"""Train structural probes as Hewitt & Manning's ``regimen.py`` does, with Keras ``fit``.

Adam (learning rate 1e-3), the learning rate multiplied by 0.1 after every epoch whose dev loss
does not improve (``ReduceLROnPlateau``, patience 0), the weights of the best dev epoch kept,
and training stopped after ``patience`` (5) epochs without an improvement of more than
``min_delta`` (1e-4), at most 40 epochs of batches of 20 shuffled sentences.

One difference of detail: PyTorch's plateau test is relative (``loss < best * (1 - 1e-4)``)
where Keras's is absolute (``loss < best - 1e-4``); at dev losses of order 1 they agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .._keras import keras
from ..errors import ConfigError, check_choice
from .config import training_and_log
from .loss import LOSS_CLASSES, build_label_mask, build_word_mask
from .model import PROBE_KINDS, ProbeKind, make_probe

__all__ = [
    "ProbeTraining",
    "TrainResult",
    "build_label_mask",
    "build_word_mask",
    "compile_probe",
    "predict",
    "train_probe",
]

MAX_EPOCHS = 40
BATCH_SIZE = 20
LEARNING_RATE = 1e-3
PATIENCE = 5
MIN_DELTA = 1e-4
LR_FACTOR = 0.1  # ReduceLROnPlateau's factor, as the reference


@dataclass(frozen=True)
class ProbeTraining:
    """How a probe trains: Hewitt & Manning's regimen, one frozen object.

    Attributes:
        seed: seeds the probe's initialisation (the data's shuffling has its own seed).
        epochs: the most epochs to run (40).
        learning_rate: Adam's initial learning rate (1e-3).
        patience: epochs without improvement before stopping (5).
        min_delta: the smallest dev-loss decrease that counts as an improvement (1e-4).
    """

    seed: int | None = 0
    epochs: int = MAX_EPOCHS
    learning_rate: float = LEARNING_RATE
    patience: int = PATIENCE
    min_delta: float = MIN_DELTA

    #: The learning rate's factor after an epoch without improvement (ReduceLROnPlateau's).
    lr_factor: ClassVar[float] = LR_FACTOR

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.patience < 0 or self.min_delta < 0:
            raise ConfigError("patience and min_delta must not be negative")

    @classmethod
    def create(
        cls, training: ProbeTraining | None = None, **options
    ) -> tuple[ProbeTraining, Callable[[str], None] | None]:
        """``(training, log)`` from an optional object and friendly keywords (``seed=``,
        ``epochs=``, ...; ``log=`` or its old name ``print_fn=``, ``log_prefix=``), each applied
        once (:func:`~bert_repro.probe.config.training_and_log`).

        Raises:
            ConfigError: an unknown keyword (the message lists the valid ones).
        """
        return training_and_log(cls, training, options)


@dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        probe: the trained probe, holding the weights of the best dev epoch.
        epochs: epochs run.
        best_epoch: 1-based epoch whose weights were kept: the last one whose dev loss beat the
            best before it by more than ``min_delta``.
        dev_loss: that epoch's dev loss.
        history: per-epoch ``loss``, ``val_loss`` and ``lr``.
        seconds: wall time of training.
    """

    probe: keras.Model
    epochs: int
    best_epoch: int
    dev_loss: float
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


class _EpochLog(keras.callbacks.Callback):
    """One line per epoch (train/dev loss, learning rate), through ``log``."""

    def __init__(self, log: Callable[[str], None]):
        super().__init__()
        self.log = log
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        lr = float(keras.backend.get_value(self.model.optimizer.learning_rate))
        self.log(
            f"epoch {epoch + 1}: loss {logs.get('loss', float('nan')):.4f} "
            f"dev {logs.get('val_loss', float('nan')):.4f} lr {lr:.0e} "
            f"({time.monotonic() - self.start:.0f}s)"
        )


def compile_probe(probe: keras.Model, kind: ProbeKind, learning_rate: float = LEARNING_RATE):
    """Compile ``probe`` with Adam (``epsilon=1e-8``, as PyTorch) and the probe's L1 loss."""
    check_choice("kind", kind, PROBE_KINDS)
    probe.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8),
        loss=LOSS_CLASSES[kind](),
    )
    return probe


def _xy(ds):
    """``(features, labels, lengths)`` -> ``(features, labels)`` for Keras (lengths are in the
    labels' -1 padding; a third element would be taken for sample weights)."""
    return ds.map(lambda f, y, n: (f, y))


def train_probe(
    kind: ProbeKind,
    train_data,
    dev_data,
    *,
    model_dim: int,
    probe_rank: int,
    training: ProbeTraining | None = None,
    checkpoint_path: str | None = None,
    **options,
) -> TrainResult:
    """Train a new distance or depth probe until dev loss stops improving.

    Args:
        kind: ``"distance"`` (:class:`~bert_repro.probe.model.TwoWordProbe`) or ``"depth"``
            (:class:`~bert_repro.probe.model.OneWordProbe`).
        train_data: ``tf.data`` of ``(features, labels, lengths)`` batches, shuffled
            (:meth:`ProbeDataset.tf_dataset` with ``shuffle=True``).
        dev_data: the same for the dev set (not shuffled).
        model_dim: word-vector width; probe_rank: rank of ``B``.
        training: a :class:`ProbeTraining` (default: the paper's regimen).
        checkpoint_path: also save the best weights there (``save_weights`` format).
        **options: :class:`ProbeTraining` fields (``seed``, ``epochs``, ``learning_rate``,
            ``patience``, ``min_delta``) over ``training``; ``log``: called with one line per
            epoch (default silent; ``print_fn`` is its old name), ``log_prefix``: put before
            each line.

    Returns:
        A :class:`TrainResult` whose probe holds the best dev epoch's weights.
    """
    check_choice("kind", kind, PROBE_KINDS)
    training, log = ProbeTraining.create(training, **options)
    probe = make_probe(kind, model_dim, probe_rank, seed=training.seed)
    compile_probe(probe, kind, training.learning_rate)
    callbacks, stopper = _callbacks(training, checkpoint_path, log)
    start = time.monotonic()
    hist = probe.fit(
        _xy(train_data),
        validation_data=_xy(dev_data),
        epochs=training.epochs,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.monotonic() - start
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    val = history.get("val_loss", [])
    # the kept epoch: the last that improved on the best by more than min_delta (as the
    # reference saves its checkpoint), not necessarily the lowest dev loss
    best = int(stopper.best_epoch)
    return TrainResult(
        probe=probe,
        epochs=len(val),
        best_epoch=best + 1,
        dev_loss=float(val[best]) if val else float("nan"),
        history=history,
        seconds=seconds,
    )


def _callbacks(
    training: ProbeTraining, checkpoint_path: str | None, log: Callable[[str], None] | None
) -> tuple[list, keras.callbacks.EarlyStopping]:
    """``(callbacks, stopper)``: ``fit``'s callbacks, ``ReduceLROnPlateau`` (factor 0.1,
    patience 0), then ``stopper`` (``EarlyStopping``, restoring the best weights), then a
    ``ModelCheckpoint`` of the best weights when ``checkpoint_path`` is given, then the epoch
    lines when ``log`` is."""
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=training.patience,
        min_delta=training.min_delta,
        restore_best_weights=True,
    )
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=LR_FACTOR,
            patience=0,
            min_delta=training.min_delta,
            min_lr=0.0,
        ),
        stopper,
    ]
    if checkpoint_path is not None:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                checkpoint_path, monitor="val_loss", save_best_only=True, save_weights_only=True
            )
        )
    if log is not None:
        callbacks.append(_EpochLog(log))
    return callbacks, stopper


def predict(probe: keras.Model, data) -> list[np.ndarray]:
    """Run ``probe`` over ``(features, labels, lengths)`` batches; cut off the padding.

    Returns:
        Per sentence, in the data's order: ``(n, n)`` predicted distances or ``(n,)`` depths
        (float32).
    """
    out: list[np.ndarray] = []
    for batch in data:
        feats, lengths = batch[0], np.asarray(batch[-1])
        pred = probe(feats, training=False).numpy()
        for row, n in enumerate(lengths):
            n = int(n)
            out.append(pred[row, :n, :n] if pred.ndim == 3 else pred[row, :n])
    return out


def evaluate_probe(
    probe: keras.Model,
    kind: ProbeKind,
    data,
    gold: Sequence[np.ndarray],
    punctuation: Sequence[np.ndarray],
) -> dict[str, float]:
    """Predict over ``data`` and compute the kind's metrics against ``gold``.

    Returns:
        ``{"uuas", "dspr"}`` for distance probes, ``{"root_acc", "nspr"}`` for depth probes.
    """
    from .metrics import depth_metrics, distance_metrics

    check_choice("kind", kind, PROBE_KINDS)
    pred = predict(probe, data)
    if len(pred) != len(gold):
        raise ConfigError(f"{len(pred)} predictions for {len(gold)} gold sentences")
    fn = distance_metrics if kind == "distance" else depth_metrics
    return fn(pred, gold, punctuation)
