"""Train the structural probes of several layers (and both kinds) at once, each as if alone.

A probe step on cached features is tiny (one ``(B*W, H) x (H, rank)`` matmul), so training one
probe at a time spends its time on per-step overhead. :func:`train_probes` trains the ``K``
layers' probes of each kind together, as one :class:`~bert_repro.probe.stacked.StackedProbes`,
one compiled step per batch of ``(K, B, W, H)`` features
(:meth:`~bert_repro.probe.data.ProbeDataset.layer_batches`: each layer read once per batch).

Each probe follows :func:`bert_repro.probe.trainer.train_probe`'s trajectory (same seed, same
batch order): its slice starts as ``make_probe(kind, H, rank, seed=seed)`` does, Adam runs
with a learning rate per slice (:class:`~bert_repro.probe.adam.SlicedAdam`, tf-keras's update),
and tf-keras's ``ReduceLROnPlateau(factor=0.1, patience=0)`` and ``EarlyStopping(patience,
restore_best_weights=True)`` hold per probe (:mod:`.schedule`). A probe that has stopped is no
longer updated (learning rate 0) while the others go on; training ends when all have stopped
or after ``epochs``. Each probe's loss and dev loss per epoch are tf-keras's: the mean of the
batch losses weighted by batch size, in float32.

"The same trajectory" is to float rounding: the stacked matmuls add in another order than
``fit``'s, a difference of ~1e-7 relative. Where the L1 loss's dynamics amplify rounding, it
can grow over the epochs (seen on one MiniLM layer: 2e-3 relative in dev loss by epoch 3),
exactly as ``train_probe`` itself moves when its input changes by one float32 ulp
(``benchmarks/bench_probes.py`` measures both).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from ..errors import ConfigError
from .adam import SlicedAdam
from .model import ProbeKind
from .schedule import ProbeRun
from .stacked import STACKED_LOSSES, StackedProbes, nonempty_count
from .trainer import ProbeTraining, TrainResult, compile_probe

__all__ = ["train_probes"]

ADAM_EPSILON = 1e-8  # as compile_probe
SUM = tf.distribute.ReduceOp.SUM


def train_probes(
    kinds: Sequence[ProbeKind],
    layers: Sequence[int],
    train_data: Iterable,
    dev_data: Iterable,
    *,
    model_dim: int,
    probe_rank: int,
    training: ProbeTraining | None = None,
    fit_extra_step: bool = True,
    strategy=None,
    **options,
) -> dict[tuple[int, str], TrainResult]:
    """Train a probe of each kind on each of ``layers`` at once, each as :func:`train_probe`
    would alone (same ``seed``, same batch order).

    Args:
        kinds: ``"distance"`` and/or ``"depth"``.
        layers: the ``K`` hidden-state indices the features hold, in their order (they name
            the results).
        train_data: re-iterable (once per epoch) batches ``(features (K, B, W, H), {kind:
            labels}, lengths (B,))``, shuffled: :meth:`ProbeDataset.layer_batches` (fastest)
            or :meth:`ProbeDataset.tf_layers_dataset`, with ``shuffle=True``.
        dev_data: the same for the dev set (not shuffled).
        model_dim, probe_rank, training, **options: as
            :func:`~bert_repro.probe.trainer.train_probe` (``log`` gets one line per probe and
            epoch, after ``log_prefix``).
        fit_extra_step: count one more Adam step after the first epoch, as tf-keras ``fit``
            does on a dataset of unknown length (:meth:`ProbeDataset.tf_dataset`): it calls its
            train function once more to find the end of the data, and that call fails on the
            data but still increments the optimizer's step counter, so Adam's bias correction
            runs one step ahead from the second epoch on. True (default) matches
            :func:`train_probe` on ``tf_dataset``; False counts real steps only.
        strategy: a ``tf.distribute.Strategy`` (``None``: one device). Each batch is split
            by rows over its replicas (:func:`bert_repro.distribute.replica_rows`), their
            gradients and losses summed, and every replica takes the same Adam step. Under
            multi-worker every worker calls this with the same batches (each holds every
            feature) and gets the same probes.

    Returns:
        ``{(layer, kind): TrainResult}``; each probe (compiled as :func:`compile_probe` does,
        so ``probe.evaluate`` works) holds its best dev epoch's weights, its
        ``history`` and ``epochs`` cover the epochs it trained, ``seconds`` is the joint run's
        wall time up to its last epoch.
    """
    layers = [int(k) for k in layers]
    if not layers or len(set(layers)) != len(layers):
        raise ConfigError(f"layers must be distinct and not empty, got {layers}")
    training, log = ProbeTraining.create(training, **options)
    steps, runs = _start(kinds, len(layers), model_dim, probe_rank, training, strategy)
    best = _train_epochs(steps, runs, (train_data, dev_data), training, fit_extra_step, log, layers)
    return _results(steps.probes, runs, best, layers, training)


def _start(kinds, num_layers: int, model_dim: int, probe_rank: int, training, strategy) -> tuple:
    """``(steps, runs)``: the fresh stacked probes' compiled steps (under ``strategy``, else
    the default one) and a :class:`_ProbeRun` per probe ``(i, k)`` (kind ``i``, layer ``k``)."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        probes = StackedProbes(num_layers, model_dim, probe_rank, kinds, seed=training.seed)
    runs = {
        (i, k): _ProbeRun(lr=np.float32(training.learning_rate))
        for i in range(len(probes.kinds))
        for k in range(num_layers)
    }
    return _JointSteps(probes, strategy), runs


