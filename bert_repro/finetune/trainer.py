"""Fine-tune a BERT on a task with Keras ``fit``, evaluate it, and save it as a model folder.

The saved folder is a regular transformers model folder (``config.json``, ``tf_model.h5``, the
tokenizer files), so :func:`bert_repro.models.load_bert` loads the fine-tuned *encoder* back
for the comparator and the probes; next to it, ``head_weights.npz`` holds the task head and
``finetune.json`` the run's task, base model, hyper-parameters, steps, seed, data, loss history,
metrics and package versions. :func:`load_finetuned` rebuilds encoder + head from it.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._keras import keras
from ..batching import DEFAULT_WINDOW_BATCHES
from ..encoder_parts import freeze_bottom
from ..errors import ConfigError, DataError, ModelError
from ..io import atomic_write_bytes, atomic_write_json, read_json, run_metadata
from ..models import load_bert, model_fingerprint
from .biaffine import BiaffineParserHead
from .config import FinetuneConfig, TaskName, paper_defaults
from .dataset import Features, pad_inputs, training_dataset
from .model import BertTaskModel
from .optimization import build_optimizer
from .tasks import TaskData, get_task, load_task_data

RECORD_FILE = "finetune.json"
HEAD_FILE = "head_weights.npz"


@dataclass
class FinetuneResult:
    """What :func:`finetune` did.

    Attributes:
        model: the trained :class:`BertTaskModel` (``model.encoder`` is the ``TFBertModel``).
        tokenizer: its tokenizer.
        task: the task name.
        config: the hyper-parameters used.
        metrics: evaluation metrics (``accuracy``; or ``exact_match``/``f1`` in percent; or
            ``uas``/``las``/``uas_no_punct``/``las_no_punct``).
        history: training loss (and accuracy) averaged over each logging period.
        steps: optimizer steps run.
        train_seconds: wall time of ``fit``.
        out_dir: the saved folder, or ``None``.
        record: the content of ``finetune.json``.
        test_metrics: the same metrics on ``data.test``, or ``None`` when there is none.
    """

    model: BertTaskModel
    tokenizer: object
    task: str
    config: FinetuneConfig
    metrics: dict
    history: dict
    steps: int
    train_seconds: float
    out_dir: Path | None = None
    record: dict = field(default_factory=dict)
    test_metrics: dict | None = None


def plan_steps(n_train: int, config: FinetuneConfig) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)``: ``ceil(N / B)`` and ``ceil(epochs · that)``, capped
    at ``config.max_steps``."""
    if n_train < 1:
        raise DataError("no training examples")
    per_epoch = math.ceil(n_train / config.batch_size)
    total = max(1, math.ceil(config.epochs * per_epoch))
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    return per_epoch, total


