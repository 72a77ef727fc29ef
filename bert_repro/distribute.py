"""``tf.distribute`` from the command line: one strategy, built once at the entry point.

``--distribute`` picks how a command runs its models (:data:`DISTRIBUTE`):

* ``none``: one device (TensorFlow's default placement);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the GPUs of this machine (``--devices
  N``: the first N; default all), or, without GPUs, over ``N`` logical CPU devices (default 1);
* ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy``; every worker runs the same
  command, the cluster and this worker's role come from the ``TF_CONFIG`` environment variable
  (https://www.tensorflow.org/guide/distributed_training#setting_up_the_tf_config_environment_variable);
* ``tpu``: ``tf.distribute.TPUStrategy`` on the TPU named by ``--tpu`` (untested here: no TPU).

A global batch of ``B`` rows is split over the ``R`` replicas in sync by :func:`replica_rows`
(replica ``g`` gets rows ``floor(gB/R) .. floor((g+1)B/R) - 1``), so results never depend on
``R``. Under ``multi-worker`` only the chief (:func:`is_chief`) writes results; the other
workers write into their own temporary folders (:func:`output_dir_for`), deleted at exit, as
TensorFlow's multi-worker guide recommends for checkpoints; every decision that changes which
collective operations run (what is left to extract, say) is the chief's (:func:`from_chief`),
so that a rerun after a worker was killed resumes from the chief's saved state.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from .errors import ConfigError, check_choice

Distribute = Literal["none", "mirrored", "multi-worker", "tpu"]
DISTRIBUTE: tuple[str, ...] = get_args(Distribute)

#: The strategies built so far, by ``(kind, devices, tpu)``. A strategy configures the
#: process's collective runtime (MultiWorkerMirroredStrategy allows one per process; two
#: MirroredStrategy objects over the same CPUs reuse collective instance keys and abort each
#: other's gathers), so a process running several commands (a test, a notebook) reuses it.
_BUILT: dict[tuple, Any] = {}


def replica_rows(batch_size: int, replica: int, num_replicas: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a global batch of ``batch_size`` rows that ``replica`` gets.

    ``start = floor(replica * B / R)``, ``stop = floor((replica + 1) * B / R)``: contiguous,
    in order, sizes differing by at most one (a replica may get none when ``B < R``).
    """
    if not 0 <= replica < num_replicas:
        raise ConfigError(f"replica {replica} is not in 0..{num_replicas - 1}")
    return batch_size * replica // num_replicas, batch_size * (replica + 1) // num_replicas


def mirrored_plan(devices: int | None, n_gpus: int) -> tuple[str, int]:
    """``(device_type, count)`` of a ``mirrored`` run: the first ``devices`` GPUs (default
    all), or ``devices`` logical CPU devices (default 1) when there is no GPU.

    Raises:
        ConfigError: ``devices`` is below 1 or more than the visible GPUs.
    """
    if devices is not None and (isinstance(devices, bool) or int(devices) < 1):
        raise ConfigError(f"--devices must be an int >= 1, got {devices!r}")
    if n_gpus:
        n = n_gpus if devices is None else int(devices)
        if n > n_gpus:
            raise ConfigError(f"--devices {n}: only {n_gpus} GPUs are visible")
        return "GPU", n
    return "CPU", 1 if devices is None else int(devices)


def worker_role(tf_config: str | None) -> tuple[str, int, int]:
    """``(task_type, task_index, n_workers)`` from the text of ``TF_CONFIG``.

    ``n_workers`` counts the ``chief`` and ``worker`` tasks of the cluster.

    Raises:
        ConfigError: ``TF_CONFIG`` is unset, not JSON, or has no cluster/task of this worker.
    """
    fix = (
        "set TF_CONFIG on every worker, e.g. "
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}} (docs/distributed.md)'
    )
    if not tf_config:
        raise ConfigError(f"--distribute multi-worker reads the cluster from TF_CONFIG: {fix}")
    try:
        conf = json.loads(tf_config)
        cluster, task = conf["cluster"], conf["task"]
        kind, index = str(task["type"]), int(task["index"])
        n = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        if index >= len(cluster[kind]):
            raise KeyError(kind)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"TF_CONFIG is not a valid cluster ({err!r}): {fix}") from None
    if n < 1:
        raise ConfigError(f"TF_CONFIG's cluster has no chief or worker tasks: {fix}")
    return kind, index, n


def chief_role(task_type: str | None, task_index: int | None, has_chief: bool) -> bool:
    """Whether a task is the chief: the ``chief`` task, else worker 0 when there is none
    (TensorFlow's convention)."""
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and not has_chief and int(task_index or 0) == 0


def make_strategy(kind: Distribute | str, *, devices: int | None = None, tpu: str | None = None):
    """The ``tf.distribute.Strategy`` of ``--distribute kind`` (``None`` for ``none``).

    Call it once, at the start of the program, before TensorFlow runs anything: logical CPU
    devices and the multi-worker runtime can only be configured then.

    Args:
        kind: one of :data:`DISTRIBUTE`.
        devices: replicas of ``mirrored`` (see :func:`mirrored_plan`).
        tpu: the TPU's name or address for ``tpu`` (``None``: the local one / Colab's).

    Raises:
        ConfigError: a bad choice, ``devices`` out of range, ``TF_CONFIG`` missing or invalid,
            or TensorFlow already initialised when logical CPUs were asked for.
    """
    check_choice("distribute", kind, DISTRIBUTE)
    if devices is not None and kind != "mirrored":
        raise ConfigError(f"--devices is for --distribute mirrored, not {kind}")
    if tpu is not None and kind != "tpu":
        raise ConfigError(f"--tpu is for --distribute tpu, not {kind}")
    if kind == "none":
        return None
    key = (kind, devices, tpu)
    if key not in _BUILT:
        _BUILT[key] = _build(kind, devices, tpu)
    return _BUILT[key]


