"""Freeze ablation: fine-tune with the embeddings and the bottom ``k`` layers frozen, for several
``k``, and measure the task metric — how far up the model a task must reach (Merchant et al.
2020, "What Happens To BERT Embeddings During Fine-tuning?").

Each ``k`` is an ordinary :func:`bert_repro.finetune.finetune` run with
``FinetuneConfig.freeze_layers = k`` (:func:`bert_repro.encoder_parts.freeze_bottom`: nothing
for ``k = 0``, the embeddings and layers ``0..k-1`` for ``k >= 1``; the pooler and the head
always train), on the same examples, hyper-parameters and seed, scored on the evaluation
examples (test examples are scored only for models kept in ``models_dir``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..encoder_parts import ablated_parts, layer_counts
from ..finetune.config import FinetuneConfig, TaskName, paper_defaults
from ..finetune.examples import TaskData, load_task_data
from ..models import model_config
from .result import AblationResult, level_rows, metric_rows

DEFAULT_KS = (0, 2, 4)


def freeze_sweep(
    task: TaskName,
    base: str | os.PathLike | None = None,
    *,
    data: TaskData | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    config: FinetuneConfig | None = None,
    name: str | None = None,
    models_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    strategy=None,
    log: Callable[[str], None] | None = None,
) -> AblationResult:
    """Fine-tune ``base`` on ``task`` once per ``k`` with the bottom ``k`` layers frozen.

    Args:
        task: a task name of :func:`bert_repro.finetune.get_task`.
        base: base model name or folder; ``None`` is the shipped MiniLM.
        data: examples (:func:`bert_repro.finetune.load_task_data`, as ``bert-repro finetune``
            reads them); ``None`` loads the task's tensorflow-datasets splits once.
        ks: layer counts ``0 <= k <= L`` (default 0, 2, 4).
        config: hyper-parameters (``freeze_layers`` is set per run); ``None``:
            :func:`paper_defaults`.
        name: the model's name in the table (default: the base folder's name, or MiniLM's).
        models_dir: save each fine-tuned model to ``<models_dir>/freeze-<k>``; ``None``: keep
            none.
        overwrite: replace existing model folders.
        strategy: a ``tf.distribute.Strategy`` for training.
        log: called with progress lines (the fine-tuning loss and each run's metric).

    Returns:
        An :class:`AblationResult` with ``mode="freeze"``, ``direction="bottom"`` rows, and the
        ``finetuned`` level (nothing frozen) when 0 is among ``ks``.
    """
    from ..finetune.trainer import finetune  # TensorFlow: after the arguments are checked

    start = time.perf_counter()
    say = log or (lambda _line: None)
    config = config if config is not None else paper_defaults(task)
    num_layers = int(model_config(base).num_hidden_layers)
    ks = layer_counts(ks, num_layers)
    if data is None:
        data = load_task_data(task, seed=config.seed)
    name = name or (Path(base).name if base is not None else "all-MiniLM-L6-v2")
    if models_dir is None and data.test:
        # the rows hold the evaluation metrics only; with no model kept (whose finetune.json
        # would record them) the test examples' scores are never read: not computed (EWT's
        # 2,077 test sentences cost the parser a third of its run)
        data = dataclasses.replace(data, test=())
    rows, levels, runs = [], [], {}
    for k in ks:
        out = None if models_dir is None else Path(models_dir) / f"freeze-{k}"
        say(f"{name}: fine-tuning {task} with {k} layer(s) frozen")
        result = finetune(
            task,
            base,
            data=data,
            config=config.replace(freeze_layers=k),
            out_dir=out,
            overwrite=overwrite,
            strategy=strategy,
            log=log,
        )
        parts = ablated_parts("bottom", k, num_layers)
        rows += metric_rows(
            result.metrics,
            model=name,
            task=task,
            mode="freeze",
            direction="bottom",
            k=k,
            num_layers=num_layers,
            parts=parts,
        )
        if k == 0:
            levels += level_rows(
                result.metrics, model=name, task=task, mode="freeze", level="finetuned"
            )
        runs[str(k)] = {
            "steps": result.steps,
            "train_seconds": result.train_seconds,
            "final_loss": result.history["loss"][-1] if result.history.get("loss") else None,
            "trainable_weights": int(
                sum(w.shape.num_elements() for w in result.model.trainable_weights)
            ),
            "out_dir": None if result.out_dir is None else str(result.out_dir),
        }
        say(f"{name}: {k} frozen -> {result.metrics}")
    settings = {
        "mode": "freeze",
        "model": name,
        "task": task,
        "base": "default (all-MiniLM-L6-v2)" if base is None else str(base),
        "base_path": None if base is None else str(base),
        "num_layers": num_layers,
        "ks": ks,
        "rule": "k frozen: embeddings + layers 0..k-1 (k >= 1); the pooler and head train",
        "config": config.to_dict(),
        "data": dict(data.source),
        "runs": runs,
        "seconds": time.perf_counter() - start,
    }
    return AblationResult(tuple(rows), tuple(levels), settings)
