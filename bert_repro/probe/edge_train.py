"""Train the edge probes of every layer (and the scalar mixes) at once, each as if alone.

A :class:`~bert_repro.probe.edge_model.StackedEdgeProbes` of ``P`` probes takes one compiled
step per batch of ``(S, R, N, H)`` features (:func:`bert_repro.probe.edge_data.edge_batches`:
each hidden state read once per batch): one forward pass, the ``P`` mean cross-entropies, their
sum's gradient (probe ``p``'s slice gets its own loss's gradient: the probes share no weight)
and one Adam step with a learning rate per probe (:class:`~bert_repro.probe.adam.SlicedAdam`).

Per probe, after every epoch, on its dev micro F1 (:func:`bert_repro.probe.metrics.micro_f1`):
the learning rate is halved when it did not improve (jiant's plateau decay factor 0.5;
:func:`~bert_repro.probe.schedule.reduce_on_plateau`), the best epoch's weights are kept, and
the probe stops after ``patience`` epochs without improvement
(:func:`~bert_repro.probe.schedule.early_stopping`); a stopped probe's learning rate is 0 while
the others go on. Training ends when all have stopped or after ``epochs``.

Differences from the reference (jiant's edge probing, Tenney et al. 2019): softmax
cross-entropy over the labels instead of a sigmoid per label (each example has exactly one
label here, and the brief's metric is single-label micro F1), no gradient clipping (a global
norm would couple the probes), evaluation once per epoch instead of every 1000 steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ..errors import ConfigError
from .adam import SlicedAdam
from .edge_config import LEARNING_RATE, EdgeTraining
from .edge_model import StackedEdgeProbes, edge_losses
from .metrics import micro_f1
from .schedule import ProbeRun

__all__ = ["EdgeTrainResult", "LEARNING_RATE", "predict_edge", "train_edge_probes"]


@dataclass
class EdgeTrainResult:
    """What training did to one probe.

    Attributes:
        epochs: epochs it trained.
        best_epoch: 1-based epoch whose weights were kept (its best dev F1, the first of ties).
        dev_f1, dev_loss: that epoch's dev micro F1 and mean cross-entropy.
        history: per epoch ``loss``, ``val_loss``, ``val_f1`` and ``lr``.
        seconds: wall time of the joint run up to this probe's last epoch.
    """

    epochs: int
    best_epoch: int
    dev_f1: float
    dev_loss: float
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


class _Predictor:
    """The compiled predict step of a :class:`StackedEdgeProbes` over whole splits."""

    def __init__(self, probes: StackedEdgeProbes):
        self.probes = probes
        self.signature = (
            tf.TensorSpec((probes.num_states, probes.num_spans, None, probes.model_dim)),
            tf.TensorSpec((None,), tf.int32),
        )
        self._predict_step = tf.function(self._predict_batch, input_signature=self.signature)

    def _predict_batch(self, features, labels):
        logits = self.probes(features)
        return edge_losses(logits, labels), tf.argmax(logits, axis=-1, output_type=tf.int32)

    def predict(self, data: Iterable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(predictions (P, n), gold (n,), mean losses (P,))`` over ``data``."""
        preds, gold, total = [], [], np.zeros(self.probes.num_probes)
        for features, labels in data:
            losses, pred = self._predict_step(features, labels)
            preds.append(pred.numpy())
            gold.append(np.asarray(labels))
            total += losses.numpy() * len(labels)
        if not gold:
            raise ConfigError("no examples to evaluate")
        gold_all = np.concatenate(gold)
        return np.concatenate(preds, axis=1), gold_all, total / len(gold_all)