def _build(kind: str, devices: int | None, tpu: str | None):
    import tensorflow as tf

    if kind == "mirrored":
        device_type, n = mirrored_plan(devices, len(tf.config.list_physical_devices("GPU")))
        if device_type == "CPU":
            _logical_cpus(tf, n)
        names = [f"/{device_type.lower()}:{i}" for i in range(n)]
        return tf.distribute.MirroredStrategy(names)
    if kind == "multi-worker":
        worker_role(os.environ.get("TF_CONFIG"))  # a clear error before TensorFlow's
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def strategy_from_args(args) -> Any:
    """:func:`make_strategy` of a command's ``--distribute``/``--devices``/``--tpu`` (see
    :func:`bert_repro.cli.add_distribute_options`); call it first thing in a handler."""
    return make_strategy(
        getattr(args, "distribute", "none"),
        devices=getattr(args, "devices", None),
        tpu=getattr(args, "tpu", None),
    )


def _logical_cpus(tf, n: int) -> None:
    """Split the CPU into ``n`` logical devices (only possible before TensorFlow starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    have = tf.config.get_logical_device_configuration(cpu)
    if (len(have) if have else 1) == n:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        raise ConfigError(
            f"--devices {n} on CPU needs {n} logical devices, which TensorFlow sets only before "
            "it initialises: build the strategy first (make_strategy) in a fresh process"
        ) from None


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several worker processes."""
    if strategy is None:
        return False
    return int(getattr(strategy.extended, "_num_workers", 1)) > 1


def is_chief(strategy) -> bool:
    """Whether this process writes results: always, except a non-chief multi-worker task."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    return chief_role(resolver.task_type, resolver.task_id, "chief" in spec)


#: Another worker's temporary folder for each ``(out, what)``: one per process, so that a
#: cache folder given twice (train and dev splits, several commands) is the same folder.
_WORKER_DIRS: dict[tuple[str, str], Path] = {}


def output_dir_for(out: str | os.PathLike, strategy, *, what: str = "out") -> Path:
    """Where this process writes ``out``: ``out`` itself on the chief; on another worker a
    temporary folder of its own (the same for the same ``out`` and ``what`` within a process,
    deleted when the process ends), so only the chief's files are visible."""
    if is_chief(strategy):
        return Path(out)
    key = (str(Path(out).resolve()), what)
    if key not in _WORKER_DIRS:
        resolver = strategy.cluster_resolver
        prefix = f"bert-repro-{resolver.task_type}{resolver.task_id}-{what}-"
        tmp = tempfile.mkdtemp(prefix=prefix)
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        _WORKER_DIRS[key] = Path(tmp) / Path(out).name
    return _WORKER_DIRS[key]


def from_chief(strategy, value):
    """The chief's ``value`` (a bool, int or NumPy array of the same shape on every worker)
    on every worker; ``value`` itself without a multi-worker strategy.

    Every worker must call it at the same point (it is a collective all-reduce: the chief's
    replica contributes ``value``, the others zeros).
    """
    if not is_multi_worker(strategy):
        return value
    import tensorflow as tf

    arr = np.asarray(value)
    mine = arr.astype(np.int64) if is_chief(strategy) else np.zeros(arr.shape, np.int64)

    def contribute():
        # One replica of the chief contributes (it may have several local replicas).
        ctx = tf.distribute.get_replica_context()
        keep = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.int64)
        return tf.constant(mine) * keep

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribute), axis=None).numpy()
    return total.astype(arr.dtype) if arr.shape else type(value)(total)


def built_strategies() -> list:
    """The strategies this process has built (:func:`make_strategy`), oldest first."""
    return list(_BUILT.values())


def barrier(strategy) -> None:
    """Under a multi-worker ``strategy``, wait until every worker gets here (one all-reduce);
    nothing otherwise. Every worker must call it at the same point."""
    from_chief(strategy, True)


def on_every_worker(strategy, flag: bool) -> bool:
    """Whether ``flag`` holds on every worker (``flag`` itself without a multi-worker
    strategy). A collective, like :func:`from_chief`: every worker calls it at the same point.
    """
    if not is_multi_worker(strategy):
        return bool(flag)
    import tensorflow as tf

    missing = 0 if flag else 1  # every replica of this worker counts it: 0 iff none lacks it

    def contribute():
        return tf.constant(missing, tf.int64)

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribute), axis=None)
    return int(total.numpy()) == 0


def distributed_batches(strategy, dataset):
    """``dataset``'s global batches (dicts of ``(B, ...)`` tensors) split by rows across
    ``strategy``'s replicas: replica ``g`` of ``R`` gets rows :func:`replica_rows` ``(B, g,
    R)`` of every batch, on every worker (each worker builds the whole pipeline and keeps its
    replicas' rows; ``strategy.gather(value, axis=0)`` puts a batch back together in order)."""
    import tensorflow as tf

    def input_fn(ctx):
        n_local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        first = ctx.input_pipeline_id * n_local
        total = ctx.num_replicas_in_sync

        def split(batch):
            size = tf.shape(next(iter(batch.values())), out_type=tf.int64)[0]

            def rows(r):
                g = first + r
                start, stop = size * g // total, size * (g + 1) // total
                return {k: v[start:stop] for k, v in batch.items()}

            return tf.data.Dataset.range(n_local).map(rows)

        return dataset.flat_map(split)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(input_fn, options)