def _results(probes: StackedProbes, runs: dict, best: list, layers: Sequence[int], training):
    """``{(layer, kind): TrainResult}`` once every probe holds its ``best`` epoch's
    projections (as EarlyStopping restores at the end), each compiled as
    :func:`compile_probe` does."""
    for proj, value in zip(probes.projections, best, strict=True):
        proj.assign(value)
    results = {}
    for (i, k), run in runs.items():
        kind = probes.kinds[i]
        probe = compile_probe(probes.probe(kind, k), kind, training.learning_rate)
        results[layers[k], kind] = run.result(probe)
    return results


def _train_epochs(
    steps: _JointSteps,
    runs: dict[tuple[int, int], _ProbeRun],
    data: tuple[Iterable, Iterable],
    training: ProbeTraining,
    fit_extra_step: bool,
    log,
    layers: Sequence[int],
) -> list[np.ndarray]:
    """Epochs of the probes still training until all have stopped or ``training.epochs``;
    returns every probe's best epoch's projections (one ``(K, H, rank)`` array per kind)."""
    train_data, dev_data = data
    projections = steps.probes.projections
    best = [p.numpy() for p in projections]
    start = time.monotonic()
    for epoch in range(training.epochs):
        active = {ik: run for ik, run in runs.items() if not run.stopping.stopped}
        loss = steps.train_epoch(train_data, {ik: run.lr for ik, run in active.items()})
        if epoch == 0 and fit_extra_step:
            steps.optimizer.iterations.assign_add(1)
        val = steps.eval_epoch(dev_data)
        weights = None
        for (i, k), run in active.items():
            dev_loss = float(val[i, k])
            if run.end_epoch(epoch, dev_loss, training, loss=float(loss[i, k]), val_loss=dev_loss):
                weights = weights or [p.numpy() for p in projections]
                best[i][k] = weights[i][k]
            run.seconds = time.monotonic() - start
            if log is not None:
                line = run.summary({"loss": "loss", "val_loss": "dev"})
                log(f"{steps.kinds[i]} layer {layers[k]} epoch {epoch + 1}: {line}")
        if all(run.stopping.stopped for run in runs.values()):
            break
    return best


class _ProbeRun(ProbeRun):
    """A structural probe's :class:`ProbeRun`, monitored on its dev loss."""

    def result(self, probe) -> TrainResult:
        return TrainResult(probe=probe, **self.best_fields())