class _EdgeSteps(_Predictor):
    """The compiled train step too: one Adam step of every probe per batch.

    Under ``strategy`` (``probes`` built in its scope) each replica takes its rows of the
    batch (:func:`~bert_repro.distribute.replica_rows`, with the whole batch's dropout rows)
    and its share of each probe's mean loss; shares and gradients are summed over the
    replicas, and every replica takes the step one device would take on the whole batch.
    Prediction runs on one device (each worker predicts the whole dev set).
    """

    def __init__(self, probes: StackedEdgeProbes, strategy):
        super().__init__(probes)
        self.strategy = strategy
        self.variables = list(probes.trainable_weights)
        with strategy.scope():
            self.optimizer = SlicedAdam()
            self.optimizer.build(self.variables)
            self.rates = tf.Variable(tf.zeros([probes.num_probes]), trainable=False)
        self._train_step = tf.function(self._train_batch, input_signature=self.signature)

    def _replica_step(self, features, labels, step):
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync
        size = tf.shape(labels)[0]
        rows, count = None, None  # one replica: the whole batch, as before
        if replicas > 1:
            replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
            start, stop = size * replica // replicas, size * (replica + 1) // replicas
            features, labels = features[:, :, start:stop], labels[start:stop]
            rows, count = (start, size), size
        with tf.GradientTape() as tape:
            logits = self.probes(features, training=True, step=step, rows=rows)
            losses = edge_losses(logits, labels, count)
            total = tf.reduce_sum(losses)  # probes are independent: each slice gets its own
        grads = tape.gradient(
            total, self.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )  # the mix weights of a stack without mixes
        if replicas > 1:
            losses, grads = context.all_reduce(tf.distribute.ReduceOp.SUM, (losses, grads))
        self.optimizer.apply_gradients(grads, self.variables, [self.rates] * len(grads))
        return losses

    def _train_batch(self, features, labels):
        step = tf.identity(self.optimizer.iterations)
        losses = self.strategy.run(self._replica_step, args=(features, labels, step))
        return self.strategy.experimental_local_results(losses)[0]  # the same on each

    def train_epoch(self, data: Iterable, rates: np.ndarray) -> np.ndarray:
        """One pass; returns the ``(P,)`` mean training losses (per example)."""
        self.rates.assign(rates.astype(np.float32))
        total, count = np.zeros(self.probes.num_probes), 0
        for features, labels in data:
            total += self._train_step(features, labels).numpy() * len(labels)
            count += len(labels)
        return total / max(count, 1)


#: The attribute of a StackedEdgeProbes that holds its compiled predict step (it goes with them).
PREDICTOR_ATTRIBUTE = "_bert_repro_predictor"


