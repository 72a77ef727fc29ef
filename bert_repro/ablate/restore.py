"""Restore ablation: put the base model's weights back into the bottom or top ``k`` layers of a
fine-tuned model, keep its head, and measure the task metric — which layers' changes the task
needs (Merchant et al. 2020, "What Happens To BERT Embeddings During Fine-tuning?").

For a fine-tuned model (encoder ``E_ft`` + head, saved by :func:`bert_repro.finetune.finetune`)
and its base encoder ``E_base`` with ``L`` layers, for each ``k`` in ``0..L`` and direction:

* ``bottom``: the embeddings and layers ``0..k-1`` take ``E_base``'s weights (``k >= 1``);
* ``top``: layers ``L-k..L-1`` take them; the embeddings never do;

(:func:`bert_repro.encoder_parts.ablated_parts`), and the task's own ``evaluate`` scores the
mixed model. ``k = 0`` restores nothing (exactly the fine-tuned model), ``bottom`` at ``k = L``
is the base encoder under the fine-tuned head. The pooler stays fine-tuned throughout: it is the
classification head's input transform and is kept with the head.

Each model is loaded once: the restores are assignments to the live variables, undone after each
evaluation (:func:`bert_repro.ablate.swap.restored`), and a part set met twice (``k = 0`` in both
directions) is evaluated once. Nothing restored on the examples and batch size the fine-tuning
run was scored with is that run's own metric, taken from its ``finetune.json`` (evaluating it
again gives the same logits bit for bit: tested).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ..encoder_parts import DIRECTIONS, ablated_parts, layer_counts
from ..errors import ConfigError, check_choice
from ..finetune.config import FinetuneConfig
from ..finetune.tasks import get_task
from ..finetune.trainer import load_finetuned
from ..models import load_bert, model_fingerprint
from .eval_data import recorded_eval_data
from .result import AblationResult, level_rows, metric_rows
from .swap import check_same_architecture, encoder_arrays, encoder_variables, restored

DEFAULT_BASE_PREFIX = "default"  # finetune.json's base_model for the shipped MiniLM


def recorded_base(record: dict) -> str | None:
    """The base model a fine-tuning run started from, as ``load_bert`` takes it.

    The resolved folder (``base_model_name_or_path``) when it still exists, else the name the
    run was given; ``None`` (the shipped MiniLM) for the default.
    """
    settings = record["settings"]
    resolved = settings.get("base_model_name_or_path")
    if resolved and Path(resolved).is_dir():
        return str(resolved)
    given = settings.get("base_model")
    if given is None or str(given).startswith(DEFAULT_BASE_PREFIX):
        return None
    return str(given)


def restore_layers(
    finetuned: str | os.PathLike,
    base: str | os.PathLike | None = None,
    examples: Sequence | None = None,
    *,
    ks: Sequence[int] | None = None,
    directions: Sequence[str] = DIRECTIONS,
    name: str | None = None,
    eval_batch_size: int | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    strategy=None,
) -> AblationResult:
    """Score a fine-tuned model with its bottom / top ``k`` layers restored to the base weights.

    Args:
        finetuned: folder written by :func:`bert_repro.finetune.finetune` (encoder + head).
        base: the base model (name or folder); ``None``: the one recorded in its
            ``finetune.json`` (:func:`recorded_base`).
        examples: evaluation examples of the model's task; ``None``: the ones the fine-tuning run
            was evaluated on, reloaded as recorded (:func:`~.eval_data.recorded_eval_data`).
        ks: layer counts ``0 <= k <= L`` (default all of ``0..L``).
        directions: ``"bottom"`` and / or ``"top"`` (module docstring).
        name: the model's name in the table (default: the folder's name).
        eval_batch_size: prediction batch size (default: the fine-tuning run's).
        tfds_data_dir: tensorflow-datasets folder, for reloading tfds evaluation data.
        log: called with one line per evaluation (e.g. ``print``).
        strategy: a ``tf.distribute.Strategy`` the fine-tuned model is loaded and evaluated
            under (its evaluation batches split over the replicas; under multi-worker every
            worker runs this same call and gets the same scores); ``None``: one device.

    Returns:
        An :class:`AblationResult` with ``mode="restore"`` rows per direction, ``k`` and metric,
        and the ``finetuned`` (nothing restored) and ``base`` (everything restored) levels.

    Raises:
        ModelError: the base and the fine-tuned encoder differ in architecture.
        ConfigError: a ``k`` or direction is out of range.
    """
    start = time.perf_counter()
    say = log or (lambda _line: None)
    directions = list(dict.fromkeys(directions))
    if not directions:
        raise ConfigError(f"directions must name at least one of {DIRECTIONS}")
    for d in directions:
        check_choice("direction", d, DIRECTIONS)
    task_model, tokenizer, record = load_finetuned(finetuned, strategy=strategy)
    settings = record["settings"]
    task = settings["task"]
    task_obj = get_task(task)
    config = FinetuneConfig(**settings["config"]).replace(eval_batch_size=eval_batch_size)
    encoder = task_model.encoder
    num_layers = int(encoder.config.num_hidden_layers)
    ks = layer_counts(ks, num_layers)
    name = name or Path(finetuned).resolve().name

    base = base if base is not None else recorded_base(record)
    base_encoder, _ = load_bert(base)
    base_arrays = encoder_arrays(base_encoder)
    check_same_architecture(
        {k: tuple(v.shape) for k, v in encoder_variables(encoder).items()},
        {k: v.shape for k, v in base_arrays.items()},
        finetuned_config=encoder.config.to_dict(),
        base_config=base_encoder.config.to_dict(),
        names=(f"the fine-tuned model {name!r}", f"the base model {str(base or 'MiniLM')!r}"),
    )
    base_fingerprint = model_fingerprint(base_encoder)
    finetuned_fingerprint = model_fingerprint(encoder)
    del base_encoder
    recorded_fp = settings.get("base_model_fingerprint")
    if recorded_fp is not None and recorded_fp != base_fingerprint:
        warnings.warn(
            f"the base model given ({base}) is not the one {name!r} was fine-tuned from "
            "(fingerprints differ): the restored layers are not its own pre-trained weights",
            stacklevel=2,
        )
    if examples is None:
        data = recorded_eval_data(record, tfds_data_dir=tfds_data_dir)
        examples, data_source = data.eval, {**data.source, "from": "finetune.json"}
    else:
        data_source = {"from": "examples given", "n_eval": len(examples)}

    scores: dict[tuple[str, ...], dict] = {}
    recorded_config = FinetuneConfig(**settings["config"])
    from_record = (
        data_source.get("from") == "finetune.json"
        and config.eval_batch_size == recorded_config.eval_batch_size
        and bool(record.get("metrics"))
    )
    if from_record:  # nothing restored, the same examples and batches: the run's own metric
        scores[()] = dict(record["metrics"])
        say(f"{name}: restored [nothing] -> the fine-tuning run's metrics (finetune.json)")

    def score(parts: tuple[str, ...]) -> dict:
        if parts not in scores:
            t = time.perf_counter()
            with restored(encoder, base_arrays, parts):
                scores[parts] = task_obj.evaluate(task_model, tokenizer, examples, config)
            shown = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in scores[parts].items()
            }
            say(
                f"{name}: restored [{' '.join(parts) or 'nothing'}] -> {shown} "
                f"({time.perf_counter() - t:.0f} s)"
            )
        return scores[parts]

    rows = []
    for direction in directions:
        for k in ks:
            parts = ablated_parts(direction, k, num_layers)
            rows += metric_rows(
                score(parts),
                model=name,
                task=task,
                mode="restore",
                direction=direction,
                k=k,
                num_layers=num_layers,
                parts=parts,
            )
    levels = level_rows(score(()), model=name, task=task, mode="restore", level="finetuned")
    everything = ablated_parts("bottom", num_layers, num_layers)
    levels += level_rows(score(everything), model=name, task=task, mode="restore", level="base")
    run_settings = {
        "mode": "restore",
        "model": name,
        "finetuned": str(Path(finetuned).resolve()),
        "task": task,
        "base": "default (all-MiniLM-L6-v2)" if base is None else str(base),
        "base_path": None if base is None else str(base),
        "base_fingerprint": base_fingerprint,
        "finetuned_fingerprint": finetuned_fingerprint,
        "base_matches_record": recorded_fp == base_fingerprint if recorded_fp else None,
        "num_layers": num_layers,
        "ks": ks,
        "directions": directions,
        "rule": "bottom k: embeddings + layers 0..k-1 (k >= 1); top k: layers L-k..L-1; "
        "the pooler and the head stay fine-tuned",
        "data": data_source,
        "n_examples": len(examples),
        "eval_batch_size": config.eval_batch_size,
        "recorded_metrics": record.get("metrics"),
        "n_evaluations": len(scores) - from_record,
        "finetuned_from_record": from_record,
        "seconds": time.perf_counter() - start,
    }
    return AblationResult(tuple(rows), tuple(levels), run_settings)