class _JointSteps:
    """The compiled train and eval steps of a :class:`StackedProbes` over whole epochs.

    Per batch, one ``tf.function`` computes every probe's loss, takes one Adam step with a
    learning rate per probe (0 for probes not in ``lrs``: they have stopped) and adds the
    losses into tf-keras's ``Mean`` (``sum(loss * batch size) / sum(batch size)``, float32).
    Under ``strategy`` each replica takes its rows of the batch
    (:func:`~bert_repro.distribute.replica_rows`) and its share of every probe's mean loss
    (divided by the whole batch's sentence count); the shares and their gradients are summed
    over the replicas, so each replica steps as one device would on the whole batch.
    """

    def __init__(self, probes: StackedProbes, strategy):
        self.probes = probes
        self.strategy = strategy
        self.kinds = probes.kinds
        self.variables = list(probes.projections)
        self.shape = (len(self.kinds), probes.num_probes)
        with strategy.scope():
            self.optimizer = SlicedAdam(epsilon=ADAM_EPSILON)
            self.optimizer.build(self.variables)
            self.rates = tf.Variable(tf.zeros(self.shape), trainable=False)
        self.sums = tf.Variable(tf.zeros(self.shape), trainable=False)
        self.count = tf.Variable(0.0, trainable=False)
        signature = _batch_signature(self.kinds, probes.num_probes, probes.model_dim)
        self._train_step = tf.function(self._train_batch, input_signature=signature)
        self._eval_step = tf.function(self._eval_batch, input_signature=signature)

    def _losses(self, features, labels, lengths, count) -> tf.Tensor:  # (kinds, K)
        pred = self.probes(features, lengths)
        return tf.stack(
            [STACKED_LOSSES[kd](pred[kd], labels[kd], lengths, count) for kd in self.kinds]
        )

    def _replica_losses(self, features, labels, lengths, *, train: bool) -> tf.Tensor:
        """In replica context: this replica's rows' share of the ``(kinds, K)`` mean losses,
        summed over the replicas (the whole batch's means); with ``train``, one Adam step on
        the summed gradients."""
        context = tf.distribute.get_replica_context()
        size = tf.shape(lengths)[0]
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        replicas = context.num_replicas_in_sync
        start, stop = size * replica // replicas, size * (replica + 1) // replicas
        mine = (
            features[:, start:stop],
            {kd: labels[kd][start:stop] for kd in self.kinds},
            lengths[start:stop],
        )
        count = nonempty_count(lengths)
        if not train:
            return context.all_reduce(SUM, self._losses(*mine, count))
        with tf.GradientTape() as tape:
            losses = self._losses(*mine, count)
            total = tf.reduce_sum(losses)  # probes are independent: each slice gets its own
        grads = tape.gradient(total, self.variables)
        losses, grads = context.all_reduce(SUM, (losses, grads))
        self.optimizer.apply_gradients(grads, self.variables, tf.unstack(self.rates))
        return losses

    def _accumulate(self, losses, lengths) -> None:
        losses = self.strategy.experimental_local_results(losses)[0]  # the same on each
        size = tf.cast(tf.shape(lengths)[0], tf.float32)
        self.sums.assign_add(losses * size)
        self.count.assign_add(size)

    def _train_batch(self, features, labels, lengths) -> None:
        losses = self.strategy.run(
            self._replica_losses, args=(features, labels, lengths), kwargs={"train": True}
        )
        self._accumulate(losses, lengths)

    def _eval_batch(self, features, labels, lengths) -> None:
        losses = self.strategy.run(
            self._replica_losses, args=(features, labels, lengths), kwargs={"train": False}
        )
        self._accumulate(losses, lengths)

    def _epoch(self, step, data) -> np.ndarray:
        self.sums.assign(tf.zeros(self.shape))
        self.count.assign(0.0)
        for features, labels, lengths in data:
            step(features, {kd: labels[kd] for kd in self.kinds}, lengths)
        return tf.math.divide_no_nan(self.sums, self.count).numpy()

    def train_epoch(self, data, lrs: dict[tuple[int, int], np.float32]) -> np.ndarray:
        """One pass over ``data``; ``lrs`` of the probes still training. Returns the
        ``(kinds, K)`` mean training losses (those of stopped probes are meaningless)."""
        rates = np.zeros(self.shape, np.float32)
        for ik, lr in lrs.items():
            rates[ik] = lr
        self.rates.assign(rates)
        return self._epoch(self._train_step, data)

    def eval_epoch(self, data) -> np.ndarray:
        """The ``(kinds, K)`` mean losses over ``data``, no update."""
        return self._epoch(self._eval_step, data)


def _batch_signature(kinds, num_layers: int, model_dim: int) -> tuple:
    """``tf.function`` input signature of ``(features, {kind: labels}, lengths)``."""
    labels = {
        kind: tf.TensorSpec((None, None, None) if kind == "distance" else (None, None), tf.float32)
        for kind in kinds
    }
    return (
        tf.TensorSpec((num_layers, None, None, model_dim), tf.float32),
        labels,
        tf.TensorSpec((None,), tf.int32),
    )