def predict_edge(
    probes: StackedEdgeProbes, data: Iterable
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every probe's predicted labels on ``data`` (batches ``(features, labels)``), through
    one compiled step per ``probes`` (dev and test share its trace).

    Returns:
        ``predictions`` ``(P, n)`` int32, ``gold`` ``(n,)``, mean cross-entropies ``(P,)``.
    """
    predictor = getattr(probes, PREDICTOR_ATTRIBUTE, None)
    if predictor is None:
        predictor = _Predictor(probes)
        object.__setattr__(probes, PREDICTOR_ATTRIBUTE, predictor)  # not tracked as a weight
    return predictor.predict(data)


class _ProbeRun(ProbeRun):
    """An edge probe's :class:`ProbeRun`, monitored on ``1 - dev F1``."""

    def result(self) -> EdgeTrainResult:
        dev_f1 = self.history["val_f1"][self.stopping.best_epoch]
        return EdgeTrainResult(dev_f1=dev_f1, **self.best_fields())


def train_edge_probes(
    probes: StackedEdgeProbes,
    train_data: Iterable,
    dev_data: Iterable,
    *,
    training: EdgeTraining | None = None,
    names: Sequence[str] | None = None,
    strategy=None,
    **options,
) -> list[EdgeTrainResult]:
    """Train every probe of ``probes`` at once, each as it would train alone.

    Args:
        probes: the stacked probes (fresh: their slices hold the seeded initial weights).
        train_data: re-iterable (once per epoch) batches ``(features (S, R, N, H), labels
            (N,))``, shuffled (:func:`~bert_repro.probe.edge_data.edge_batches`).
        dev_data: the same for the dev set, not shuffled.
        training: an :class:`~bert_repro.probe.edge_config.EdgeTraining` (``epochs``,
            ``learning_rate``: Adam's initial rate, tf-keras's Adam, epsilon 1e-7;
            ``patience``: epochs without a better dev F1 before a probe stops; ``lr_factor``:
            the rate is multiplied by this after each epoch without a better dev F1).
        names: per probe, a name for the epoch lines.
        strategy: a ``tf.distribute.Strategy`` to train under (``None``: one device): a copy
            of ``probes`` in its scope trains, each batch split by rows over the replicas
            (:class:`_EdgeSteps`); under multi-worker every worker calls this with the same
            batches and gets the same probes.
        **options: :class:`~bert_repro.probe.edge_config.EdgeTraining` fields over
            ``training``; ``log``: called with one line per probe and epoch (default silent;
            ``print_fn`` is its old name).

    Returns:
        One :class:`EdgeTrainResult` per probe, in order; ``probes`` then holds each probe's
        best epoch's weights.
    """
    training, log = EdgeTraining.create(training, **options)
    count = probes.num_probes
    names = list(names) if names is not None else [f"probe {p}" for p in range(count)]
    trained = _replicated(probes, strategy)
    steps = _EdgeSteps(trained, strategy or tf.distribute.get_strategy())
    runs = [_ProbeRun(lr=np.float32(training.learning_rate)) for _ in range(count)]
    best = _train_epochs(steps, runs, (train_data, dev_data), training, log, names)
    for var, value in zip(steps.variables, best, strict=True):
        var.assign(value)
    if trained is not probes:
        for mine, theirs in zip(probes.weights, trained.weights, strict=True):
            mine.assign(theirs.numpy())
    return [run.result() for run in runs]


def _replicated(probes: StackedEdgeProbes, strategy) -> StackedEdgeProbes:
    """``probes`` itself without a strategy; else a copy whose weights live on every replica
    (made in ``strategy``'s scope)."""
    if strategy is None:
        return probes
    with strategy.scope():
        copy = StackedEdgeProbes.from_config(probes.get_config())
    for mine, theirs in zip(copy.weights, probes.weights, strict=True):
        mine.assign(theirs)
    return copy


def _train_epochs(
    steps: _EdgeSteps,
    runs: list[_ProbeRun],
    data: tuple[Iterable, Iterable],
    training: EdgeTraining,
    log: Callable[[str], None] | None,
    names: Sequence[str],
) -> list[np.ndarray]:
    """Epochs of the probes still training until all have stopped or ``training.epochs``;
    returns every weight's value with each probe's slice from its best epoch."""
    train_data, dev_data = data
    best = [v.numpy() for v in steps.variables]
    start = time.monotonic()
    for epoch in range(training.epochs):
        active = [p for p, run in enumerate(runs) if not run.stopping.stopped]
        rates = np.zeros(len(runs), np.float32)
        for p in active:
            rates[p] = runs[p].lr
        loss = steps.train_epoch(train_data, rates)
        pred, gold, val_loss = steps.predict(dev_data)
        current = None
        for p in active:
            run = runs[p]
            f1 = micro_f1(gold, pred[p])
            logged = {"loss": loss[p], "val_loss": val_loss[p], "val_f1": f1}
            if run.end_epoch(epoch, 1.0 - f1, training, **logged):
                current = current or [v.numpy() for v in steps.variables]
                for b, c in zip(best, current, strict=True):
                    b[p] = c[p]
            run.seconds = time.monotonic() - start
            if log is not None:
                line = run.summary({"loss": "loss", "val_loss": "dev loss", "val_f1": "dev F1"})
                log(f"{names[p]} epoch {epoch + 1}: {line}")
        if all(run.stopping.stopped for run in runs):
            break
    return best