class StopAtStep(keras.callbacks.Callback):
    """Stop ``fit`` after exactly ``total_steps`` training steps."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = int(total_steps)
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.total_steps:
            self.model.stop_training = True


class PeriodLog(keras.callbacks.Callback):
    """Log one line per logging period: step, mean loss (and accuracy), elapsed time.

    Args:
        total_steps: the planned number of steps (shown as ``step k/total``).
        log: called with each line (e.g. ``print``).
    """

    def __init__(self, total_steps: int, log: Callable[[str], None]):
        super().__init__()
        self.total_steps = int(total_steps)
        self.log = log
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        values = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
        elapsed = time.perf_counter() - self.start
        self.log(f"step {step}/{self.total_steps}  {values}  ({elapsed:.0f} s)")


def dummy_inputs(tokenizer, head=None) -> dict[str, np.ndarray]:
    """A one-item ``[CLS] [SEP]`` batch, to build a model's variables (with a one-word
    ``word_starts`` for a parser ``head``)."""
    ids = np.asarray([tokenizer.cls_token_id, tokenizer.sep_token_id], np.int32)
    extra = {"word_starts": (np.ones(1, np.int32),)} if isinstance(head, BiaffineParserHead) else {}
    return pad_inputs(Features((ids,), (np.zeros(2, np.int32),), extra), [0])


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _check_out_dir(out_dir: Path | None, overwrite: bool) -> None:
    if out_dir is not None and out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir} exists and is not empty; pass overwrite=True (--overwrite)")


def finetune(
    task: TaskName,
    model: str | os.PathLike | None = None,
    *,
    data: TaskData | None = None,
    config: FinetuneConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    strategy=None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    verbose: bool | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``task`` with Keras ``fit``, evaluate, and save it.

    Steps: load the encoder and tokenizer (:func:`~bert_repro.models.load_bert`); encode the
    training examples; build the task head, :class:`BertTaskModel`, BERT's AdamW and schedule
    (in ``strategy.scope()`` when given); ``fit`` on a shuffled, repeated ``tf.data`` stream for
    ``plan_steps(...)[1]`` steps; evaluate on ``data.eval`` (and ``data.test`` when given,
    as ``test_metrics``); save to ``out_dir``.

    Args:
        task: ``"mnli"``, ``"squad"``, ``"agnews"`` or ``"parse"``.
        model: base model name or folder; ``None`` is the shipped MiniLM.
        data: examples (:func:`~bert_repro.finetune.tasks.load_task_data`); ``None`` loads the
            task's tensorflow-datasets train / evaluation splits.
        config: hyper-parameters; ``None`` is :func:`paper_defaults` for the task.
        out_dir: folder to save into (``models/<name>``), or ``None`` not to save.
        strategy: a ``tf.distribute.Strategy``; ``config.batch_size`` is the global batch.
        overwrite: replace an existing non-empty ``out_dir``.
        log: called with one line per logging period (step, mean training loss, time), e.g.
            ``print``; ``None`` logs nothing.
        verbose: deprecated; ``verbose=True`` is ``log=print``.

    Returns:
        The trained model, metrics, history and run record.

    Note:
        ``config.seed`` seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``):
        head initialisation, dropout and shuffling repeat; multi-threaded CPU kernels may still
        differ in the last bits between runs.
    """
    if verbose is not None:
        warnings.warn(
            "verbose= is now log= (verbose=True is log=print)", DeprecationWarning, stacklevel=2
        )
        log = print if verbose and log is None else log
    task_obj = get_task(task)
    config = config if config is not None else paper_defaults(task)
    out_path = None if out_dir is None else Path(out_dir)
    _check_out_dir(out_path, overwrite)
    if data is None:
        data = load_task_data(task, seed=config.seed)
    keras.utils.set_random_seed(config.seed)

    encoder, tokenizer = load_bert(model, strategy=strategy)
    limit = int(encoder.config.max_position_embeddings)
    if config.max_seq_length > limit:
        raise ConfigError(
            f"max_seq_length={config.max_seq_length} exceeds the model's "
            f"max_position_embeddings={limit}"
        )
    base_fingerprint = model_fingerprint(encoder)
    encoded = task_obj.encode(tokenizer, data.train, config)
    per_epoch, total = plan_steps(len(encoded.features), config)

    with _scope(strategy):
        head = task_obj.make_head(config, encoder.config, encoded)
        task_model = BertTaskModel(encoder, head, name=f"bert_{task}")
        task_model(dummy_inputs(tokenizer, head))
        frozen = freeze_bottom(encoder, config.freeze_layers)  # before compile
        optimizer = build_optimizer(config, total, head.trainable_variables)
        task_model.compile(optimizer=optimizer, **task_obj.compile_args())

    ds = training_dataset(
        encoded.features,
        encoded.labels,
        config.batch_size,
        seed=config.seed,
        pad_id=tokenizer.pad_token_id,
    )
    period = min(config.log_every or per_epoch, total)
    start = time.perf_counter()
    fit = task_model.fit(
        ds,
        epochs=math.ceil(total / period),
        steps_per_epoch=period,
        callbacks=[StopAtStep(total)] + ([PeriodLog(total, log)] if log is not None else []),
        verbose=0,
    )
    train_seconds = time.perf_counter() - start
    steps = int(optimizer.iterations.numpy())
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}

    start = time.perf_counter()
    metrics = task_obj.evaluate(task_model, tokenizer, data.eval, config) if data.eval else {}
    test_metrics = None
    if data.test:
        test_metrics = task_obj.evaluate(task_model, tokenizer, data.test, config)
    eval_seconds = time.perf_counter() - start

    record = run_metadata(
        task=task,
        base_model=str(model) if model is not None else "default (all-MiniLM-L6-v2)",
        base_model_name_or_path=encoder.config.name_or_path,
        base_model_fingerprint=base_fingerprint,
        config=config.to_dict(),
        data={**data.source, **encoded.info},
        strategy=None
        if strategy is None
        else {"class": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync},
    )
    record.update(
        steps=steps,
        planned_steps=total,
        steps_per_epoch=per_epoch,
        epochs_run=steps / per_epoch,
        log_every=period,
        history=history,
        metrics=metrics,
        **({} if test_metrics is None else {"test_metrics": test_metrics}),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        head=keras.layers.serialize(head),
        frozen_parts=list(frozen),
        batching={"grouped_by_length": True, "window_batches": DEFAULT_WINDOW_BATCHES},
    )
    result = FinetuneResult(
        model=task_model,
        tokenizer=tokenizer,
        task=task,
        config=config,
        metrics=metrics,
        history=history,
        steps=steps,
        train_seconds=train_seconds,
        record=record,
        test_metrics=test_metrics,
    )
    if out_path is not None:
        result.out_dir = save_finetuned(
            task_model, tokenizer, out_path, record, overwrite=overwrite
        )
    return result


def _head_arrays(head) -> dict[str, np.ndarray]:
    return {f"{i:03d}": np.asarray(w) for i, w in enumerate(head.get_weights())}


def save_finetuned(
    task_model: BertTaskModel,
    tokenizer,
    out_dir: str | os.PathLike,
    record: dict,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the encoder, tokenizer, head weights and ``finetune.json`` into ``out_dir``.

    Everything is written into a hidden temporary folder beside ``out_dir`` that is renamed
    into place at the end, so a crash never leaves a half-written model folder behind.

    Raises:
        ConfigError: ``out_dir`` exists, is not empty and ``overwrite`` is false.
    """
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        task_model.encoder.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        buf = io.BytesIO()
        np.savez(buf, **_head_arrays(task_model.head))
        atomic_write_bytes(tmp / HEAD_FILE, buf.getvalue())
        record = {**record, "head_weights": [w.name for w in task_model.head.weights]}
        atomic_write_json(tmp / RECORD_FILE, record)
        _write_results(tmp, task_model, record, out)
        _umask_permissions(tmp)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def metric_rows(record: dict) -> list[dict]:
    """The metrics of a ``finetune.json`` record as tidy rows ``{split, metric, value}``
    (``split``: ``dev`` for the evaluation examples, ``test``); non-numbers are left out."""
    rows = []
    for split, key in (("dev", "metrics"), ("test", "test_metrics")):
        for metric, value in (record.get(key) or {}).items():
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                rows.append({"split": split, "metric": metric, "value": value})
    return rows


def _write_results(folder: Path, task_model: BertTaskModel, record: dict, out: Path) -> None:
    """``results.json``/``.csv`` of the package's one schema beside ``finetune.json``: the
    metrics as rows (:func:`metric_rows`), the base and the fine-tuned encoder as models."""
    from ..outputs import model_entry, write_results

    settings = record.get("settings", {})
    base = settings.get("base_model_name_or_path") or settings.get("base_model")
    write_results(
        folder,
        metric_rows(record),
        command="finetune",
        settings=settings,
        models={
            "base": model_entry(base, fingerprint=settings.get("base_model_fingerprint")),
            "finetuned": model_entry(out, model=task_model.encoder),
        },
    )


def _umask_permissions(folder: Path) -> None:
    """Make the folder 0o755 and its files 0o644 (``mkdtemp``/``mkstemp`` make them private)."""
    folder.chmod(0o755)
    for f in folder.iterdir():
        f.chmod(0o644)


def load_finetuned(path: str | os.PathLike, *, strategy=None):
    """Rebuild a saved fine-tuned model: ``(BertTaskModel, tokenizer, record)``.

    Raises:
        ModelError: the folder has no ``finetune.json`` or head weights (use
            :func:`bert_repro.models.load_bert` for the encoder alone).
    """
    path = Path(path)
    if not (path / RECORD_FILE).is_file() or not (path / HEAD_FILE).is_file():
        raise ModelError(
            f"{path} has no {RECORD_FILE} / {HEAD_FILE}: not a folder written by finetune "
            "(load_bert still loads its encoder if it is a model folder)"
        )
    record = read_json(path / RECORD_FILE)
    encoder, tokenizer = load_bert(path, strategy=strategy)
    with np.load(path / HEAD_FILE, allow_pickle=False) as npz:
        arrays = [npz[k] for k in sorted(npz.files)]
    with _scope(strategy):
        head = keras.layers.deserialize(record["head"])
        task_model = BertTaskModel(encoder, head, name=f"bert_{record['settings']['task']}")
        task_model(dummy_inputs(tokenizer, head))
        head.set_weights(arrays)
    return task_model, tokenizer, record


def evaluate_finetuned(path: str | os.PathLike, examples, *, strategy=None) -> dict:
    """Re-run the task metric of a saved fine-tuned model on ``examples``."""
    task_model, tokenizer, record = load_finetuned(path, strategy=strategy)
    settings = record["settings"]
    config = FinetuneConfig(**settings["config"])
    return get_task(settings["task"]).evaluate(task_model, tokenizer, examples, config)
